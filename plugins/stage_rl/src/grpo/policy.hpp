#pragma once
// The model side of GRPO: responses laid out as runtime batches (prompt + response per row,
// targets only on the response), per-token log-probabilities and entropies from a forward pass,
// and the weighted backward that applies the clipped surrogate (grpo_math.hpp).

#include "grpo/grpo_math.hpp"

#include "nemokit/runtime/comm.hpp"
#include "nemokit/runtime/grad_sync.hpp"
#include "nemokit/runtime/model.hpp"
#include "nemokit/runtime/optim.hpp"
#include "nemokit/runtime/trainer.hpp"

#include <cstdint>
#include <vector>

namespace nemokit::rl {

// One sampled response and everything the update needs about it.
struct Sample {
  int64_t task = 0;                 // index of its task in the step's tasks
  std::vector<int32_t> prompt;      // rendered prompt ids
  std::vector<int32_t> response;    // sampled ids, a stop token included when one ended it
  std::vector<rt::MediaInput> media;  // omni3: encoder inputs at the prompt's placeholders
  // Per response token: 1 = the model's own, 0 = not the policy's (a tool turn's output in a
  // multi-turn episode): no loss target, no part of the objective. Empty: all the model's.
  std::vector<uint8_t> trained;
  double reward = 0, advantage = 0;
  std::vector<float> old_lp;        // per response token, under the sampling policy
  std::vector<float> ref_lp;        // per response token, under the reference (empty: none)
};

// Rows = samples (prompt + response, the last token dropped from the input), padded to the
// longest with pad flags; targets are the response tokens the model produced (Sample::trained).
// Tokens that are not targets get log-prob 0 from score_samples.
rt::Batch make_sample_batch(const std::vector<const Sample*>& samples);

inline bool trained_at(const Sample& s, size_t k) { return s.trained.empty() || s.trained[k] != 0; }
int64_t trained_tokens(const Sample& s);

struct TokenScores {
  std::vector<std::vector<float>> lp;       // per sample, per response token
  std::vector<std::vector<float>> entropy;  // same, when asked for
};

// Forward without backward, in micro-batches of `micro` rows; on `device` (the GPU trainer that
// holds the model's current weights, or the reference's scorer) where given, else on the CPU model.
TokenScores score_samples(rt::NemotronH& model, const std::vector<const Sample*>& samples, int64_t micro, bool entropy,
                          rt::DeviceScorer* device = nullptr);

// The same, in the micro-batches the policy updates will use: chunks of `per_update` samples, each
// cut into micro-batches of `micro`. A BLAS may round a row differently in a batch of another
// shape (OpenBLAS's Haswell kernels do), so log-probs of an unchanged policy scored in other
// batches differ in the last bits; Adam would turn that noise into real steps.
TokenScores score_as_updates(rt::NemotronH& model, const std::vector<const Sample*>& samples, int64_t per_update, int64_t micro,
                             bool entropy, rt::DeviceScorer* device = nullptr);

struct UpdateOptions {
  SurrogateOptions surrogate;
  LossNormalization normalization = LossNormalization::Token;
  int64_t micro_batch_size = 8;
  double max_grad_norm = 1.0;
  float expert_bias_rate = 0;
  // Data parallel: the update's batch is split over these ranks in equal contiguous blocks (rank
  // r holds block r); the normalization, the statistics and the gradients are the whole batch's.
  // nullptr: one rank, float gradients.
  rt::Communicator* comm = nullptr;
  // train.device = "cuda": the GPU trainer (rt::TrainStepper::gpu) that holds the weights, the
  // gradients and the optimizer state; every pass and the step run there, and its own
  // TrainOptions (clipping, bias rate, communicator) apply. nullptr: the CPU model and optimizer.
  rt::DeviceTrainer* device = nullptr;
};

struct UpdateStats {
  double loss = 0;        // the objective (normalized surrogate + beta k3)
  double clip_fraction = 0;
  double kl_ref = 0;      // mean k3 to the reference over tokens (0 without one)
  double kl_old = 0;      // mean k3 of the current policy to the sampling policy
  double mean_ratio = 0;
  double grad_norm = 0;
  int64_t tokens = 0;
};

// The gradient of the objective over `samples` (one optimizer batch, or this rank's block of it)
// added into the model's gradients (zeroed first), or moved into `sum` after each micro-batch when
// given. `fresh`: the model is still the sampling policy, so the current log-probs are the old
// ones and the extra forward is skipped. The statistics cover every rank of o.comm.
UpdateStats accumulate_gradient(rt::NemotronH& model, const std::vector<const Sample*>& samples, const UpdateOptions& o,
                                bool fresh, rt::GradientSum* sum = nullptr);

// accumulate_gradient, then (over o.comm's ranks: gradients summed in double, as
// rt::train_step sums them) clipping, one optimizer step at lr and the router bias update.
// The step's settings of an update (clipping, router bias rate, communicator), as rt::apply_gradients
// and the GPU trainer take them.
rt::TrainOptions train_options(const UpdateOptions& o);

UpdateStats policy_update(rt::NemotronH& model, rt::AdamW& optimizer, float lr, const std::vector<const Sample*>& samples,
                          const UpdateOptions& o, bool fresh);

}  // namespace nemokit::rl
