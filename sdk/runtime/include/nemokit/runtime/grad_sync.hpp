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
  // The trained parameters (not buffers, not frozen, with a gradient), in checkpoint order.
  explicit GradientSum(const std::vector<Parameter*>& params);
  // Adds every trained parameter's gradient into the sum and zeroes the gradient.
  void add_and_clear();
  // Sums over the ranks of `comm` (every rank must call it), in buckets of at most
  // `bucket_bytes` of the flat double buffer.
  void all_reduce(Communicator& comm, size_t bucket_bytes = size_t(8) << 20);
  // ZeRO-1's exchange (every rank calls it): the flat sum is cut into comm.size() blocks of
  // `per_rank` values (the last padded with zeros) and `block` (per_rank values) receives this
  // rank's block of the sum over the ranks, in buckets of at most `bucket_bytes` per rank.
  void reduce_scatter(Communicator& comm, size_t per_rank, double* block, size_t bucket_bytes = size_t(8) << 20) const;
  // Writes the sums back into Parameter::grad (float).
  void store() const;
  size_t size() const { return sum_.size(); }

 private:
  std::vector<Parameter*> params_;
  std::vector<double> sum_;
};

// Sums the router's per-expert token counts over the ranks, so that the aux-loss-free bias update
// and the imbalance figure see the whole global batch.
void all_reduce_expert_load(NemotronH& model, Communicator& comm);

}  // namespace nemokit::rt
