// unscramble: the task gives "letters" (or only "expected_answer", whose letters are used); the
// answer scores 1 when it uses exactly those letters (any case) and is a word of the word list
// (Debian's wamerican by default; entries with other than ASCII letters are skipped) or the
// expected answer itself. The answer is the last run of letters in the marked answer
// (answer_text.hpp), else in the whole response.
#include "env/answer_text.hpp"
#include "env/builtins.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <unordered_set>

namespace nemokit::rl {
namespace {

std::string lower_letters(std::string_view s) {
  std::string out;
  for (char c : s) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool all_letters(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); });
}

std::string last_word(std::string_view text) {
  size_t e = text.size();
  while (e > 0 && !std::isalpha(static_cast<unsigned char>(text[e - 1]))) --e;
  size_t b = e;
  while (b > 0 && std::isalpha(static_cast<unsigned char>(text[b - 1]))) --b;
  return std::string(text.substr(b, e - b));
}

class Unscramble : public NamedEnvironment {
 public:
  explicit Unscramble(std::string word_list) : NamedEnvironment("unscramble"), path_(std::move(word_list)) {}

  Reward score(const nlohmann::json& task, const std::string& response) override {
    std::string expected = task.is_object() && task.contains("expected_answer") ? task_text(task, "expected_answer") : "";
    std::string letters = task.is_object() && task.contains("letters") ? task_text(task, "letters") : expected;
    if (letters.empty()) throw std::invalid_argument("task: needs \"letters\" or \"expected_answer\"");
    if (!all_letters(letters)) throw std::invalid_argument("task: \"letters\" must be letters only, not \"" + excerpt(letters) + "\"");
    auto marked = marked_answer(response);
    std::string word = lower_letters(last_word(marked ? std::string_view(*marked) : std::string_view(response)));
    if (word.empty()) return {0, "no word in the response"};
    std::string want = lower_letters(letters), have = word;
    std::sort(want.begin(), want.end());
    std::sort(have.begin(), have.end());
    if (want != have) return {0, "\"" + excerpt(word) + "\" does not use exactly the letters " + lower_letters(letters)};
    if (word == lower_letters(expected)) return {1, "correct: " + word};
    if (!words().count(word)) return {0, "\"" + word + "\" is not in the word list " + path_};
    return {1, "correct: " + word + " (a word of the list)"};
  }

 private:
  // Read once, on first use, so that a set which never scores unscrambling needs no word list.
  const std::unordered_set<std::string>& words() {
    std::call_once(once_, [&] {
      std::ifstream in(path_);
      if (!in) {
        error_ = path_ + ": cannot read the word list (environments.unscramble.word_list; Debian's wamerican installs it)";
        return;
      }
      std::string line;
      while (std::getline(in, line))
        if (all_letters(line)) words_.insert(lower_letters(line));
      if (words_.empty()) error_ = path_ + ": the word list has no words";
    });
    if (!error_.empty()) throw std::runtime_error(error_);
    return words_;
  }

  std::string path_, error_;
  std::once_flag once_;
  std::unordered_set<std::string> words_;
};

}  // namespace

std::unique_ptr<Environment> make_unscramble(const nlohmann::json& settings) {
  std::string path = "/usr/share/dict/american-english";
  if (settings.contains("word_list")) {
    if (!settings["word_list"].is_string()) throw std::invalid_argument("environments.unscramble.word_list must be a path");
    path = settings["word_list"].get<std::string>();
  }
  return std::make_unique<Unscramble>(path);
}

}  // namespace nemokit::rl
