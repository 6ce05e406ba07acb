// Data parallel's one exchange: after each rank's backward pass over its slice of the global
// batch, the gradients summed over the ranks, in buckets so that one collective moves many small
// tensors and the staging buffer stays bounded.
#pragma once
#include <cstddef>
#include <vector>

#include "nemokit/runtime/comm.hpp"
#include "nemokit/runtime/model.hpp"

namespace nemokit::rt {

// Sums Parameter::grad of every trained parameter (not buffers, not frozen) over the ranks of
// `comm`, in checkpoint order, packed into buckets of at most `bucket_bytes` (a tensor larger
// than a bucket goes alone, in place). Every rank must call it with the same parameters.
void all_reduce_gradients(const std::vector<Parameter*>& params, Communicator& comm, size_t bucket_bytes = size_t(8) << 20);

// Sums the router's per-expert token counts over the ranks, so that the aux-loss-free bias update
// and the imbalance figure see the whole global batch.
void all_reduce_expert_load(NemotronH& model, Communicator& comm);

}  // namespace nemokit::rt
