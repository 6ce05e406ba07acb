#pragma once
// `nemokit run super3 rl rlhf`: a reward model (the SFT model's backbone with a scalar head,
// Bradley-Terry loss on preference pairs built from the RL tasks' train split; held-out pair
// accuracy on the val split during training and the test split at the end), saved, then GRPO
// whose reward is that model's score (the `reward_model` environment). A reward model already
// at reward_model.path, or at reward_model.output from an earlier run, is used as it is.

#include "env/environment.hpp"
#include "grpo/grpo_loop.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>

namespace nemokit::rl {

int run_rlhf(const nlohmann::json& config, const std::filesystem::path& job_dir, EnvironmentSet& envs, const StageLog& host);

}  // namespace nemokit::rl
