#pragma once
// `nemokit run super3 rl swe2`: GRPO whose rollouts are multi-turn episodes with the task
// environment's tools ([tool_use], multi_turn.hpp). swe1 is plain GRPO (one turn, the response a
// patch) over the same environment and needs nothing of its own.

#include "env/environment.hpp"
#include "grpo/grpo_loop.hpp"

namespace nemokit::rl::swe {

int run_swe2(const nlohmann::json& config, const std::filesystem::path& job_dir, EnvironmentSet& envs,
             const RewardFn& reward_of, const StageLog& host);

}  // namespace nemokit::rl::swe
