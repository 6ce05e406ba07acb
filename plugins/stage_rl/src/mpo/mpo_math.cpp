#include "mpo/mpo_math.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

namespace nemokit::rl {

namespace {
[[noreturn]] void fail(const char* key, const std::string& what, double got) {
  throw std::invalid_argument(std::string("mpo.") + key + ": " + what + ", got " + std::to_string(got));
}

void check_chosen_length(int64_t n_c) {
  if (n_c < 1) throw std::invalid_argument("mpo: a chosen answer has " + std::to_string(n_c) + " tokens (needs at least 1)");
}
}  // namespace

void MpoOptions::validate() const {
  // Written as !(x > 0) etc. so that NaN fails too.
  if (!(beta > 0) || !std::isfinite(beta)) fail("beta", "must be a positive number", beta);
  const std::pair<const char*, double> weights[] = {
      {"sigmoid_weight", sigmoid_weight}, {"bco_weight", bco_weight}, {"sft_weight", sft_weight}};
  for (auto [key, w] : weights)
    if (!(w >= 0) || !std::isfinite(w)) fail(key, "must be a non-negative number", w);
  if (sigmoid_weight + bco_weight + sft_weight == 0)
    throw std::invalid_argument("mpo.sigmoid_weight, mpo.bco_weight, mpo.sft_weight: all 0, nothing to train");
  // Beyond 0.5 the smoothed DPO term prefers the rejected answer.
  if (!(label_smoothing >= 0 && label_smoothing <= 0.5)) fail("label_smoothing", "must be in [0, 0.5]", label_smoothing);
}

double neg_log_sigmoid(double x) {
  // -log s(x) = log(1 + e^-x) = max(-x, 0) + log1p(e^-|x|): the exponent never exceeds 0.
  return std::max(-x, 0.0) + std::log1p(std::exp(-std::abs(x)));
}

double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

MpoTerms mpo_pair(const PreferencePair& p, const MpoOptions& o, double delta) {
  check_chosen_length(p.n_c);
  MpoTerms t;
  const double d_c = p.lp_c - p.ref_c, d_r = p.lp_r - p.ref_r;
  const double b = o.beta, eps = o.label_smoothing;
  t.chosen_reward = b * d_c;
  t.rejected_reward = b * d_r;
  const double x = b * (d_c - d_r);
  t.margin = x;
  t.accuracy = x > 0 ? 1.0 : 0.0;

  // d(-log s(x))/dx = -s(-x) and d(-log s(-x))/dx = s(x); dx/dlp_c = beta = -dx/dlp_r.
  t.sigmoid_loss = (1 - eps) * neg_log_sigmoid(x) + eps * neg_log_sigmoid(-x);
  const double dsig_dx = -(1 - eps) * sigmoid(-x) + eps * sigmoid(x);

  const double u = t.chosen_reward - delta, v = t.rejected_reward - delta;
  t.bco_loss = neg_log_sigmoid(u) + neg_log_sigmoid(-v);
  const double dbco_dlpc = -b * sigmoid(-u), dbco_dlpr = b * sigmoid(v);

  t.sft_loss = -p.lp_c / double(p.n_c);
  const double dsft_dlpc = -1.0 / double(p.n_c);

  t.loss = o.sigmoid_weight * t.sigmoid_loss + o.bco_weight * t.bco_loss + o.sft_weight * t.sft_loss;
  t.grad_chosen = o.sigmoid_weight * dsig_dx * b + o.bco_weight * dbco_dlpc + o.sft_weight * dsft_dlpc;
  t.grad_rejected = -o.sigmoid_weight * dsig_dx * b + o.bco_weight * dbco_dlpr;
  return t;
}

double batch_mean_reward(const std::vector<PreferencePair>& pairs, double beta) {
  if (pairs.empty()) throw std::invalid_argument("mpo: an empty batch has no mean reward");
  double sum = 0;
  for (const PreferencePair& p : pairs) sum += beta * (p.lp_c - p.ref_c) + beta * (p.lp_r - p.ref_r);
  return sum / double(2 * pairs.size());
}

MpoBatch mpo_batch(const std::vector<PreferencePair>& pairs, const MpoOptions& o, double delta) {
  if (pairs.empty()) throw std::invalid_argument("mpo: an empty batch of preference pairs");
  MpoBatch b;
  b.delta = delta;
  const double inv = 1.0 / double(pairs.size());
  b.grad_chosen.reserve(pairs.size());
  b.grad_rejected.reserve(pairs.size());
  MpoTerms& m = b.mean;
  for (const PreferencePair& p : pairs) {
    const MpoTerms t = mpo_pair(p, o, delta);
    m.loss += inv * t.loss;
    m.sigmoid_loss += inv * t.sigmoid_loss;
    m.bco_loss += inv * t.bco_loss;
    m.sft_loss += inv * t.sft_loss;
    m.chosen_reward += inv * t.chosen_reward;
    m.rejected_reward += inv * t.rejected_reward;
    m.margin += inv * t.margin;
    m.accuracy += inv * t.accuracy;
    m.grad_chosen += inv * t.grad_chosen;
    m.grad_rejected += inv * t.grad_rejected;
    b.grad_chosen.push_back(inv * t.grad_chosen);
    b.grad_rejected.push_back(inv * t.grad_rejected);
  }
  return b;
}

MpoBatch mpo_batch(const std::vector<PreferencePair>& pairs, const MpoOptions& o, RunningRewardMean& running) {
  // A bad pair must not leave its batch's reward in the running mean.
  for (const PreferencePair& p : pairs) check_chosen_length(p.n_c);
  running.update(batch_mean_reward(pairs, o.beta));
  return mpo_batch(pairs, o, running.mean());
}

}  // namespace nemokit::rl
