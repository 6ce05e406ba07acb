#pragma once
// Held-out tasks answered and scored: the GRPO loop's val reward and the eval stage's task
// accuracy are one computation. Tasks are rendered and rolled out as in training, each answer is
// scored by its task's environments, and the rewards are averaged per kind (the task's "task"
// field, else its environment) and over all ("all").

#include "grpo/rollout.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace nemokit::rl {

// What metrics group a task under: its "task" kind when it names one, else its environment.
std::string task_kind(const nlohmann::json& task);

struct KindRewards {
  std::map<std::string, std::pair<double, int64_t>> sums;  // kind ("all" too) -> (reward sum, samples)
  double mean(const std::string& kind) const;
  nlohmann::json means() const;  // {"all": x, "<kind>": x, ...}
};
KindRewards rewards_by_kind(const std::vector<const nlohmann::json*>& tasks, const std::vector<Sample>& samples);

// Stop strings that are one token of `tok` stop generation (`tokens`); longer ones cut the
// response after generation (`strings`).
void split_stop_strings(const rt::Tokenizer& tok, const std::vector<std::string>& stops, std::vector<int32_t>& tokens,
                        std::vector<std::string>& strings);

struct TaskEvalOptions {
  int64_t generations = 1;     // answers per task, their rewards averaged
  int64_t max_new_tokens = 16;
  double temperature = 0;      // 0: greedy
  double top_p = 1;
  uint64_t seed = 0;           // the same draws at every evaluation
  std::vector<std::string> stop_strings;
  std::vector<int64_t> prompt_places;  // each task's place in the whole eval set (RolloutOptions)
};

// `prompts[i]` rendered from `tasks[i]` (render_prompt); `media`: each prompt's encoder inputs,
// or null for text only.
RolloutResult evaluate_tasks(rt::NemotronH& model, const rt::Tokenizer& tok, const std::vector<const nlohmann::json*>& tasks,
                             const std::vector<std::vector<int32_t>>& prompts,
                             const std::vector<std::vector<rt::MediaInput>>* media, const TaskEvalOptions& o,
                             const RewardFn& reward_of, const RolloutFn& rollout_of = rollout);

}  // namespace nemokit::rl
