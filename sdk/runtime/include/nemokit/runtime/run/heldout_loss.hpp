#pragma once
// A model's mean token cross-entropy on windows of a Megatron blend split: pretraining's
// validation loss, and the eval stage's perplexity on held-out text. The windows are those a
// blended sampler with `seed` gives, so every call with the same settings reads the same ones.

#include "nemokit/runtime/comm.hpp"
#include "nemokit/runtime/model.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace nemokit::rt {

struct HeldOutWindows {
  std::filesystem::path blend;  // blend.json
  std::string split = "valid";  // "train", "valid" or "test"
  int64_t seq_length = 0;
  uint64_t seed = 0;
  int64_t micro_batch = 1;      // windows per forward
  int64_t windows = 0;          // 0: one pass over the split (each window of its datasets once)
};

struct HeldOutLoss {
  double loss_sum = 0;  // summed token cross-entropy (nats)
  int64_t tokens = 0;
  int64_t windows = 0;
  double mean() const { return tokens > 0 ? loss_sum / double(tokens) : 0.0; }
  double perplexity() const;  // exp(mean)
};

// With a communicator of several ranks, each rank runs every size()-th micro-batch and the sums
// meet (every rank gets the total). Errors name the blend file and the split.
HeldOutLoss heldout_loss(NemotronH& model, const HeldOutWindows& w, Communicator* comm = nullptr);

// `rows` windows of seq + 1 tokens, back to back, as a batch: inputs are each window's first
// seq tokens, targets its last seq.
Batch window_batch(const std::vector<int32_t>& windows, int64_t rows, int64_t seq);

}  // namespace nemokit::rt
