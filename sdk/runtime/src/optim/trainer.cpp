#include "nemokit/runtime/trainer.hpp"

#include <stdexcept>

namespace nemokit::rt {

TrainStepStats train_step(NemotronH& model, AdamW& optimizer, float lr, const std::vector<Batch>& micro_batches,
                          const TrainOptions& options) {
  if (micro_batches.empty()) throw std::invalid_argument("train_step: no micro-batches");
  TrainStepStats stats;
  stats.lr = lr;
  model.zero_grad();
  LossOptions loss_opts;
  loss_opts.grad_scale = 1.0f / float(micro_batches.size());
  loss_opts.moe_aux_loss_coeff = options.moe_aux_loss_coeff;
  loss_opts.mtp_loss_scale = options.mtp_loss_scale;
  for (const Batch& b : micro_batches) {
    StepResult r = model.forward_backward(b, loss_opts, true);
    stats.loss += r.loss / float(micro_batches.size());
    stats.mtp_loss += r.mtp_loss / double(micro_batches.size());
    stats.tokens += r.tokens;
  }
  auto params = model.parameters();
  stats.grad_norm = clip_grad_norm(params, options.max_grad_norm);
  optimizer.step(lr);
  if (options.expert_bias_rate > 0) model.update_expert_bias(options.expert_bias_rate);
  return stats;
}

}  // namespace nemokit::rt
