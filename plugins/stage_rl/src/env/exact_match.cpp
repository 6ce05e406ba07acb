// exact_match: the answer must be the task's "expected_answer" text, or one of its optional
// "aliases". The answer: the response after a leading reasoning block (without_reasoning), its
// marked answer if it has one (answer_text.hpp), else all of it. Both sides are compared trimmed,
// without one trailing '.', ignoring ASCII case: "sneaker." matches "Sneaker".
#include "env/answer_text.hpp"
#include "env/builtins.hpp"

#include <cctype>
#include <stdexcept>
#include <vector>

namespace nemokit::rl {
namespace {

std::string normalized(std::string_view text) {
  std::string s = trim(text);
  if (!s.empty() && s.back() == '.') s = trim(std::string_view(s).substr(0, s.size() - 1));
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class ExactMatch : public NamedEnvironment {
 public:
  ExactMatch() : NamedEnvironment("exact_match") {}

  Reward score(const nlohmann::json& task, const std::string& response) override {
    const std::string expected = task_text(task, "expected_answer");
    std::vector<std::string> accepted = {expected};
    if (task.contains("aliases")) {
      const auto& aliases = task["aliases"];
      if (!aliases.is_array()) throw std::invalid_argument("task: \"aliases\" must be a list of texts");
      for (const auto& a : aliases) {
        if (!a.is_string() && !a.is_number_integer())
          throw std::invalid_argument("task: \"aliases\" must hold texts only, not " + std::string(a.type_name()));
        accepted.push_back(a.is_string() ? a.get<std::string>() : a.dump());
      }
    }
    for (const auto& a : accepted)
      if (normalized(a).empty()) throw std::invalid_argument("task: \"expected_answer\" and \"aliases\" must not be empty");
    const std::string_view answer_part = without_reasoning(response);
    auto marked = marked_answer(answer_part);
    const std::string answer = marked ? trim(*marked) : trim(answer_part);
    if (answer.empty())
      return {0, marked ? "the final answer is empty (expected " + excerpt(expected) + ")"
                        : "no answer in the response (expected " + excerpt(expected) + ")"};
    const std::string have = normalized(answer);
    for (const auto& a : accepted)
      if (have == normalized(a))
        return {1, "correct: " + excerpt(trim(a)) + (&a == &accepted.front() ? "" : " (an alias of " + excerpt(trim(expected)) + ")")};
    return {0, "wrong answer " + excerpt(answer) + " (expected " + excerpt(trim(expected)) + ")"};
  }
};

}  // namespace

std::unique_ptr<Environment> make_exact_match(const nlohmann::json&) { return std::make_unique<ExactMatch>(); }

}  // namespace nemokit::rl
