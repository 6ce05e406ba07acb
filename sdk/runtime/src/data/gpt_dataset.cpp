#include <algorithm>
#include <bit>
#include <numeric>
#include <stdexcept>
#include <string>

#include "nemokit/runtime/data/gpt_dataset.hpp"

namespace nemokit::rt {
namespace {

constexpr size_t kCachedEpochs = 4;
constexpr uint64_t kDocumentStream = 0x646f63756d656e74ULL;  // keeps the two shuffles independent
constexpr uint64_t kSampleStream = 0x73616d706c657321ULL;

// The 128-bit product of two 64-bit numbers as (high, low) halves, in portable C++.
void multiply_wide(uint64_t a, uint64_t b, uint64_t& high, uint64_t& low) {
  const uint64_t a_lo = a & 0xFFFFFFFFu, a_hi = a >> 32, b_lo = b & 0xFFFFFFFFu, b_hi = b >> 32;
  const uint64_t p0 = a_lo * b_lo, p1 = a_lo * b_hi, p2 = a_hi * b_lo, p3 = a_hi * b_hi;
  const uint64_t middle = (p0 >> 32) + (p1 & 0xFFFFFFFFu) + (p2 & 0xFFFFFFFFu);
  low = (middle << 32) | (p0 & 0xFFFFFFFFu);
  high = p3 + (p1 >> 32) + (p2 >> 32) + (middle >> 32);
}

// splitmix64: a tiny, well-mixed generator whose output is the same on every platform (the
// standard library's distributions are not, and resume must not depend on the compiler).
struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound) without modulo bias (Lemire's multiply-and-reject).
  uint64_t below(uint64_t bound) {
    for (;;) {
      uint64_t high, low;
      multiply_wide(next(), bound, high, low);
      if (low >= (-bound) % bound) return high;
    }
  }
};

}  // namespace

uint64_t mix_seed(uint64_t a, uint64_t b) {
  SplitMix64 g{a ^ (b * 0xD1B54A32D192ED03ULL)};
  g.next();
  return g.next();
}

uint64_t permute_index(uint64_t i, uint64_t n, uint64_t key) {
  if (i >= n) throw std::out_of_range("permute_index: " + std::to_string(i) + " not below " + std::to_string(n));
  if (n <= 1) return 0;
  // A 4-round Feistel network over the smallest even bit width that holds n, walked until the
  // value falls back inside [0, n): a bijection on [0, n) with O(1) memory and random access.
  int bits = 64 - std::countl_zero(n - 1);
  bits += bits & 1;
  const int half = bits / 2;
  const uint64_t mask = (uint64_t{1} << half) - 1;
  uint64_t x = i;
  do {
    uint64_t left = x >> half, right = x & mask;
    for (uint64_t round = 0; round < 4; ++round) {
      const uint64_t f = mix_seed(right, key + round) & mask;
      const uint64_t next_right = left ^ f;
      left = right;
      right = next_right;
    }
    x = (left << half) | right;
  } while (x >= n);
  return x;
}

GptDataset::GptDataset(std::shared_ptr<const IndexedDataset> data, int64_t seq_length, uint64_t seed,
                       bool shuffle)
    : data_(std::move(data)), seq_length_(seq_length), seed_(seed), shuffle_(shuffle) {
  if (!data_) throw std::invalid_argument("GptDataset: no data");
  if (seq_length_ < 1) throw std::invalid_argument("GptDataset: seq_length must be at least 1");
  if (data_->total_tokens() == 0)
    throw std::invalid_argument(data_->prefix().string() + ": dataset has no tokens to sample from");
  if (data_->sequence_count() > UINT32_MAX)
    throw std::invalid_argument(data_->prefix().string() + ": more than 2^32 sequences");
  samples_per_block_ = std::max<uint64_t>(1, data_->total_tokens() / static_cast<uint64_t>(seq_length_));
}

std::vector<uint32_t> GptDataset::epoch_order(uint64_t epoch) const {
  std::vector<uint32_t> order(data_->sequence_count());
  std::iota(order.begin(), order.end(), 0u);
  if (shuffle_) {
    SplitMix64 rng{mix_seed(mix_seed(seed_, kDocumentStream), epoch)};
    for (size_t k = order.size(); k > 1; --k) std::swap(order[k - 1], order[rng.below(k)]);
  }
  return order;
}

std::shared_ptr<const GptDataset::EpochLayout> GptDataset::layout(uint64_t epoch) const {
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    for (auto it = cache_.begin(); it != cache_.end(); ++it) {
      if ((*it)->epoch == epoch) {
        auto found = *it;
        cache_.splice(cache_.begin(), cache_, it);
        return found;
      }
    }
  }
  // Built outside the lock: two threads may build the same epoch once each, which is harmless.
  auto lay = std::make_shared<EpochLayout>();
  lay->epoch = epoch;
  lay->order = epoch_order(epoch);
  lay->starts.resize(lay->order.size() + 1);
  const auto lengths = data_->lengths();
  uint64_t at = 0;
  for (size_t k = 0; k < lay->order.size(); ++k) {
    lay->starts[k] = at;
    at += static_cast<uint64_t>(lengths[lay->order[k]]);
  }
  lay->starts.back() = at;
  std::lock_guard<std::mutex> lock(cache_mutex_);
  cache_.push_front(lay);
  if (cache_.size() > kCachedEpochs) cache_.pop_back();
  return lay;
}

uint64_t GptDataset::window_of_sample(uint64_t i) const {
  if (!shuffle_) return i;
  const uint64_t block = i / samples_per_block_;
  const uint64_t within = i % samples_per_block_;
  const uint64_t key = mix_seed(mix_seed(seed_, kSampleStream), block);
  return block * samples_per_block_ + permute_index(within, samples_per_block_, key);
}

void GptDataset::sample(uint64_t i, std::span<int32_t> out) const {
  if (out.size() != static_cast<size_t>(seq_length_) + 1)
    throw std::invalid_argument("GptDataset::sample: output must hold seq_length + 1 tokens");
  const uint64_t tokens = tokens_per_epoch();
  const uint64_t stream = window_of_sample(i) * static_cast<uint64_t>(seq_length_);
  uint64_t epoch = stream / tokens;
  uint64_t offset = stream % tokens;
  size_t filled = 0;
  auto lay = layout(epoch);
  while (filled < out.size()) {
    // The last k with starts[k] <= offset; empty sequences share a start and are stepped over.
    const auto it = std::upper_bound(lay->starts.begin(), lay->starts.end() - 1, offset);
    const auto k = static_cast<size_t>(it - lay->starts.begin()) - 1;
    const uint32_t seq = lay->order[k];
    const uint64_t in_seq = offset - lay->starts[k];
    const uint64_t available = static_cast<uint64_t>(data_->lengths()[seq]) - in_seq;
    const size_t take = static_cast<size_t>(std::min<uint64_t>(available, out.size() - filled));
    data_->read(seq, static_cast<size_t>(in_seq), out.subspan(filled, take));
    filled += take;
    offset += take;
    if (offset == tokens) {
      offset = 0;
      lay = layout(++epoch);
    }
  }
}

std::vector<int32_t> GptDataset::sample(uint64_t i) const {
  std::vector<int32_t> out(static_cast<size_t>(seq_length_) + 1);
  sample(i, out);
  return out;
}

}  // namespace nemokit::rt
