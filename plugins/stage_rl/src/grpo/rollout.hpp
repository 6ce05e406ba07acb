#pragma once
// Rollouts: tasks rendered with the Nemotron 3 chat template (the SFT stage's renderer), G
// samples each from the runtime's batched generation (KV/SSM caches per sequence, one seeded
// generator per sequence), cut at stop strings and scored by the tasks' environments.

#include "env/environment.hpp"
#include "grpo/policy.hpp"

#include "nemokit/runtime/generate.hpp"
#include "nemokit/runtime/tokenizer.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <span>
#include <string>
#include <vector>

namespace nemokit::rl {

// A task's reward for a response: the environment set's score (the task's "environment" may name
// one environment, several, or weights); throws std::invalid_argument for a task it cannot read.
using RewardFn = std::function<Reward(const nlohmann::json& task, const std::string& response)>;

// The prompt's token ids: "prompt" as messages (or a string: one user message), the task's
// "tools" (if any) in the system turn, then the assistant's generation prompt. Throws std::invalid_argument naming `where`.
std::vector<int32_t> render_prompt(const nlohmann::json& task, const rt::Tokenizer& tok, bool enable_thinking,
                                   const std::string& where);

struct RolloutOptions {
  int64_t generations = 1;  // G samples per task
  // omni3: each prompt's encoder inputs (prompt positions); null or empty: text only
  const std::vector<std::vector<rt::MediaInput>>* media = nullptr;
  rt::SamplingOptions sampling;
  std::vector<std::string> stop_strings;  // besides the stop tokens; the response ends after one
  // Each prompt's place among the step's prompts when this rank has a share of them (data
  // parallel); empty: 0, 1, ... Sample g of prompt i draws from stream place_i x generations + g,
  // so every sample is the same whichever rank makes it.
  std::vector<int64_t> prompt_places;
};

// The generator streams (rt::SamplingOptions::streams) of the sequences of `prompts` prompts x
// o.generations, prompt-major.
std::vector<uint64_t> sample_streams(size_t prompts, const RolloutOptions& o);

struct RolloutResult {
  std::vector<Sample> samples;      // task-major: task t's samples are [t*G, (t+1)*G)
  std::vector<std::string> texts;   // each response's answer text as the environment saw it
  std::vector<std::string> reasons; // each reward's reason
  int64_t generated_tokens = 0;
  double seconds = 0;
  nlohmann::json stats = nlohmann::json::object();  // extra step metrics (multi-turn: turns, tool calls)
};

// Responses to `tasks` (prompts[i] rendered from tasks[i]), scored. Each sequence draws from its
// own generator seeded from (sampling.seed, its stream: sample_streams).
RolloutResult rollout(rt::NemotronH& model, const rt::Tokenizer& tok, const std::vector<const nlohmann::json*>& tasks,
                      const std::vector<std::vector<int32_t>>& prompts, const RolloutOptions& o,
                      const RewardFn& reward_of);

// How a step's (and an evaluation's) responses are made and scored: `rollout` above, or a
// multi-turn episode loop (swe/multi_turn.hpp).
using RolloutFn = std::function<RolloutResult(rt::NemotronH&, const rt::Tokenizer&, const std::vector<const nlohmann::json*>&,
                                              const std::vector<std::vector<int32_t>>&, const RolloutOptions&, const RewardFn&)>;

// The shortest prefix of `response` whose text holds one of `stops` (all of it when none does).
size_t stop_cut(const rt::Tokenizer& tok, const std::vector<int32_t>& response, const std::vector<std::string>& stops);

}  // namespace nemokit::rl
