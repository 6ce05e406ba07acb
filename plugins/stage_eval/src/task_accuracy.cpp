#include "task_accuracy.hpp"

#include "grpo/task_eval.hpp"
#include "omni/media_items.hpp"
#include "omni/media_options.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>

namespace nemokit::eval {
using nlohmann::json;

TaskSuite::TaskSuite(const TaskOptions& o, rl::EnvironmentSet& envs) : o_(o), envs_(envs) {
  std::map<std::string, int64_t> per_kind;
  std::set<std::string> environments;
  rl::for_each_input_task(o_.data, [&](rl::InputTask& t) {
    if (std::find(o_.use.begin(), o_.use.end(), t.split) == o_.use.end()) return;
    if (o_.max_per_kind > 0 && per_kind[rl::task_kind(t.record)]++ >= o_.max_per_kind) return;
    // Every environment must exist before any model loads: one task of each is scored once.
    if (environments.insert(t.record["environment"].dump()).second) envs_.score(t.record, "");
    const bool media = !sft::media_paths(t.record).empty();
    tasks_.push_back({std::move(t.record), t.file.parent_path(), t.where, media});
  });
  if (tasks_.empty()) {
    std::string use;
    for (int s : o_.use) use += (use.empty() ? "" : ", ") + std::string(rl::kSplitNames[s]);
    throw std::invalid_argument("tasks.data.inputs: no task falls in the split(s) in use (" + use + ") with split \"" +
                                std::to_string(o_.data.split[0]) + "," + std::to_string(o_.data.split[1]) + "," +
                                std::to_string(o_.data.split[2]) + "\"");
  }
}

std::vector<Row> TaskSuite::run(rt::NemotronH& model, const rt::Tokenizer& tok, const json& media) const {
  const sft::MediaOptions mo = sft::MediaOptions::for_model({{"data", {{"media", media}}}}, model);
  std::vector<const json*> tasks;
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::vector<rt::MediaInput>> inputs;
  for (const Task& t : tasks_) {
    if (t.has_media && !mo.enabled()) continue;  // a text model beside omni models: text tasks only
    tasks.push_back(&t.record);
    prompts.push_back(rl::render_prompt(t.record, tok, o_.enable_thinking, t.where));
    inputs.push_back(sft::prompt_media(prompts.back(), t.record, t.base, mo, tok, t.where));
  }
  if (tasks.empty()) return {};
  rl::TaskEvalOptions eo;
  eo.max_new_tokens = o_.max_new_tokens;
  eo.stop_strings = o_.stop_strings;
  const rl::RewardFn reward_of = [this](const json& task, const std::string& response) { return envs_.score(task, response); };
  const rl::RolloutResult r = rl::evaluate_tasks(model, tok, tasks, prompts, &inputs, eo, reward_of);
  const rl::KindRewards k = rl::rewards_by_kind(tasks, r.samples);
  std::vector<Row> rows = {{"tasks/all", "tasks: mean reward", k.mean("all"), k.sums.at("all").second, "tasks", 3}};
  for (const auto& [kind, sum] : k.sums)
    if (kind != "all") rows.push_back({"tasks/" + kind, "  " + kind, k.mean(kind), sum.second, "tasks", 3});
  return rows;
}

}  // namespace nemokit::eval
