#pragma once
// Packed SFT rows -> the runtime's micro-batches: targets from the shifted loss mask, one document
// id per packed conversation (attention, the conv window and the scan state reset at each
// start), padding flagged (kept out of router statistics), and the loss weights that give the
// configured normalization over the whole global batch.

#include "data/packed_split.hpp"
#include "train/sft_options.hpp"

#include "nemokit/runtime/model.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

namespace nemokit::sft {

// Epochs over the packs, each in a fresh seeded order; its position is two integers, so a
// resumed run continues with the same packs.
class PackSampler {
 public:
  PackSampler(int64_t packs, uint64_t seed);
  std::vector<int64_t> next(int64_t n);
  nlohmann::json position() const { return {{"epoch", epoch_}, {"index", index_}}; }
  void restore(const nlohmann::json& position);  // throws std::invalid_argument when malformed
  int64_t epoch() const { return epoch_; }

 private:
  void shuffle();
  int64_t packs_;
  uint64_t seed_;
  int64_t epoch_ = 0, index_ = 0;
  std::vector<int64_t> order_;
};

// Rows = the given packs. Document ids continue from `next_doc` (unique over a global batch).
rt::Batch make_pack_batch(const PackedSplit& split, const std::vector<int64_t>& packs, int32_t& next_doc);

// Sets loss_weights on every micro-batch so the summed objective is the token-level mean
// (every trained token of the global batch equal) or the sample-level mean (each document's
// tokens averaged first, then the documents). Scaled by the number of micro-batches, which
// rt::train_step divides back out. Returns the number of trained tokens.
int64_t set_loss_weights(std::vector<rt::Batch>& micro, LossNormalization norm);

}  // namespace nemokit::sft
