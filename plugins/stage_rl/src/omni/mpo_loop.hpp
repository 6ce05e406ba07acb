#pragma once
// `nemokit run omni3 rl mpo`: mixed preference optimization (InternVL's MPO, TRL's loss types
// sigmoid + bco_pair + sft) of the omni3 SFT model on the pairs mpo_pairs.hpp makes, against the
// starting model frozen as the reference. Per step: `train.pairs_per_step` pairs, the policy's
// summed log-probs of both answers (images through the encoders), the loss terms and their
// gradients on those sums (mpo/mpo_math.hpp), and one backward whose per-token weights carry
// them. Held-out pairs: the chosen-minus-rejected margin against the reference, and the share of
// pairs the policy prefers rightly, before training and every eval_interval steps.

#include "grpo/grpo_loop.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>

namespace nemokit::rl {

int run_mpo(const nlohmann::json& config, const std::filesystem::path& job_dir, const RewardFn& reward_of,
            const StageLog& host);

}  // namespace nemokit::rl
