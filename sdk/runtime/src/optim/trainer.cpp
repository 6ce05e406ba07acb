#include "nemokit/runtime/trainer.hpp"

#include "nemokit/runtime/grad_sync.hpp"

#include <optional>
#include <stdexcept>

namespace nemokit::rt {

TrainStepStats train_step(NemotronH& model, AdamW& optimizer, float lr, const std::vector<Batch>& micro_batches,
                          const TrainOptions& options) {
  if (micro_batches.empty()) throw std::invalid_argument("train_step: no micro-batches");
  Communicator* comm = options.comm;
  if (optimizer.sharded() && !comm) throw std::invalid_argument("train_step: a ZeRO-1 optimizer needs TrainOptions::comm");
  const int world = comm ? comm->size() : 1;
  // Expert parallel: this rank's experts see the tokens of every rank of its group, and the
  // groups are data parallel over them: it needs the ranks the experts are split over.
  Communicator* experts = model.expert_comm();
  if (experts && comm != experts)
    throw std::invalid_argument(
        "train_step: a model with experts split over ranks trains data parallel over the same "
        "communicator (TrainOptions::comm)");
  const int64_t global_micro =
      options.global_micro_batches > 0 ? options.global_micro_batches : int64_t(micro_batches.size()) * world;
  TrainStepStats stats;
  stats.lr = lr;
  model.zero_grad();
  auto params = model.parameters();
  LossOptions loss_opts;
  loss_opts.grad_scale = 1.0f / float(global_micro);
  loss_opts.moe_aux_loss_coeff = options.moe_aux_loss_coeff;
  loss_opts.mtp_loss_scale = options.mtp_loss_scale;
  // With a communicator (one rank or many) the gradients are summed in double (GradientSum), so
  // the step does not depend on how the micro-batches are spread over the ranks; the losses too.
  std::optional<GradientSum> grads;
  if (comm) grads.emplace(params);
  // Expert parallel: each source rank's share of an expert's gradient goes into the double sums
  // as it is made, as one rank running that micro-batch would add it.
  if (experts) model.set_gradient_flush([&grads](const std::vector<Parameter*>& ps) { grads->add_and_clear(ps); });
  struct Unset {
    NemotronH& m;
    ~Unset() { m.set_gradient_flush(nullptr); }
  } unset{model};
  double sums[3] = {0, 0, 0};  // loss, mtp loss, tokens
  for (const Batch& b : micro_batches) {
    StepResult r = model.forward_backward(b, loss_opts, true);
    if (grads) grads->add_and_clear();
    sums[0] += double(r.loss) / double(global_micro);
    sums[1] += r.mtp_loss / double(global_micro);
    sums[2] += double(r.tokens);
  }
  if (comm && world > 1) comm->all_reduce_sum(sums, 3);
  stats.loss = float(sums[0]);
  stats.mtp_loss = sums[1];
  stats.tokens = int64_t(sums[2]);
  stats.grad_norm = apply_gradients(model, optimizer, lr, grads ? &*grads : nullptr, options);
  return stats;
}

double apply_gradients(NemotronH& model, AdamW& optimizer, float lr, GradientSum* grads, const TrainOptions& options) {
  Communicator* comm = options.comm;
  if (comm && !grads) throw std::invalid_argument("apply_gradients: with a communicator the gradients come as GradientSum");
  if (optimizer.sharded() && !comm) throw std::invalid_argument("apply_gradients: a ZeRO-1 optimizer needs TrainOptions::comm");
  Communicator* experts = model.expert_comm();
  if (comm && comm->size() > 1) all_reduce_expert_load(model, *comm);
  double grad_norm = 0;
  if (optimizer.sharded()) {
    // ZeRO-1: the optimizer exchanges the gradient sums itself (reduce-scatter, all-gather);
    // experts split over the ranks are summed over the groups first and stay where they live.
    if (experts) {
      grads->all_reduce_experts(*comm, model.expert_parallel());
      grads->store_experts();
    }
    grad_norm = optimizer.step_sharded(lr, *grads, options.max_grad_norm, experts ? model.expert_parallel() : 1);
  } else {
    auto params = model.parameters();
    if (comm) {
      grads->all_reduce(*comm);
      if (experts) grads->all_reduce_experts(*comm, model.expert_parallel());
      grads->store();
    }
    if (experts) {
      grad_norm = expert_parallel_grad_norm(model);
      clip_grad_norm_to(params, options.max_grad_norm, grad_norm);
    } else {
      grad_norm = clip_grad_norm(params, options.max_grad_norm);
    }
    optimizer.step(lr);
  }
  if (options.expert_bias_rate > 0) model.update_expert_bias(options.expert_bias_rate);
  return grad_norm;
}

}  // namespace nemokit::rt
