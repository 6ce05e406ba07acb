// The verifiable environments against hand-made responses, and how a set combines them.
#include "env/answer_text.hpp"
#include "env/environment.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using nemokit::rl::EnvironmentSet;
using nlohmann::json;

namespace {
EnvironmentSet& envs() {
  static EnvironmentSet set = EnvironmentSet::load(json::object());
  return set;
}
double score(const std::string& env, const json& task, const std::string& response) {
  return envs().get(env).score(task, response).value;
}
}  // namespace

TEST(EnvArithmetic, FinalAnswerRule) {
  json t = {{"expected_answer", "42"}};
  EXPECT_EQ(score("arithmetic", t, "6 * 7 = 42"), 1);
  EXPECT_EQ(score("arithmetic", t, "42 is close, but 6*7 is 41"), 0);  // the last number counts
  EXPECT_EQ(score("arithmetic", t, "I computed 40 + 2.\nAnswer: 42"), 1);
  EXPECT_EQ(score("arithmetic", t, "Answer: 42\nbut wait, 43"), 1);     // the marked answer wins
  EXPECT_EQ(score("arithmetic", t, "so \\boxed{42} and then 7"), 1);
  EXPECT_EQ(score("arithmetic", t, "\\boxed{41} ... Answer: 42"), 0);   // a box beats "Answer:"
  EXPECT_EQ(score("arithmetic", t, "**Answer:** 042."), 1);
  EXPECT_EQ(score("arithmetic", t, "Answer: 42.5"), 0);
  EXPECT_EQ(score("arithmetic", t, "Answer: forty-two"), 0);
  EXPECT_EQ(score("arithmetic", t, ""), 0);
  EXPECT_EQ(score("arithmetic", {{"expected_answer", "-5"}}, "3 - 8 = -5"), 1);
  EXPECT_EQ(score("arithmetic", {{"expected_answer", "-5"}}, "10-5"), 0);  // "10-5" ends with 5, not -5
  EXPECT_EQ(score("arithmetic", {{"expected_answer", -5}}, "Answer: -5"), 1);
  EXPECT_EQ(score("arithmetic", {{"expected_answer", "0"}}, "Answer: -0"), 1);
  auto r = envs().get("arithmetic").score(t, "Answer: 41");
  EXPECT_EQ(r.reason, "wrong answer 41 (expected 42)");
  std::string nul("Answer: 4\0" "2", 11);
  EXPECT_EQ(score("arithmetic", t, nul), 0);
  EXPECT_THROW(score("arithmetic", {{"expected_answer", "x"}}, "1"), std::invalid_argument);
  EXPECT_THROW(score("arithmetic", json::object(), "1"), std::invalid_argument);
}

TEST(EnvUnscramble, AnyDictionaryWordWithTheSameLetters) {
  if (!std::filesystem::exists("/usr/share/dict/american-english")) GTEST_SKIP() << "wamerican is not installed";
  EXPECT_EQ(score("unscramble", {{"letters", "tca"}}, "The word is cat."), 1);
  EXPECT_EQ(score("unscramble", {{"letters", "tca"}}, "Answer: ACT"), 1);   // another word, any case
  EXPECT_EQ(score("unscramble", {{"letters", "tca"}}, "Answer: tac"), 0);   // same letters, no word
  EXPECT_EQ(score("unscramble", {{"letters", "tca"}}, "Answer: cast"), 0);  // other letters
  EXPECT_EQ(score("unscramble", {{"expected_answer", "listen"}}, "Answer: silent"), 1);
  EXPECT_EQ(score("unscramble", {{"expected_answer", "listen"}}, "Answer: enlist"), 1);
  EXPECT_EQ(score("unscramble", {{"letters", "tca"}}, "123"), 0);
  EXPECT_THROW(score("unscramble", {{"letters", "t c"}}, "cat"), std::invalid_argument);
}

TEST(EnvUnscramble, WordListIsConfigurable) {
  auto dir = std::filesystem::temp_directory_path() / ("nemokit-words-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "words") << "zyx\ncat's\n";
  auto set = EnvironmentSet::load({{"unscramble", {{"word_list", (dir / "words").string()}}}});
  EXPECT_EQ(set.get("unscramble").score({{"letters", "xyz"}}, "Answer: zyx").value, 1);
  EXPECT_EQ(set.get("unscramble").score({{"letters", "tac"}}, "Answer: act").value, 0);
  auto missing = EnvironmentSet::load({{"unscramble", {{"word_list", (dir / "none").string()}}}});
  try {
    missing.get("unscramble").score({{"letters", "tac"}}, "Answer: act");
    FAIL() << "no error for a missing word list";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find((dir / "none").string()), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(EnvMultipleChoice, ChosenLetter) {
  json t = {{"choices", {"Paris", "Rome", "Oslo", "Bern"}}, {"expected_answer", "B"}};
  EXPECT_EQ(score("multiple_choice", t, "Answer: B"), 1);
  EXPECT_EQ(score("multiple_choice", t, "Answer: (B) Rome"), 1);
  EXPECT_EQ(score("multiple_choice", t, "I think it is B."), 1);
  EXPECT_EQ(score("multiple_choice", t, "Answer: rome"), 1);  // the choice's text
  EXPECT_EQ(score("multiple_choice", t, "A or maybe C"), 0);  // several choices, none marked
  EXPECT_EQ(score("multiple_choice", t, "A or maybe B"), 0);  // hedging is not paid, even with B last
  EXPECT_EQ(score("multiple_choice", t, "B<think>no, A</think>"), 0);
  EXPECT_EQ(score("multiple_choice", t, "B, so B."), 1);      // one choice named twice
  EXPECT_EQ(score("multiple_choice", t, "A or maybe B\nAnswer: B"), 1);  // the marked answer decides
  EXPECT_EQ(score("multiple_choice", t, "Answer: E"), 0);     // not a choice
  EXPECT_EQ(score("multiple_choice", t, "Before B?"), 1);     // "Before" is no letter
  EXPECT_EQ(score("multiple_choice", t, "\\boxed{A}"), 0);
  EXPECT_THROW(score("multiple_choice", {{"choices", {"x"}}, {"expected_answer", "B"}}, "B"), std::invalid_argument);
}

TEST(EnvAnswerFormat, AnswerLineAndBoxed) {
  json t = json::object();
  EXPECT_EQ(score("answer_format", t, "work...\nAnswer: 12\n"), 1);
  EXPECT_EQ(score("answer_format", t, "Answer: 12\nmore text"), 0);
  EXPECT_EQ(score("answer_format", t, "Answer: 1\nAnswer: 2"), 0);
  EXPECT_EQ(score("answer_format", t, "answer: 12"), 0);
  EXPECT_EQ(score("answer_format", t, "Answer: "), 0);
  json b = {{"answer_format", "boxed"}};
  EXPECT_EQ(score("answer_format", b, "so \\boxed{x^{2}}"), 1);
  EXPECT_EQ(score("answer_format", b, "\\boxed{1} \\boxed{2}"), 0);
  EXPECT_EQ(score("answer_format", b, "\\boxed{1"), 0);
  EXPECT_EQ(score("answer_format", {{"max_chars", 5}}, "Answer: 123456"), 0);
  EXPECT_THROW(score("answer_format", {{"answer_format", "xml"}}, "x"), std::invalid_argument);
}

TEST(EnvSet, CombinesByTaskOrConfigWeights) {
  auto set = EnvironmentSet::load({{"always", {{"answer_format", 0.25}}}});
  json t = {{"environment", "arithmetic"}, {"expected_answer", "7"}};
  auto r = set.score(t, "3+4\nAnswer: 7");
  EXPECT_DOUBLE_EQ(r.value, 1.25);
  EXPECT_EQ(r.reason, "arithmetic: correct: 7; answer_format x0.25: answer line present");
  EXPECT_DOUBLE_EQ(set.score(t, "Answer: 7\nok").value, 1.0);
  json w = {{"environment", {{"arithmetic", 0.5}, {"answer_format", 0.5}}}, {"expected_answer", "7"}};
  EXPECT_DOUBLE_EQ(EnvironmentSet::load(json()).score(w, "7").value, 0.5);
  auto weighted = EnvironmentSet::load({{"weights", {{"arithmetic", 2}}}});
  EXPECT_DOUBLE_EQ(weighted.score(t, "Answer: 7").value, 2.0);
  EXPECT_THROW(set.score({{"expected_answer", "7"}}, "7"), std::invalid_argument);
  try {
    set.score({{"environment", "nope"}}, "7");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("known: arithmetic"), std::string::npos) << e.what();
  }
  EXPECT_EQ(set.tools(t), nullptr);
}

TEST(EnvSet, ConfigErrorsNameTheKey) {
  auto message = [](const json& cfg) {
    try {
      EnvironmentSet::load(cfg);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({{"weights", {{"nope", 1}}}}).find("no environment \"nope\""), std::string::npos);
  EXPECT_NE(message({{"arithmetc", json::object()}}).find("arithmetc"), std::string::npos);
  EXPECT_NE(message({{"code_execution", {{"wall_seconds", "x"}}}}).find("environments.code_execution.wall_seconds"),
            std::string::npos);
  EXPECT_NE(message({{"plugins", {"/nonexistent/x.so"}}}).find("/nonexistent/x.so"), std::string::npos);
}

TEST(EnvExactMatch, AnswerTextEqualsExpectedOrAlias) {
  json t = {{"expected_answer", "Sneaker"}};
  EXPECT_EQ(score("exact_match", t, "Sneaker"), 1);
  EXPECT_EQ(score("exact_match", t, "  sneaker.\n"), 1);      // case, whitespace, one period
  EXPECT_EQ(score("exact_match", t, "SNEAKER"), 1);
  EXPECT_EQ(score("exact_match", t, "Sneaker.."), 0);         // only one period is dropped
  EXPECT_EQ(score("exact_match", t, "Sneakers"), 0);
  EXPECT_EQ(score("exact_match", t, "A sneaker"), 0);         // the whole answer, not a part of it
  EXPECT_EQ(score("exact_match", t, "It looks like a shoe.\nAnswer: Sneaker"), 1);
  EXPECT_EQ(score("exact_match", t, "\\boxed{sneaker.}"), 1);
  EXPECT_EQ(score("exact_match", t, "Answer: Sneaker\nAnswer: Sandal"), 0);  // the last marked answer
  EXPECT_EQ(score("exact_match", t, "<think>\nA shoe with laces: Sandal? No.\n</think>\nSneaker"), 1);
  EXPECT_EQ(score("exact_match", t, "<think>Sneaker</think>\nSandal"), 0);    // reasoning is not the answer
  EXPECT_EQ(score("exact_match", t, "<think>Sneaker"), 0);                    // never closed: no answer
  EXPECT_EQ(score("exact_match", t, "Sneaker<think>no</think>"), 0);
  EXPECT_EQ(score("exact_match", t, ""), 0);
  EXPECT_EQ(score("exact_match", t, " \n "), 0);
  EXPECT_EQ(score("exact_match", t, "Answer: "), 0);
  EXPECT_EQ(score("exact_match", {{"expected_answer", "T-shirt/top"}}, "t-shirt/TOP"), 1);
  EXPECT_EQ(score("exact_match", {{"expected_answer", 7}}, "7."), 1);
  EXPECT_EQ(score("exact_match", {{"expected_answer", "7"}}, "07"), 0);  // text, not numbers

  json a = {{"expected_answer", "T-shirt/top"}, {"aliases", {"T-shirt", "top."}}};
  EXPECT_EQ(score("exact_match", a, "t-shirt"), 1);
  EXPECT_EQ(score("exact_match", a, "Top"), 1);
  EXPECT_EQ(score("exact_match", a, "Answer: T-shirt/top"), 1);
  EXPECT_EQ(score("exact_match", a, "shirt"), 0);
  EXPECT_EQ(score("exact_match", {{"expected_answer", "x"}, {"aliases", json::array()}}, "X"), 1);

  EXPECT_EQ(envs().get("exact_match").score(t, "sneaker").reason, "correct: Sneaker");
  EXPECT_EQ(envs().get("exact_match").score(a, "top").reason, "correct: top. (an alias of T-shirt/top)");
  EXPECT_EQ(envs().get("exact_match").score(t, "Answer: Sandal").reason, "wrong answer Sandal (expected Sneaker)");
  EXPECT_EQ(envs().get("exact_match").score(t, "").reason, "no answer in the response (expected Sneaker)");
  std::string nul("Sneak\0" "er", 8);
  EXPECT_EQ(score("exact_match", t, nul), 0);
}

TEST(EnvExactMatch, UnreadableTasksNameTheKey) {
  auto message = [](const json& task) {
    try {
      envs().get("exact_match").score(task, "Sneaker");
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message({{"aliases", {"Sneaker"}}}), "task: \"expected_answer\" is missing");
  EXPECT_EQ(message(json::object()), "task: \"expected_answer\" is missing");
  EXPECT_NE(message({{"expected_answer", {"Sneaker"}}}).find("\"expected_answer\" must be a string"), std::string::npos);
  EXPECT_NE(message({{"expected_answer", " . "}}).find("\"expected_answer\""), std::string::npos);
  EXPECT_NE(message({{"expected_answer", "Sneaker"}, {"aliases", "Shoe"}}).find("\"aliases\""), std::string::npos);
  EXPECT_NE(message({{"expected_answer", "Sneaker"}, {"aliases", {1.5}}}).find("\"aliases\""), std::string::npos);
  auto set = EnvironmentSet::load(json::object());
  EXPECT_EQ(set.score({{"environment", "exact_match"}, {"expected_answer", "Bag"}}, "bag").reason, "correct: Bag");
}

// Reasons quote answers cut to a length; the cut falls between UTF-8 characters, so a reason
// (written to metrics.jsonl and the terminal) is always valid UTF-8.
TEST(EnvAnswerText, ExcerptCutsBetweenUtf8Characters) {
  using nemokit::rl::excerpt;
  const std::string euro = "\xE2\x82\xAC";
  EXPECT_EQ(excerpt("ab" + euro + "cd", 3), "ab...");
  EXPECT_EQ(excerpt("ab" + euro + "cd", 4), "ab...");
  EXPECT_EQ(excerpt("ab" + euro + "cd", 5), "ab" + euro + "...");
  EXPECT_EQ(excerpt("ab" + euro, 5), "ab" + euro);
  EXPECT_EQ(excerpt(euro + euro, 1), "...");
  EXPECT_EQ(excerpt("a\tb", 60), "a?b");
}
