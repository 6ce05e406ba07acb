#pragma once
// `nemokit data prep omni3 rl -c mpo`: preference pairs from the model's own answers. The task
// files (data.inputs, the RL task format, media included) are split as every RL prep splits
// them; then the model (model.init_from: the omni3 SFT model) answers each task
// `mpo_data.samples_per_task` times at `mpo_data.temperature`, the tasks' environments score the
// answers, and a task becomes a pair:
//   chosen    the most frequent answer that scored, else the task's expected answer
//   rejected  the most frequent answer that did not
// (a task the model always answers right gives no pair). OUT holds train/val/test.jsonl of
// pairs — the task's fields plus "chosen", "rejected", "chosen_source" ("sample"|"expected") —
// their media, manifest.json and metadata.json, swapped in at once.

#include "grpo/grpo_loop.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>

namespace nemokit::rl {

std::filesystem::path prepare_mpo_data(const nlohmann::json& config, const std::filesystem::path& job_dir,
                                       const RewardFn& reward_of, const StageLog& host);

}  // namespace nemokit::rl
