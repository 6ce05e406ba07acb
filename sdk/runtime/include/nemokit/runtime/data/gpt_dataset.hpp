#pragma once
// GPT-style pretraining samples from Megatron indexed datasets, as Megatron-Core's GPTDataset and
// BlendedDataset draw them: fixed windows of seq_length + 1 tokens (inputs and shifted labels)
// cut from the documents laid end to end, windows crossing document boundaries; document order
// shuffled per epoch, window order shuffled; several datasets mixed by weight. Everything is a
// pure function of (data, seq_length, seed), so a run resumes exactly from a saved position.

#include <cstdint>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nemokit/runtime/data/indexed_dataset.hpp"

namespace nemokit::rt {

// One dataset as an endless stream of windows. The token stream is epoch 0's documents (in a
// seeded shuffled order), then epoch 1's (another order), and so on; window w is stream tokens
// [w * seq_length, w * seq_length + seq_length + 1), so consecutive windows share one token and
// together cover every token of every epoch exactly once as an input or a label. Sample i maps to
// a window through a seeded permutation inside blocks of samples_per_epoch() windows.
// Thread-safe: sample() may be called from many threads.
class GptDataset {
 public:
  GptDataset(std::shared_ptr<const IndexedDataset> data, int64_t seq_length, uint64_t seed,
             bool shuffle = true);

  const IndexedDataset& data() const { return *data_; }
  int64_t seq_length() const { return seq_length_; }
  uint64_t seed() const { return seed_; }
  uint64_t tokens_per_epoch() const { return data_->total_tokens(); }
  // Whole windows per pass over the data (at least 1); also the size of a shuffle block.
  uint64_t samples_per_epoch() const { return samples_per_block_; }

  // Writes sample i (seq_length + 1 tokens) into out.
  void sample(uint64_t i, std::span<int32_t> out) const;
  std::vector<int32_t> sample(uint64_t i) const;
  // The unshuffled window that sample i reads.
  uint64_t window_of_sample(uint64_t i) const;
  // The order in which epoch `epoch` visits the sequences of the data.
  std::vector<uint32_t> epoch_order(uint64_t epoch) const;

 private:
  struct EpochLayout {
    uint64_t epoch;
    std::vector<uint32_t> order;
    std::vector<uint64_t> starts;  // starts[k] = stream offset (within the epoch) of order[k]
  };
  std::shared_ptr<const EpochLayout> layout(uint64_t epoch) const;

  std::shared_ptr<const IndexedDataset> data_;
  int64_t seq_length_;
  uint64_t seed_;
  bool shuffle_;
  uint64_t samples_per_block_;
  mutable std::mutex cache_mutex_;
  mutable std::list<std::shared_ptr<const EpochLayout>> cache_;  // most recent first
};

// Where a blended sampler stands: the next global sample and how many samples each component has
// given so far. Serializes to JSON for checkpoints; the fingerprint ties it to the data and
// settings that produced it.
struct SamplerPosition {
  uint64_t sample = 0;
  std::vector<uint64_t> per_dataset;
  std::string fingerprint;

  nlohmann::json to_json() const;
  // `origin` (a file name) prefixes errors about missing or mistyped keys.
  static SamplerPosition from_json(const nlohmann::json& j, const std::string& origin);
};

struct BlendComponent {
  std::shared_ptr<const GptDataset> dataset;
  double weight = 1.0;
};

// Mixes datasets by weight like Megatron's BlendedDataset: sample n goes to the component whose
// share lags its weight the most (weight * n - taken so far), ties to the lower index. Not
// thread-safe (one sampler per consumer); the datasets behind it are.
class BlendedSampler {
 public:
  explicit BlendedSampler(std::vector<BlendComponent> components);

  int64_t seq_length() const { return seq_length_; }
  size_t components() const { return components_.size(); }
  const std::vector<double>& weights() const { return weights_; }  // normalized to sum 1
  // The components' windows per pass added up: one pass over every dataset of the blend.
  uint64_t samples_per_epoch() const;

  // Fills out (seq_length + 1 tokens) with the next sample; returns its component index.
  size_t next(std::span<int32_t> out);
  // `count` samples back to back (count * (seq_length + 1) tokens).
  std::vector<int32_t> next_batch(size_t count);

  const SamplerPosition& position() const { return position_; }
  // Continues from a saved position. Throws std::invalid_argument when it was made for other
  // data or settings (fingerprint), or is inconsistent.
  void restore(const SamplerPosition& p);
  const std::string& fingerprint() const { return position_.fingerprint; }

 private:
  size_t choose() const;
  std::vector<BlendComponent> components_;
  std::vector<double> weights_;
  int64_t seq_length_ = 0;
  SamplerPosition position_;
};

// One weighted dataset of a blend.json split.
struct BlendEntry {
  double weight = 1.0;
  std::filesystem::path prefix;
};

// Reads split `split` ("train", "valid", "test") of a Megatron blend.json:
// {"train": [weight, prefix, weight, prefix, ...], ...}. Relative prefixes are taken from the
// file's folder. Errors name the file and key.
std::vector<BlendEntry> read_blend_split(const std::filesystem::path& blend_json, const std::string& split);

// Opens every dataset of a blend split and builds the sampler; component k is shuffled with a
// seed derived from (seed, k).
BlendedSampler open_blended_sampler(const std::vector<BlendEntry>& entries, int64_t seq_length,
                                    uint64_t seed, bool shuffle = true);

// The seeded permutation machinery, exposed for tests: a bijection of [0, n) keyed by `key`.
uint64_t permute_index(uint64_t i, uint64_t n, uint64_t key);
uint64_t mix_seed(uint64_t a, uint64_t b);

}  // namespace nemokit::rt
