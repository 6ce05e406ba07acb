#pragma once
// `nemokit run nano3 rl` / `nemokit run super3 rl rlvr`: GRPO from the SFT model. Resolves the
// model (model.init_from, as SFT does), prepares the task splits when data.output has none,
// then per step: P tasks from the train split, G sampled responses each, rewards from the tasks'
// environments, group-normalized advantages, old (and reference) log-probs fixed from the
// rollout, num_epochs passes of clipped-surrogate updates. Reward on the val split before
// training and every eval_interval steps; metrics.jsonl, checkpoints, exact resume, live progress.

#include "grpo/rollout.hpp"

#include "nemokit/runtime/comm.hpp"

#include "train/sft_loop.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>

namespace nemokit::rl {

using StageLog = sft::StageLog;

// Returns 0 when max_steps are done, rt::kExitStoppedResumable after a signal's checkpoint.
// `rollout_of` makes the responses of training steps and evaluations (default: one turn each).
// Data parallel over the job's ranks (`comm`, else the communicator it opens, [parallel]): each
// rank samples and trains its blocks of every update (rank_share.hpp) and evaluates its block of
// the val tasks; gradients, the loss normalization and the metrics cover all ranks, so the run
// does not depend on their number. Rank 0 alone writes checkpoints, metrics and progress.
int run_grpo(const nlohmann::json& config, const std::filesystem::path& job_dir, const RewardFn& reward_of,
             const StageLog& host, const RolloutFn& rollout_of = rollout, rt::Communicator* comm = nullptr);

// `nemokit data prep FAMILY rl`: returns the folder written (data.output, else JOB/data).
std::filesystem::path prepare_rl_data(const nlohmann::json& config, const std::filesystem::path& job_dir, const StageLog& host);

}  // namespace nemokit::rl
