// One optimizer step over several micro-batches: gradient accumulation, clipping, AdamW and
// the aux-loss-free router bias update.
#pragma once
#include <memory>
#include <vector>

#include "nemokit/runtime/comm.hpp"
#include "nemokit/runtime/model.hpp"
#include "nemokit/runtime/optim.hpp"

namespace nemokit::rt {

class GradientSum;

struct TrainOptions {
  double max_grad_norm = 1.0;     // 0 = no clipping
  float expert_bias_rate = 1e-3f; // 0 = no bias update
  float moe_aux_loss_coeff = 0.0f;
  float mtp_loss_scale = 0.1f;    // LossOptions::mtp_loss_scale
  // Data parallel: this rank's micro-batches are its slice of `global_micro_batches` (all ranks
  // together); gradients (summed in double, grad_sync.hpp), losses and router counts are summed
  // over `comm` before clipping, so every rank steps with the gradient of the whole global batch
  // and the step does not depend on the number of ranks. nullptr: one rank, float sums.
  Communicator* comm = nullptr;
  int64_t global_micro_batches = 0;  // 0: micro_batches.size() x comm->size()
};

struct TrainStepStats {
  float loss = 0;          // mean of the micro-batch losses (over all ranks)
  double mtp_loss = 0;     // the part of `loss` from multi-token prediction layers
  double grad_norm = 0;    // before clipping
  float lr = 0;
  int64_t tokens = 0;      // over all ranks
};

// Zeroes the gradients, runs every micro-batch forward+backward with gradients scaled by
// 1/micro_batches, clips, steps the optimizer at `lr` and updates the router biases.
TrainStepStats train_step(NemotronH& model, AdamW& optimizer, float lr, const std::vector<Batch>& micro_batches,
                          const TrainOptions& options);

// The end of a step whose micro-batches this rank has run forward and backward itself (a loss of
// its own, as RL's weighted surrogate): the router loads and the gradients summed over
// options.comm (`grads` holds this rank's gradient sums when options.comm is set; without a
// communicator the parameters' gradients are used as they are), clipping, the optimizer step
// at `lr` (sharded under ZeRO-1) and the router bias update. Returns the norm before clipping.
double apply_gradients(NemotronH& model, AdamW& optimizer, float lr, GradientSum* grads, const TrainOptions& options);

// Forward passes of a model on a device: the per-token scores RL reads (a trainer's own policy,
// or a frozen model's, as the KL reference).
class DeviceScorer {
 public:
  virtual ~DeviceScorer() = default;
  // Forward only: NemotronH::token_losses() of the batch (per position, 0 without a target) and,
  // with `entropy`, the entropy in nats of each target position's prediction.
  virtual std::vector<float> token_losses(const Batch& batch, std::vector<float>* entropy = nullptr) = 0;
};

// The CUDA module's scorer for a model that does not change (RL's reference policy): its bf16
// copy on this rank's GPU. Throws as open_cuda_trainer does.
std::unique_ptr<DeviceScorer> open_cuda_scorer(NemotronH& model);

// train_step on a device: the model's working copy, gradients, fp32 master weights and AdamW
// moments live there between steps, and the CPU model and optimizer are brought up to date on
// request (checkpoints, evaluation, sampling). The CPU model keeps the routers' load counts and
// biases: the trainer adds each step's device counts into NemotronH::expert_load (summed over
// options.comm), applies options.expert_bias_rate as apply_gradients does, and uploads the biases
// before every step, so the loops' own update_expert_bias calls reach the device too.
class DeviceTrainer : public DeviceScorer {
 public:
  // train_step's contract (every micro-batch forward and backward, gradients summed over
  // options.comm, clipping, AdamW at lr).
  virtual TrainStepStats step(float lr, const std::vector<Batch>& micro_batches) = 0;

  // step() in its parts, for loops that weight their tokens themselves (RL's surrogate, as
  // NemotronH::forward_backward + apply_gradients on the CPU):
  // the device gradients zeroed (and the routers' biases uploaded);
  virtual void zero_grad() = 0;
  // one micro-batch forward and backward, its gradients (scaled by opts.grad_scale) added;
  virtual StepResult accumulate(const Batch& micro_batch, const LossOptions& opts) = 0;
  // apply_gradients: router counts and gradients summed over options.comm, clipping, AdamW at lr,
  // the router bias update. Returns the norm before clipping.
  virtual double apply_gradients(float lr) = 0;
  // token_losses (DeviceScorer): of the trainer's current weights.

  // The CPU model's weights = the fp32 masters, and the optimizer's moments and step count =
  // the device's (a checkpoint of the CPU model is then the device state).
  virtual void sync_to_host() = 0;
  // Loads the CPU model's weights and the optimizer's moments and steps onto the device again
  // (after a checkpoint was restored into them).
  virtual void sync_from_host() = 0;
};

// The CUDA module's trainer for `model` and `optimizer` (which must outlive it), starting from
// their current weights, moments and step count, on the current CUDA device. Throws
// std::runtime_error with the reason where there is no CUDA module or device, and
// std::invalid_argument naming the setting for what the GPU path does not support.
std::unique_ptr<DeviceTrainer> open_cuda_trainer(NemotronH& model, AdamW& optimizer, const TrainOptions& options);

}  // namespace nemokit::rt
