#pragma once
// What the GRPO loop asks of a reward environment, whether built in or loaded from a third
// party's environment plugin (sdk/include/nemokit/reward.h). One task is one RL record (its
// JSON object: prompt, expected answer, environment name, anything the environment needs).

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace nemokit::rl {

struct Reward {
  double value = 0;    // usually in [0, 1]
  std::string reason;  // why: "correct", "wrong answer 12 (expected 13)", "timeout after 10 s", ...
};

// One command run by the model during a multi-turn episode (swe2) and what it printed.
struct ToolTurn {
  std::string command, output;
  int exit_code = 0;
};

class Environment {
 public:
  virtual ~Environment() = default;
  virtual const std::string& name() const = 0;
  // Scores one response to one task. Never throws for anything the response holds (malformed,
  // hostile, huge): that is a reward with a reason. Throws std::invalid_argument only for a task
  // the environment cannot read (naming the key). Safe to call from several threads at once.
  virtual Reward score(const nlohmann::json& task, const std::string& response) = 0;
  // Multi-turn tool use: runs `command` for the task's episode (e.g. in the sandboxed repository)
  // and returns what it printed. Environments without tools return nullptr from tools().
  class Tools {
   public:
    virtual ~Tools() = default;
    virtual ToolTurn run(const std::string& command) = 0;
  };
  virtual std::unique_ptr<Tools> tools(const nlohmann::json& task) { return nullptr; }
};

// Built-in environments by name plus those from environment plugins. `config` is the stage
// config's [environments] table (may be absent): plugin paths and per-environment settings.
// The keys (README.md in this folder): plugins = [files or folders], weights = {name = w},
// always = {name = w}, and a table per environment ([environments.unscramble] word_list = ...).
class EnvironmentSet {
 public:
  static EnvironmentSet load(const nlohmann::json& config);
  // Throws std::invalid_argument naming the environment and listing the known ones.
  Environment& get(const std::string& name);
  std::vector<std::string> names() const;

  // The task's reward: its "environment" (a name, a list of names, or {name: weight}) plus the
  // config's `always` environments, as a weighted sum; the reason lists each part. Throws
  // std::invalid_argument for a task whose "environment" is missing or unknown.
  Reward score(const nlohmann::json& task, const std::string& response);
  // Tools of the first of the task's environments that has them; nullptr when none does.
  std::unique_ptr<Environment::Tools> tools(const nlohmann::json& task);

  // Adds an environment; a name already taken is an error naming both sources.
  void add(std::unique_ptr<Environment> env, const std::string& source);

 private:
  std::vector<std::unique_ptr<Environment>> envs_;
  std::vector<std::string> sources_;                       // "built-in" or the plugin file, per env
  std::vector<std::pair<std::string, double>> weights_;    // config `weights`
  std::vector<std::pair<std::string, double>> always_;     // config `always`
};

}  // namespace nemokit::rl
