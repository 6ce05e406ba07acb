#pragma once
// The arithmetic of GRPO, free of the model so it can be checked by hand:
//   advantages   A_i = (R_i - b_i) / (std(R) + eps) over the G samples of one prompt, with b_i
//                the group mean, or the mean of the other G-1 rewards (leave-one-out);
//   per token    loss_t = -min(r A, clip(r, 1 - eps_low, 1 + eps_high) A) + beta k3,
//                r = exp(lp - lp_old), k3 = exp(ref - lp) - (ref - lp) - 1;
//   normalization  token: every response token of the update's batch weighs 1/T (T tokens);
//                  sequence: each response's tokens are averaged, then the responses.
// The runtime's loss is a weighted cross-entropy sum_t w_t CE_t with CE_t = -lp_t, and
// d loss_t / d theta = grad_weight * d CE_t / d theta with (see token_term)
//   grad_weight = A r  while the unclipped branch is the minimum (0 where the clip holds it),
//               + beta (exp(ref - lp) - 1)          (d k3 / d lp = 1 - exp(ref - lp)),
// so one weighted backward with w_t = scale_t * grad_weight_t gives the surrogate's gradient.

#include <cstdint>
#include <limits>
#include <vector>

namespace nemokit::rl {

enum class Baseline { Mean, LeaveOneOut };

struct AdvantageOptions {
  Baseline baseline = Baseline::Mean;
  bool scale_by_std = true;  // divide by the group's sample standard deviation (n - 1) + eps
  double eps = 1e-6;
};

// rewards: consecutive groups of `group_size` samples of the same prompt. Groups whose rewards
// are all equal get advantage 0 (nothing to learn from them). Throws std::invalid_argument when
// the size is not a multiple of group_size.
std::vector<double> group_advantages(const std::vector<double>& rewards, int64_t group_size, const AdvantageOptions& o);

struct SurrogateOptions {
  double clip_low = 0.2, clip_high = 0.28;  // ratio kept in [1 - clip_low, 1 + clip_high]
  double kl_beta = 0.0;
  // log-ratios are clamped to +-this before exp, so a token the policy now finds far more (or
  // less) likely cannot overflow the ratio
  double max_log_ratio = 20.0;
};

struct TokenTerm {
  double loss = 0;         // -min(r A, clip(r) A) + beta k3
  double grad_weight = 0;  // d loss / d CE (see above)
  double ratio = 1;
  double kl = 0;           // k3 (0 without a reference)
  bool clipped = false;    // the clip cut this token's surrogate gradient
};

constexpr double kNoReference = std::numeric_limits<double>::quiet_NaN();

// lp, old_lp, ref_lp: log-probabilities of the sampled token under the current policy, the
// policy that sampled it, and the frozen reference (kNoReference: no KL term).
TokenTerm token_term(double lp, double old_lp, double ref_lp, double advantage, const SurrogateOptions& o);

enum class LossNormalization { Token, Sequence };

// The factor each response's tokens get, from the responses' token counts in one update's batch.
// Token: 1 / sum(lengths). Sequence: 1 / (length_i * responses with a token). Empty responses get 0.
std::vector<double> sequence_scales(const std::vector<int64_t>& lengths, LossNormalization n);

}  // namespace nemokit::rl
