#include "nemokit/runtime/trainer.hpp"

#include "nemokit/runtime/grad_sync.hpp"

#include <stdexcept>

namespace nemokit::rt {

TrainStepStats train_step(NemotronH& model, AdamW& optimizer, float lr, const std::vector<Batch>& micro_batches,
                          const TrainOptions& options) {
  if (micro_batches.empty()) throw std::invalid_argument("train_step: no micro-batches");
  Communicator* comm = options.comm && options.comm->size() > 1 ? options.comm : nullptr;
  const int64_t global_micro =
      options.global_micro_batches > 0 ? options.global_micro_batches : int64_t(micro_batches.size()) * (comm ? comm->size() : 1);
  TrainStepStats stats;
  stats.lr = lr;
  model.zero_grad();
  LossOptions loss_opts;
  loss_opts.grad_scale = 1.0f / float(global_micro);
  loss_opts.moe_aux_loss_coeff = options.moe_aux_loss_coeff;
  loss_opts.mtp_loss_scale = options.mtp_loss_scale;
  // Summed in double: the mean over the global batch comes out the same whichever rank ran
  // which micro-batch.
  double sums[3] = {0, 0, 0};  // loss, mtp loss, tokens
  for (const Batch& b : micro_batches) {
    StepResult r = model.forward_backward(b, loss_opts, true);
    sums[0] += double(r.loss) / double(global_micro);
    sums[1] += r.mtp_loss / double(global_micro);
    sums[2] += double(r.tokens);
  }
  auto params = model.parameters();
  if (comm) {
    all_reduce_gradients(params, *comm);
    comm->all_reduce_sum(sums, 3);
    all_reduce_expert_load(model, *comm);
  }
  stats.loss = float(sums[0]);
  stats.mtp_loss = sums[1];
  stats.tokens = int64_t(sums[2]);
  stats.grad_norm = clip_grad_norm(params, options.max_grad_norm);
  optimizer.step(lr);
  if (options.expert_bias_rate > 0) model.update_expert_bias(options.expert_bias_rate);
  return stats;
}

}  // namespace nemokit::rt
