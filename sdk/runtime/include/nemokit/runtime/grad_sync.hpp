// Data parallel's one exchange: the gradients of the whole global batch on every rank. A rank's
// micro-batch gradients are summed in double and the ranks' sums are added in double too, so the
// float gradient the optimizer sees does not depend on which rank ran which micro-batch: two
// ranks with half the batch step like one rank with all of it, to the last bit or nearly
// (float sums in another order drift by 1e-6 after a few AdamW steps, most on rarely routed
// experts whose small gradients AdamW scales up).
#pragma once
#include <cstddef>
#include <vector>

#include "nemokit/runtime/comm.hpp"
#include "nemokit/runtime/model.hpp"

namespace nemokit::rt {

class GradientSum {
 public:
  // The trained parameters (not buffers, not frozen, with a gradient), in checkpoint order; under
  // expert parallel the replicated ones first, then this rank's experts (Parameter::expert_shard).
  explicit GradientSum(const std::vector<Parameter*>& params);
  // Adds every trained parameter's gradient into the sum and zeroes the gradient.
  void add_and_clear();
  // The same for `some` of them (expert parallel: an expert's gradients after each source rank's
  // rows, NemotronH::set_gradient_flush); parameters not in the sum are an error.
  void add_and_clear(const std::vector<Parameter*>& some);
  // Sums over the ranks of `comm` (every rank must call it), in buckets of at most
  // `bucket_bytes` of the flat double buffer. Expert-parallel experts are left out: their
  // gradients are whole on the rank that holds them.
  void all_reduce(Communicator& comm, size_t bucket_bytes = size_t(8) << 20);
  // Data x expert parallel (groups of `ep` consecutive ranks, each holding every expert once):
  // sums this rank's experts over the ranks at its position in every group. Nothing to do when
  // one group spans the ranks.
  void all_reduce_experts(Communicator& comm, int ep, size_t bucket_bytes = size_t(8) << 20);
  // ZeRO-1's exchange (every rank calls it): the flat sum of the replicated parameters (not the
  // expert-parallel experts, which stay whole where they live) is cut into comm.size() blocks of
  // `per_rank` values (the last padded with zeros) and `block` (per_rank values) receives this
  // rank's block of the sum over the ranks, in buckets of at most `bucket_bytes` per rank.
  void reduce_scatter(Communicator& comm, size_t per_rank, double* block, size_t bucket_bytes = size_t(8) << 20) const;
  // Writes the sums back into Parameter::grad (float): every one, or the experts' only.
  void store() const;
  void store_experts() const;
  size_t size() const { return sum_.size(); }
  size_t replicated_size() const { return replicated_; }

 private:
  void add_one(size_t index);
  void store_from(size_t first) const;
  std::vector<Parameter*> params_;
  std::vector<size_t> offset_;  // params_[i]'s first value in sum_
  size_t replicated_ = 0;       // values of the parameters every rank holds (the first ones)
  std::vector<double> sum_;
};

// The global gradient norm of an expert-parallel model (collective over model.expert_comm()):
// each tensor's sum of squares in double where it lives (once: replicated ones on rank 0, experts
// in the first group), summed over the ranks, then over the tensors in checkpoint order, so every
// rank clips by the same norm, the whole model's.
double expert_parallel_grad_norm(NemotronH& model);

// Sums the router's per-expert token counts over the ranks, so that the aux-loss-free bias update
// and the imbalance figure see the whole global batch.
void all_reduce_expert_load(NemotronH& model, Communicator& comm);

}  // namespace nemokit::rt
