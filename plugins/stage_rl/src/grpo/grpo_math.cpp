#include "grpo/grpo_math.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace nemokit::rl {

std::vector<double> group_advantages(const std::vector<double>& rewards, int64_t group_size, const AdvantageOptions& o) {
  if (group_size < 1 || rewards.size() % size_t(group_size) != 0)
    throw std::invalid_argument("group_advantages: " + std::to_string(rewards.size()) + " rewards do not form groups of " +
                                std::to_string(group_size));
  std::vector<double> adv(rewards.size(), 0.0);
  const size_t G = size_t(group_size);
  for (size_t g = 0; g < rewards.size(); g += G) {
    double sum = 0;
    for (size_t i = 0; i < G; ++i) sum += rewards[g + i];
    const double mean = sum / double(G);
    double var = 0;
    for (size_t i = 0; i < G; ++i) var += (rewards[g + i] - mean) * (rewards[g + i] - mean);
    const double stdev = G > 1 ? std::sqrt(var / double(G - 1)) : 0.0;
    if (G == 1 || var == 0) continue;  // one sample, or all equal: no signal
    for (size_t i = 0; i < G; ++i) {
      const double baseline = o.baseline == Baseline::Mean ? mean : (sum - rewards[g + i]) / double(G - 1);
      double a = rewards[g + i] - baseline;
      if (o.scale_by_std) a /= stdev + o.eps;
      adv[g + i] = a;
    }
  }
  return adv;
}

TokenTerm token_term(double lp, double old_lp, double ref_lp, double advantage, const SurrogateOptions& o) {
  TokenTerm t;
  const double log_ratio = std::clamp(lp - old_lp, -o.max_log_ratio, o.max_log_ratio);
  t.ratio = std::exp(log_ratio);
  const double clipped_ratio = std::clamp(t.ratio, 1.0 - o.clip_low, 1.0 + o.clip_high);
  const double unclipped = t.ratio * advantage, held = clipped_ratio * advantage;
  // min(r A, clip(r) A): the clipped branch wins (and stops the gradient) only when it is
  // strictly smaller, i.e. r left the range on the side the advantage pushes it towards.
  t.clipped = held < unclipped;
  t.loss = -std::min(unclipped, held);
  // The ratio's own clamp also stops the gradient: the clamped log-ratio is constant in lp.
  const bool ratio_clamped = std::abs(lp - old_lp) > o.max_log_ratio;
  if (!t.clipped && !ratio_clamped) t.grad_weight = advantage * t.ratio;
  if (o.kl_beta != 0 && !std::isnan(ref_lp)) {
    const double d = ref_lp - lp;
    t.kl = std::exp(d) - d - 1.0;
    t.loss += o.kl_beta * t.kl;
    t.grad_weight += o.kl_beta * (std::exp(d) - 1.0);
  }
  return t;
}

std::vector<double> sequence_scales(const std::vector<int64_t>& lengths, LossNormalization n) {
  std::vector<double> s(lengths.size(), 0.0);
  int64_t tokens = 0, responses = 0;
  for (int64_t l : lengths) tokens += l, responses += l > 0;
  for (size_t i = 0; i < lengths.size(); ++i) {
    if (lengths[i] <= 0) continue;
    s[i] = n == LossNormalization::Token ? 1.0 / double(tokens) : 1.0 / (double(lengths[i]) * double(responses));
  }
  return s;
}

}  // namespace nemokit::rl
