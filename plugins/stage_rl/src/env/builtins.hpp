#pragma once
// The built-in environments. Each factory takes its settings: the config's
// [environments.<name>] table as JSON ({} when absent); a bad setting throws
// std::invalid_argument naming "environments.<name>.<key>".

#include "env/environment.hpp"

namespace nemokit::rl {

std::unique_ptr<Environment> make_arithmetic(const nlohmann::json& settings);
std::unique_ptr<Environment> make_unscramble(const nlohmann::json& settings);
std::unique_ptr<Environment> make_multiple_choice(const nlohmann::json& settings);
std::unique_ptr<Environment> make_answer_format(const nlohmann::json& settings);
std::unique_ptr<Environment> make_code_execution(const nlohmann::json& settings);
std::unique_ptr<Environment> make_exact_match(const nlohmann::json& settings);

// A base that keeps the name, for environments that need nothing else from it.
class NamedEnvironment : public Environment {
 public:
  explicit NamedEnvironment(std::string name) : name_(std::move(name)) {}
  const std::string& name() const override { return name_; }

 private:
  std::string name_;
};

// The task's `key` as text: a JSON string, or an integer written out. Throws
// std::invalid_argument naming the key when it is missing or of another type.
std::string task_text(const nlohmann::json& task, const char* key);

}  // namespace nemokit::rl
