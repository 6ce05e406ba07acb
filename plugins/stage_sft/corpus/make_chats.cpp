// make_chats: turns WordNet, the riddles fortunes and the countries list into SFT conversations,
// and teaches the RL tasks' answer formats (../../stage_rl/corpus/rl_tasks.hpp) on items the RL
// data prep puts in its train split.
// Usage: make_chats WORDNET_DIR DICT_FILE RIDDLES_FILE COUNTRIES_FILE OUT_DIR
// Writes OUT_DIR/{train,val,eval}.jsonl and prints a one-line summary. Everything that decides
// what goes where is a hash of the text itself, so the same inputs always give the same bytes.
#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "chat_sources.hpp"
#include "rl_tasks.hpp"

namespace {

using Json = nlohmann::ordered_json;  // keeps "role" before "content", as chat data is written

// ~3% of words are held out: hash % 1000 < 30.
constexpr std::uint64_t kHeldOutPerMille = 30;
// The tiny SFT sees ~100 steps x 8 packs x 512 tokens: this many train definitions is plenty.
constexpr std::size_t kMaxTrainDefinitions = 18000;
constexpr std::size_t kMaxEvalDefinitions = 200;
constexpr std::size_t kMaxEvalCapitals = 100;
constexpr std::size_t kCapitalRepeats = 2;
// Riddles longer than this would not fit one 512-token pack with room to spare.
constexpr std::size_t kMaxRiddleChars = 700;
// RL answer formats: eval checks per kind, train chats per kind (the RL train split's arithmetic
// 8 times over, beside one pass of drills outside the RL range, rltasks::arithmetic_drills).
constexpr std::size_t kMaxEvalFormat = 50;
constexpr std::size_t kMaxTrainUnscramble = 1500, kMaxTrainDefineChoice = 1000;
constexpr std::size_t kArithmeticRepeats = 8;
constexpr std::size_t kMinUnscramble = 3, kMaxUnscramble = 6;
// Salts keep the independent hash decisions independent of each other.
constexpr std::uint64_t kSaltSubsample = 0x5eed0001, kSaltSystem = 0x5eed0002,
                        kSaltShuffle = 0x5eed0003, kSaltEval = 0x5eed0004,
                        kSaltFormatEval = 0x5eed0005, kSaltUnscramble = 0x5eed0006;

const char* const kDictionarySystem = "You are a concise dictionary.";
const char* const kWriterSystem = "You are a helpful writing assistant.";
const char* const kGeographySystem = "You are a geography tutor. Answer in one sentence.";

bool held_out(const std::string& word) { return chats::word_hash(word) % 1000 < kHeldOutPerMille; }

// About one record in ten of a kind carries a system prompt, so system turns exist in the data.
bool with_system(const std::string& key) { return chats::word_hash(key, kSaltSystem) % 10 == 0; }

Json turn(const char* role, const std::string& content) {
  return Json{{"role", role}, {"content", content}};
}

Json chat(const std::string& system, const std::vector<std::pair<std::string, std::string>>& turns) {
  Json messages = Json::array();
  if (!system.empty()) messages.push_back(turn("system", system));
  for (const auto& [user, assistant] : turns) {
    messages.push_back(turn("user", user));
    if (!assistant.empty()) messages.push_back(turn("assistant", assistant));
  }
  return Json{{"messages", messages}};
}

std::string define_prompt(const std::string& w) { return "Define the word " + w + "."; }
std::string use_prompt(const std::string& w) { return "Use the word " + w + " in a sentence."; }
std::string capital_answer(const chats::Country& c) {
  return "The capital of " + c.name + " is " + c.capital + ".";
}

std::string letter_set(std::string w) {
  std::sort(w.begin(), w.end());
  return w;
}

// What the RL data prep holds out (its val and test splits): those prompts, and the letter sets
// of their words (unscramble answers and definition-choice answers), so that no anagram of a
// held-out word is taught either.
struct RlHeldOut {
  std::set<std::string> prompts;
  std::set<std::string> letter_sets;
  bool word(const std::string& w) const { return letter_sets.count(letter_set(w)) != 0; }
};

const std::string& prompt_of(const rltasks::Json& task) { return task["prompt"][0]["content"].get_ref<const std::string&>(); }

// The RL-format chats and eval checks of one kind: the RL train-split `tasks` (no held-out word
// among their answers), in hash order; the first kMaxEvalFormat become checks, up to `max_train`
// of the rest chats (each `repeats` times).
std::size_t format_chats(const std::vector<rltasks::Json>& tasks, const RlHeldOut& held, const char* kind,
                         const char* word_field, std::size_t max_train, std::size_t repeats,
                         std::vector<Json>& train, std::vector<Json>& eval) {
  std::vector<std::pair<std::uint64_t, const rltasks::Json*>> pick;
  for (const auto& t : tasks) {
    if (held.prompts.count(prompt_of(t))) continue;
    if (word_field && held.word(t[word_field].get<std::string>())) continue;
    pick.emplace_back(chats::word_hash(prompt_of(t), kSaltFormatEval), &t);
  }
  std::sort(pick.begin(), pick.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::size_t taught = 0;
  for (std::size_t i = 0; i < pick.size(); ++i) {
    const auto& t = *pick[i].second;
    const std::string answer = t["expected_answer"].get<std::string>();
    if (i < kMaxEvalFormat) {
      eval.push_back(Json{{"kind", kind}, {"messages", chat("", {{prompt_of(t), ""}})["messages"]},
                          {"expected", answer}, {"match", "exact"}});
    } else if (taught < max_train) {
      for (std::size_t k = 0; k < repeats; ++k) train.push_back(chat("", {{prompt_of(t), answer}}));
      ++taught;
    }
  }
  return taught * repeats;
}

struct Keyed {
  std::uint64_t key;
  Json record;
};

// Fisher-Yates driven by splitmix64: std::shuffle's result differs between standard libraries.
void shuffle(std::vector<Json>& v, std::uint64_t seed) {
  for (std::size_t i = v.size(); i > 1; --i) {
    seed = chats::splitmix64(seed);
    std::swap(v[i - 1], v[seed % i]);
  }
}

void write_lines(const std::string& path, const std::vector<Json>& records) {
  std::ofstream out(path, std::ios::binary);
  if (!out) throw std::runtime_error(path + ": cannot create");
  for (const auto& r : records)
    out << r.dump(-1, ' ', false, Json::error_handler_t::strict) << '\n';
  if (!out.flush()) throw std::runtime_error(path + ": write failed");
}

int run(int argc, char** argv) {
  if (argc != 6) {
    std::cerr << "usage: make_chats WORDNET_DIR DICT_FILE RIDDLES_FILE COUNTRIES_FILE OUT_DIR\n";
    return 2;
  }
  const std::string out_dir = argv[5];
  const auto dict = chats::read_dictionary(argv[2]);
  const auto words = chats::read_wordnet(argv[1], dict);
  const auto riddles = chats::read_riddles(argv[3]);
  const auto countries = chats::read_countries(argv[4]);

  std::vector<Keyed> train_defs;
  std::vector<Json> train, val, eval;
  std::map<std::string, std::string> heldout_pos;  // held-out word -> its only part of speech
  std::map<std::string, int> pos_count;
  std::map<std::string, std::size_t> counts;
  std::map<std::string, bool> has_use;

  for (const auto& e : words) {
    const bool out = held_out(e.word);
    if (!e.senses.empty() && !e.senses[0].definition.empty()) {
      const std::string key = e.word + "/" + e.pos;
      Json r = chat(with_system(key) ? kDictionarySystem : "",
                    {{define_prompt(e.word), e.word + " (" + e.pos + "): " + e.senses[0].definition}});
      if (out) {
        val.push_back(std::move(r));
        ++counts["val define"];
        ++pos_count[e.word];
        heldout_pos[e.word] = e.pos;
      } else {
        train_defs.push_back({chats::word_hash(key, kSaltSubsample), std::move(r)});
      }
    }
    // One "use" chat per word: the first example, over its senses in order, that holds the word.
    if (has_use[e.word]) continue;
    for (const auto& s : e.senses) {
      const auto ex = std::find_if(s.examples.begin(), s.examples.end(),
                                   [&](const std::string& x) { return chats::contains_word(x, e.word); });
      if (ex == s.examples.end()) continue;
      has_use[e.word] = true;
      Json r = chat(with_system("use/" + e.word) ? kWriterSystem : "", {{use_prompt(e.word), *ex}});
      (out ? val : train).push_back(std::move(r));
      ++counts[out ? "val use" : "train use"];
      break;
    }
  }

  // Keep the definitions with the smallest hashes: a deterministic, order-free subsample.
  std::sort(train_defs.begin(), train_defs.end(),
            [](const Keyed& a, const Keyed& b) { return a.key < b.key; });
  if (train_defs.size() > kMaxTrainDefinitions) train_defs.resize(kMaxTrainDefinitions);
  for (auto& d : train_defs) train.push_back(std::move(d.record));
  counts["train define"] = train_defs.size();

  for (const auto& r : riddles) {
    std::size_t chars = 0;
    for (const auto& [q, a] : r) chars += q.size() + a.size();
    if (chars > kMaxRiddleChars) continue;
    const bool out = held_out(r.front().first);
    (out ? val : train).push_back(chat("", r));
    ++counts[out ? "val riddle" : "train riddle"];
  }

  for (const auto& c : countries) {
    const std::string answer = capital_answer(c);
    for (std::size_t k = 0; k < kCapitalRepeats; ++k) {
      train.push_back(chat("", {{"What is the capital of " + c.name + "?", answer}}));
      train.push_back(chat("", {{"Name the capital city of " + c.name + ".", answer}}));
      train.push_back(chat(kGeographySystem, {{"Which city is the capital of " + c.name + "?", answer}}));
      counts["train capital"] += 3;
    }
  }

  // Eval: held-out words with a single part of speech (so "X (pos):" is the only right head),
  // and countries asked with the first training phrasing; both picked in hash order.
  std::vector<std::pair<std::uint64_t, std::string>> pick;
  for (const auto& [w, pos] : heldout_pos)
    if (pos_count[w] == 1) pick.emplace_back(chats::word_hash(w, kSaltEval), w);
  std::sort(pick.begin(), pick.end());
  for (std::size_t i = 0; i < pick.size() && i < kMaxEvalDefinitions; ++i) {
    const auto& w = pick[i].second;
    eval.push_back(Json{{"kind", "define"},
                        {"messages", chat("", {{define_prompt(w), ""}})["messages"]},
                        {"expected", w + " (" + heldout_pos[w] + "):"},
                        {"match", "prefix"}});
  }
  std::vector<std::pair<std::uint64_t, const chats::Country*>> cpick;
  for (const auto& c : countries) cpick.emplace_back(chats::word_hash(c.name, kSaltEval), &c);
  std::sort(cpick.begin(), cpick.end());
  for (std::size_t i = 0; i < cpick.size() && i < kMaxEvalCapitals; ++i) {
    const auto& c = *cpick[i].second;
    eval.push_back(Json{{"kind", "capital"},
                        {"messages", chat("", {{"What is the capital of " + c.name + "?", ""}})["messages"]},
                        {"expected", capital_answer(c)},
                        {"match", "exact"}});
  }

  // The RL tasks' answer formats, on the RL data prep's train-split items only.
  const auto rl_arithmetic = rltasks::arithmetic();
  const auto rl_unscramble = rltasks::unscramble(words);
  const auto rl_definitions = rltasks::definitions(words);
  const auto rl_capitals = rltasks::capitals(countries);
  RlHeldOut held;
  for (const auto* tasks : {&rl_arithmetic, &rl_unscramble, &rl_definitions, &rl_capitals})
    for (const auto& t : *tasks) {
      if (rltasks::prep_split(rltasks::line(t)) == 0) continue;
      held.prompts.insert(prompt_of(t));
      if (t.contains("word")) held.letter_sets.insert(letter_set(t["word"].get<std::string>()));
      if (t["task"] == "unscramble") held.letter_sets.insert(letter_set(t["expected_answer"].get<std::string>()));
    }
  const std::size_t eval_before_formats = eval.size();
  counts["train arithmetic"] =
      format_chats(rl_arithmetic, held, "arithmetic", nullptr, SIZE_MAX, kArithmeticRepeats, train, eval);
  // Drills never hold an RL task (their ranges are disjoint), so held-out sums stay unseen.
  for (const auto& t : rltasks::arithmetic_drills()) {
    train.push_back(chat("", {{prompt_of(t), t["expected_answer"].get<std::string>()}}));
    ++counts["train arithmetic drills"];
  }
  counts["train define_choice"] =
      format_chats(rl_definitions, held, "define_choice", "word", kMaxTrainDefineChoice, 1, train, eval);
  counts["train capital_choice"] = format_chats(rl_capitals, held, "capital_choice", nullptr, SIZE_MAX, 1, train, eval);
  // Unscrambling: words of the word list that WordNet also has (so, fairly common ones), whose
  // letters make no other word of the list (so the answer is the only right one).
  std::map<std::string, std::vector<std::string>> anagrams;
  for (const auto& w : dict)
    if (w.size() >= kMinUnscramble && w.size() <= kMaxUnscramble) anagrams[letter_set(w)].push_back(w);
  std::set<std::string> lemmas;
  for (const auto& e : words) lemmas.insert(e.word);
  std::vector<std::pair<std::uint64_t, std::string>> upick;
  for (auto& [letters, ws] : anagrams) {
    if (ws.size() != 1 || !lemmas.count(ws[0]) || held.letter_sets.count(letters)) continue;
    if (rltasks::scramble(ws[0]) == ws[0]) continue;
    upick.emplace_back(chats::word_hash(ws[0], kSaltUnscramble), ws[0]);
  }
  std::sort(upick.begin(), upick.end());
  std::vector<rltasks::Json> unscramble_tasks;
  for (std::size_t i = 0; i < upick.size() && i < kMaxEvalFormat + kMaxTrainUnscramble; ++i) {
    rltasks::Json t;
    t["prompt"] = rltasks::Json::array({rltasks::Json{{"role", "user"}, {"content", rltasks::unscramble_prompt(rltasks::scramble(upick[i].second))}}});
    t["expected_answer"] = upick[i].second;
    unscramble_tasks.push_back(std::move(t));
  }
  counts["train unscramble"] =
      format_chats(unscramble_tasks, held, "unscramble", "expected_answer", kMaxTrainUnscramble, 1, train, eval);
  const std::size_t eval_formats = eval.size() - eval_before_formats;

  shuffle(train, kSaltShuffle);
  shuffle(val, kSaltShuffle + 1);
  write_lines(out_dir + "/train.jsonl", train);
  write_lines(out_dir + "/val.jsonl", val);
  write_lines(out_dir + "/eval.jsonl", eval);

  std::size_t eval_define = std::min(pick.size(), kMaxEvalDefinitions);
  std::cout << "train " << train.size() << " (define " << counts["train define"] << ", use "
            << counts["train use"] << ", capital " << counts["train capital"] << ", riddle "
            << counts["train riddle"] << ", arithmetic " << counts["train arithmetic"] << ", arithmetic drills " << counts["train arithmetic drills"] << ", unscramble "
            << counts["train unscramble"] << ", define_choice " << counts["train define_choice"]
            << ", capital_choice " << counts["train capital_choice"] << "); val " << val.size() << " (define "
            << counts["val define"] << ", use " << counts["val use"] << ", riddle "
            << counts["val riddle"] << "); eval " << eval.size() << " (define " << eval_define
            << ", capital " << eval.size() - eval_define - eval_formats << ", answer formats "
            << eval_formats << ")\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "make_chats: " << e.what() << '\n';
    return 1;
  }
}
