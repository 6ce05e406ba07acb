#include "swe/swe_stage.hpp"

#include "grpo/grpo_options.hpp"
#include "swe/multi_turn.hpp"

namespace nemokit::rl::swe {

int run_swe2(const nlohmann::json& config, const std::filesystem::path& job_dir, EnvironmentSet& envs,
             const RewardFn& reward_of, const StageLog& host) {
  const ToolUseOptions tools = ToolUseOptions::from_config(config);
  const bool thinking = GrpoOptions::from_config(config).enable_thinking;
  host.info("multi-turn rollouts: up to " + std::to_string(tools.max_turns) + " model turns, tool output cut to " +
            std::to_string(tools.max_output_chars) + " characters");
  ToolsFn tools_of = [&envs](const nlohmann::json& task) { return envs.tools(task); };
  return run_grpo(config, job_dir, reward_of, host, multi_turn_rollout_fn(tools, thinking, std::move(tools_of)));
}

}  // namespace nemokit::rl::swe
