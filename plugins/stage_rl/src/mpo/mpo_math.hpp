#pragma once
// The arithmetic of MPO (InternVL's mixed preference optimization, TRL's loss_type
// ["sigmoid", "bco_pair", "sft"]), free of the model so it can be checked by hand. Per preference
// pair, with lp the summed log-probs of an answer's tokens under the policy, ref under the frozen
// reference, D = lp - ref and h = D_c - D_r:
//   sigmoid  (1 - eps) (-log s(beta h)) + eps (-log s(-beta h))   (DPO; eps = label smoothing)
//   bco      -log s(beta D_c - delta) - log s(-(beta D_r - delta)), delta a running reward mean
//   sft      -lp_c / n_c                                          (mean NLL of the chosen tokens)
//   loss     sigmoid_weight sigmoid + bco_weight bco + sft_weight sft
// The runtime's loss is a weighted cross-entropy and lp = -sum_t CE_t over an answer's tokens, so
// a backward with every token of the chosen (rejected) answer weighted -dL/dlp_c (-dL/dlp_r) gives
// the gradient of the loss. delta is a constant there (TRL detaches it).

#include "mpo/running_reward_mean.hpp"

#include <cstdint>
#include <vector>

namespace nemokit::rl {

struct MpoOptions {
  double beta = 0.1;
  double sigmoid_weight = 0.8, bco_weight = 0.2, sft_weight = 1.0;  // InternVL's MPO defaults
  double label_smoothing = 0;
  // Throws std::invalid_argument naming the key: "mpo.beta: must be positive, got 0".
  void validate() const;
};

struct PreferencePair {
  double lp_c = 0, lp_r = 0;    // policy: summed log-probs of the chosen / rejected answer
  double ref_c = 0, ref_r = 0;  // the same under the frozen reference
  int64_t n_c = 0;              // tokens of the chosen answer (>= 1)
};

struct MpoTerms {
  double loss = 0;
  double sigmoid_loss = 0, bco_loss = 0, sft_loss = 0;  // unweighted
  double chosen_reward = 0, rejected_reward = 0;        // beta D_c, beta D_r
  double margin = 0;                                    // beta (D_c - D_r)
  double accuracy = 0;                                  // 1 when margin > 0, else 0
  double grad_chosen = 0, grad_rejected = 0;            // dL/dlp_c, dL/dlp_r
};

// -log s(x) and s(x) without overflow or cancellation for any finite x.
double neg_log_sigmoid(double x);
double sigmoid(double x);

// One pair's terms; delta is BCO's reward shift. Throws std::invalid_argument when n_c < 1.
MpoTerms mpo_pair(const PreferencePair& p, const MpoOptions& o, double delta);

struct MpoBatch {
  MpoTerms mean;  // every field averaged over the pairs (accuracy: the fraction with margin > 0)
  double delta = 0;
  // d(mean loss)/dlp per pair: the pair's own gradient / pairs
  std::vector<double> grad_chosen, grad_rejected;
};

// The mean of the batch's 2B rewards beta D_c and beta D_r: the observation BCO's running mean takes.
double batch_mean_reward(const std::vector<PreferencePair>& pairs, double beta);

// The batch's mean loss with a fixed delta. Throws std::invalid_argument on an empty batch.
MpoBatch mpo_batch(const std::vector<PreferencePair>& pairs, const MpoOptions& o, double delta);

// TRL's order for one batch (one compute_loss call): the running mean first takes this batch's
// mean reward, then its new mean is the delta of this batch's loss.
MpoBatch mpo_batch(const std::vector<PreferencePair>& pairs, const MpoOptions& o, RunningRewardMean& running);

}  // namespace nemokit::rl
