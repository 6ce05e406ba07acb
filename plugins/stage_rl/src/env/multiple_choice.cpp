// multiple_choice: the task gives "choices" (a list of texts, lettered A, B, ...) and the
// "expected_answer" letter. The chosen letter: in the marked answer (answer_text.hpp), its first
// capital letter that stands alone ("B", "(B)", "B.", "**B**") and names a choice, or else the
// choice whose text the marked answer is (any case); with no marked answer, the one choice letter
// the whole response names. A response naming several different choices without marking one
// scores 0: taking the first or the last would let a policy hedge ("B ... A") and be paid for it.
#include "env/answer_text.hpp"
#include "env/builtins.hpp"

#include <cctype>
#include <stdexcept>

namespace nemokit::rl {
namespace {

bool alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// Capital letters A.. (count) that stand alone in `text`, in order.
std::string standalone_letters(std::string_view text, size_t count) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c < 'A' || c >= static_cast<char>('A' + count)) continue;
    if ((i > 0 && alnum(text[i - 1])) || (i + 1 < text.size() && alnum(text[i + 1]))) continue;
    out += c;
  }
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class MultipleChoice : public NamedEnvironment {
 public:
  MultipleChoice() : NamedEnvironment("multiple_choice") {}

  Reward score(const nlohmann::json& task, const std::string& response) override {
    if (!task.is_object() || !task.contains("choices") || !task["choices"].is_array() || task["choices"].empty() ||
        task["choices"].size() > 26)
      throw std::invalid_argument("task: \"choices\" must be a list of 1 to 26 texts");
    const auto& choices = task["choices"];
    for (const auto& c : choices)
      if (!c.is_string()) throw std::invalid_argument("task: \"choices\" must hold texts only");
    std::string expected = trim(task_text(task, "expected_answer"));
    if (expected.size() != 1 || expected[0] < 'A' || expected[0] >= static_cast<char>('A' + choices.size()))
      throw std::invalid_argument("task: \"expected_answer\" must be one of the letters A.." +
                                  std::string(1, static_cast<char>('A' + choices.size() - 1)) + ", not \"" +
                                  excerpt(expected) + "\"");
    char chosen = 0;
    if (auto marked = marked_answer(response)) {
      std::string letters = standalone_letters(*marked, choices.size());
      if (!letters.empty()) chosen = letters.front();
      for (size_t i = 0; !chosen && i < choices.size(); ++i)
        if (lower(trim(choices[i].get<std::string>())) == lower(*marked)) chosen = static_cast<char>('A' + i);
      if (!chosen) return {0, "the final answer \"" + excerpt(*marked) + "\" names no choice"};
    } else {
      std::string letters = standalone_letters(response, choices.size());
      if (letters.empty()) return {0, "no choice letter in the response"};
      if (letters.find_first_not_of(letters.front()) != std::string::npos)
        return {0, "names several choices (" + letters + ") without marking one as the answer"};
      chosen = letters.front();
    }
    if (chosen != expected[0]) return {0, std::string("chose ") + chosen + " (expected " + expected + ")"};
    return {1, "correct: " + expected};
  }
};

}  // namespace

std::unique_ptr<Environment> make_multiple_choice(const nlohmann::json&) { return std::make_unique<MultipleChoice>(); }

}  // namespace nemokit::rl
