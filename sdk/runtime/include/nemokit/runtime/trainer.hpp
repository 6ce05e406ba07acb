// One optimizer step over several micro-batches: gradient accumulation, clipping, AdamW and
// the aux-loss-free router bias update.
#pragma once
#include <vector>

#include "nemokit/runtime/model.hpp"
#include "nemokit/runtime/optim.hpp"

namespace nemokit::rt {

struct TrainOptions {
  double max_grad_norm = 1.0;     // 0 = no clipping
  float expert_bias_rate = 1e-3f; // 0 = no bias update
  float moe_aux_loss_coeff = 0.0f;
  float mtp_loss_scale = 0.1f;    // LossOptions::mtp_loss_scale
};

struct TrainStepStats {
  float loss = 0;          // mean of the micro-batch losses
  double mtp_loss = 0;     // the part of `loss` from multi-token prediction layers
  double grad_norm = 0;    // before clipping
  float lr = 0;
  int64_t tokens = 0;
};

// Zeroes the gradients, runs every micro-batch forward+backward with gradients scaled by
// 1/micro_batches, clips, steps the optimizer at `lr` and updates the router biases.
TrainStepStats train_step(NemotronH& model, AdamW& optimizer, float lr, const std::vector<Batch>& micro_batches,
                          const TrainOptions& options);

}  // namespace nemokit::rt
