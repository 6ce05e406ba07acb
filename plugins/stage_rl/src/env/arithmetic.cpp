// arithmetic: the response's final answer must be the task's integer "expected_answer" exactly.
// Final answer: the marked answer (answer_text.hpp) if any, else the whole response; in it, the
// last number. Leading zeros and a '+' sign do not matter; decimals never equal an integer.
#include "env/answer_text.hpp"
#include "env/builtins.hpp"

#include <stdexcept>

namespace nemokit::rl {

std::string task_text(const nlohmann::json& task, const char* key) {
  if (!task.is_object() || !task.contains(key))
    throw std::invalid_argument(std::string("task: \"") + key + "\" is missing");
  const auto& v = task[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return v.dump();
  throw std::invalid_argument(std::string("task: \"") + key + "\" must be a string, not " + v.type_name());
}

namespace {

class Arithmetic : public NamedEnvironment {
 public:
  Arithmetic() : NamedEnvironment("arithmetic") {}

  Reward score(const nlohmann::json& task, const std::string& response) override {
    std::string raw = task_text(task, "expected_answer");
    auto expected = normalize_integer(trim(raw));
    if (!expected) throw std::invalid_argument("task: \"expected_answer\" must be an integer, not \"" + excerpt(raw) + "\"");
    auto marked = marked_answer(response);
    std::string_view part = marked ? std::string_view(*marked) : std::string_view(response);
    auto number = last_number(part);
    if (!number)
      return {0, marked ? "no number in the final answer \"" + excerpt(*marked) + "\"" : "no number in the response"};
    auto got = normalize_integer(*number);
    if (!got) return {0, "final answer " + excerpt(*number) + " is not an integer (expected " + *expected + ")"};
    if (*got != *expected) return {0, "wrong answer " + excerpt(*got) + " (expected " + *expected + ")"};
    return {1, "correct: " + *expected};
  }
};

}  // namespace

std::unique_ptr<Environment> make_arithmetic(const nlohmann::json&) { return std::make_unique<Arithmetic>(); }

}  // namespace nemokit::rl
