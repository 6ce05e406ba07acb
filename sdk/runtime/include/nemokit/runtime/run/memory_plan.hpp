#pragma once
// What one rank of a training job holds in memory, from the model's config and the parallel
// layout, before anything is allocated: `--dry-run` prints it, and a layout that cannot fit the
// memory a rank has is refused with these figures. The runtime trains in float32: weights,
// gradients (Parameter::grad) and, for results that do not depend on how the batch is spread
// over ranks, the gradient sums in double (grad_sync.hpp); AdamW's two moments, whole on every
// rank or sharded over the data-parallel ranks (ZeRO-1); the activations one micro-batch keeps
// for its backward pass (every layer's saved inputs and scratch, the logits and their gradient).
// With MemoryLayout::cuda, what the GPU trainer holds on its device instead.
#include <cstdint>
#include <string>

#include "nemokit/runtime/config.hpp"

namespace nemokit::rt {

struct MemoryLayout {
  int64_t data_parallel = 1;    // ranks the optimizer state is sharded over under ZeRO-1
  int64_t zero = 0;             // 0: whole optimizer state on every rank; 1: sharded
  int64_t expert_parallel = 1;  // ranks the routed experts are split over (parallel.ep)
  int64_t micro_batch_size = 1;
  int64_t seq_length = 1;
  // train.device = "cuda": what the GPU holds instead (bf16 working weights and activations,
  // fp32 gradients, master weights and AdamW moments; no double sums; the LM head's loss in row
  // chunks of at most 1 GiB; cuBLASLt's workspace).
  bool cuda = false;
};

struct MemoryPlan {
  long double parameters = 0;       // the whole model's
  long double rank_parameters = 0;  // what one rank holds: its 1/ep of the routed experts

  long double weights = 0, gradients = 0, gradient_sums = 0, optimizer = 0, activations = 0;  // bytes per rank
  long double total() const { return weights + gradients + gradient_sums + optimizer + activations; }
};

// The floats the runtime keeps per token of a micro-batch once it has run forward and backward
// (they stay allocated between steps), for sequences of `seq_length`.
long double activation_floats_per_token(const NemotronHConfig& model, int64_t seq_length);

// The routed experts' weights of the whole model (every MoE layer, MTP layers too): what expert
// parallel splits.
long double routed_expert_parameters(const NemotronHConfig& model);

MemoryPlan plan_memory(const NemotronHConfig& model, const MemoryLayout& layout);

// "weights 1.2 GB, gradients 1.2 GB (+2.4 GB of double sums), optimizer state 2.4 GB (whole),
// activations 310 MB (micro batch 8 x 128 tokens); total 7.5 GB"
std::string memory_plan_text(const MemoryPlan& plan, const MemoryLayout& layout);

// 1536 -> "1.5 KB" (powers of 1000, three significant figures).
std::string format_bytes(long double bytes);

}  // namespace nemokit::rt
