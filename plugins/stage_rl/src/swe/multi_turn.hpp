#pragma once
// Multi-turn rollouts (super3 rl swe2): the model may call the `run` tool (tool_protocol.hpp) up
// to max_turns - 1 times; each call runs in the task's own sandboxed copy of the repository (the
// environment's tools(task) session, opened at the first call) and its output joins the context
// as a tool turn, then generation goes on. The episode ends at a turn without a tool call, at
// max_turns, or when the response reaches max_response_tokens; its last model turn is the answer
// the environment scores (for code_execution: the patch, applied to a fresh copy).
// The sample's response is every token after the prompt: the model's own (trained = 1) and the
// tool turns (trained = 0), so the loss trains the model's tokens only.

#include "grpo/rollout.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>

namespace nemokit::rl::swe {

struct ToolUseOptions {
  int64_t max_turns = 4;              // model turns per episode, the final answer included
  int64_t max_output_chars = 2048;    // of each tool output kept in the context
  int64_t max_response_tokens = 0;    // model + tool tokens per episode (0: no cap but the turns)
  int64_t tool_threads = 8;           // tool sessions and scoring run this many at once
  // Generate in every turn even when no episode of this rank runs any more: with experts split
  // over ranks generation is a collective, and the other ranks' episodes may still run.
  bool every_turn = false;
  // [tool_use]; absent: the defaults. Throws std::invalid_argument naming the key.
  static ToolUseOptions from_config(const nlohmann::json& config);
};

// New tokens for each context (the runtime's batched generation, or a scripted policy in tests).
using GenerateFn = std::function<std::vector<std::vector<int32_t>>(const std::vector<std::vector<int32_t>>& contexts,
                                                                   const rt::SamplingOptions& sampling)>;
// A task's tool session (nullptr: its environment has no tools; a call then gets an error).
using ToolsFn = std::function<std::unique_ptr<Environment::Tools>(const nlohmann::json& task)>;

struct EpisodeLog {        // per sample, for metrics and the tests
  int64_t turns = 0, tool_calls = 0, tool_tokens = 0;
  std::vector<ToolTurn> calls;
};

struct MultiTurnResult {
  RolloutResult rollout;
  std::vector<EpisodeLog> episodes;
};

// `enable_thinking`: the generation prompt after a tool turn opens a reasoning block (as the
// prompt's did). Sequence j of a turn draws from a generator seeded from (seed of the turn, j).
MultiTurnResult multi_turn_rollout(const GenerateFn& generate, const rt::Tokenizer& tok,
                                   const std::vector<const nlohmann::json*>& tasks,
                                   const std::vector<std::vector<int32_t>>& prompts, const RolloutOptions& o,
                                   const ToolUseOptions& tools, bool enable_thinking, const ToolsFn& tools_of,
                                   const RewardFn& reward_of);

// The GRPO loop's rollout function for multi-turn tasks (the model's own batched generation).
RolloutFn multi_turn_rollout_fn(const ToolUseOptions& tools, bool enable_thinking, ToolsFn tools_of);

}  // namespace nemokit::rl::swe
