// A complete environment plugin: one class, one macro. "exact_text" scores 1 when the response,
// trimmed, is the task's "expected_answer" (ignoring case when the setting "ignore_case" is
// true). Its tools echo each command back, numbered, to show a session keeping state.
#include <nemokit/reward.hpp>

#include <cctype>
#include <memory>
#include <optional>
#include <regex>
#include <string>

namespace {

// Tasks and settings arrive as JSON; this example avoids a JSON library to show the ABI needs none.
std::optional<std::string> json_string(const std::string& json, const std::string& key) {
  std::smatch m;
  std::regex re("\"" + key + "\"\\s*:\\s*\"([^\"]*)\"");
  if (!std::regex_search(json, m, re)) return std::nullopt;
  return m[1].str();
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class Echo : public nemokit::sdk::ToolSession {
 public:
  nemokit::sdk::ToolOutput run(const std::string& command) override {
    return {std::to_string(++turn_) + ": " + command, command.empty() ? 1 : 0};
  }

 private:
  int turn_ = 0;
};

class ExactText : public nemokit::sdk::Environment {
 public:
  static constexpr const char* name = "exact_text";

  explicit ExactText(const std::string& settings_json)
      : ignore_case_(std::regex_search(settings_json, std::regex("\"ignore_case\"\\s*:\\s*true"))) {}

  nemokit::sdk::Score score(const std::string& task_json, std::string_view response) override {
    auto expected = json_string(task_json, "expected_answer");
    if (!expected) throw nemokit::sdk::BadTask("task: \"expected_answer\" is missing");
    std::string got = trim(response);
    bool same = ignore_case_ ? lower(got) == lower(*expected) : got == *expected;
    if (same) return {1.0, "exact match"};
    return {0.0, "expected \"" + *expected + "\", got \"" + got.substr(0, 40) + "\""};
  }

  std::unique_ptr<nemokit::sdk::ToolSession> tools(const std::string&) override { return std::make_unique<Echo>(); }

 private:
  bool ignore_case_;
};

}  // namespace

NEMOKIT_REWARD_PLUGIN(ExactText)
