// answer_format: rewards following the requested output format, whatever the answer is.
// The format is the task's "answer_format", else the setting `format`, else "answer_line":
//   answer_line  the last non-empty line is "Answer: X" (that exact prefix, X not empty) and no
//                earlier line starts with "Answer:";
//   boxed        exactly one \boxed{...}, braces balanced, content not empty.
// With "max_chars" (task, else setting) a longer response scores 0 whatever its format.
#include "env/answer_text.hpp"
#include "env/builtins.hpp"

#include <stdexcept>
#include <vector>

namespace nemokit::rl {
namespace {

std::vector<std::string_view> nonempty_lines(std::string_view text) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    std::string_view line = text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    if (!trim(line).empty()) out.push_back(line);
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  return out;
}

Reward answer_line(std::string_view response) {
  auto lines = nonempty_lines(response);
  if (lines.empty()) return {0, "empty response"};
  std::string last = trim(lines.back());
  if (last.rfind("Answer: ", 0) != 0 || trim(last.substr(8)).empty())
    return {0, "the last line is not \"Answer: ...\" (it is \"" + excerpt(last) + "\")"};
  for (size_t i = 0; i + 1 < lines.size(); ++i)
    if (trim(lines[i]).rfind("Answer:", 0) == 0) return {0, "more than one \"Answer:\" line"};
  return {1, "answer line present"};
}

Reward boxed(std::string_view response) {
  size_t n = count_boxed(response);
  if (n == 0) return {0, "no \\boxed{...}"};
  if (n > 1) return {0, std::to_string(n) + " \\boxed{...} (one expected)"};
  auto content = last_boxed(response);
  if (!content) return {0, "unbalanced braces in \\boxed{...}"};
  if (content->empty()) return {0, "empty \\boxed{}"};
  return {1, "one boxed answer"};
}

class AnswerFormat : public NamedEnvironment {
 public:
  AnswerFormat(std::string format, long long max_chars)
      : NamedEnvironment("answer_format"), format_(std::move(format)), max_chars_(max_chars) {}

  Reward score(const nlohmann::json& task, const std::string& response) override {
    std::string format = task.is_object() && task.contains("answer_format") ? task_text(task, "answer_format") : format_;
    long long max_chars = max_chars_;
    if (task.is_object() && task.contains("max_chars")) {
      if (!task["max_chars"].is_number_integer()) throw std::invalid_argument("task: \"max_chars\" must be an integer");
      max_chars = task["max_chars"].get<long long>();
    }
    if (format != "answer_line" && format != "boxed")
      throw std::invalid_argument("task: \"answer_format\" must be \"answer_line\" or \"boxed\", not \"" + excerpt(format) + "\"");
    if (max_chars > 0 && static_cast<long long>(response.size()) > max_chars)
      return {0, "response of " + std::to_string(response.size()) + " bytes is longer than " + std::to_string(max_chars)};
    return format == "boxed" ? boxed(response) : answer_line(response);
  }

 private:
  std::string format_;
  long long max_chars_;
};

}  // namespace

std::unique_ptr<Environment> make_answer_format(const nlohmann::json& settings) {
  std::string format = "answer_line";
  long long max_chars = 0;
  if (settings.contains("format")) {
    if (!settings["format"].is_string() || (settings["format"] != "answer_line" && settings["format"] != "boxed"))
      throw std::invalid_argument("environments.answer_format.format must be \"answer_line\" or \"boxed\"");
    format = settings["format"].get<std::string>();
  }
  if (settings.contains("max_chars")) {
    if (!settings["max_chars"].is_number_integer()) throw std::invalid_argument("environments.answer_format.max_chars must be an integer");
    max_chars = settings["max_chars"].get<long long>();
  }
  return std::make_unique<AnswerFormat>(format, max_chars);
}

}  // namespace nemokit::rl
