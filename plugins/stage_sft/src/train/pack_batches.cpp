#include "train/pack_batches.hpp"

#include "omni/media_batch.hpp"

#include "nemokit/runtime/rng.hpp"

#include <numeric>
#include <stdexcept>
#include <unordered_map>

namespace nemokit::sft {

PackSampler::PackSampler(int64_t packs, uint64_t seed) : packs_(packs), seed_(seed) {
  if (packs <= 0) throw std::invalid_argument("the training split has no packs");
  shuffle();
}

void PackSampler::shuffle() {
  order_.resize(size_t(packs_));
  std::iota(order_.begin(), order_.end(), 0);
  rt::Rng rng(seed_ ^ (0x9e3779b97f4a7c15ull * uint64_t(epoch_ + 1)));
  for (size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[size_t(rng.next_u64() % i)]);
}

std::vector<int64_t> PackSampler::next(int64_t n) {
  std::vector<int64_t> out;
  while (int64_t(out.size()) < n) {
    if (index_ == packs_) ++epoch_, index_ = 0, shuffle();
    out.push_back(order_[size_t(index_++)]);
  }
  return out;
}

void PackSampler::restore(const nlohmann::json& p) {
  if (!p.is_object() || !p.contains("epoch") || !p.contains("index") || !p["epoch"].is_number_integer() ||
      !p["index"].is_number_integer())
    throw std::invalid_argument("data_position: expected {\"epoch\": N, \"index\": N}");
  epoch_ = p["epoch"].get<int64_t>();
  index_ = p["index"].get<int64_t>();
  if (epoch_ < 0 || index_ < 0 || index_ > packs_) throw std::invalid_argument("data_position: out of range for this data");
  shuffle();
}

rt::Batch make_pack_batch(const PackedSplit& split, const std::vector<int64_t>& packs, int32_t& next_doc) {
  const int64_t S = split.pack_size;
  rt::Batch b;
  b.batch = int64_t(packs.size());
  b.seq = S;
  const size_t n = size_t(b.batch * S);
  b.input_ids.resize(n), b.targets.assign(n, -1), b.doc_ids.resize(n), b.pad.assign(n, 0);
  for (size_t r = 0; r < packs.size(); ++r) {
    const int64_t p = packs[r];
    const int32_t* ids = split.input_ids.data() + p * S;
    const uint8_t* mask = split.loss_mask.data() + p * S;
    std::copy(ids, ids + S, b.input_ids.begin() + int64_t(r) * S);
    std::vector<int64_t> bounds = split.document_bounds(p);
    for (size_t d = 0; d + 1 < bounds.size(); ++d) {
      const int32_t doc = next_doc++;
      for (int64_t t = bounds[d]; t < bounds[d + 1]; ++t) {
        const size_t at = r * size_t(S) + size_t(t);
        b.doc_ids[at] = doc;
        // The mask never trains a document's last position, so t + 1 stays inside it.
        if (mask[t]) b.targets[at] = ids[t + 1];
      }
    }
    const int32_t pad_doc = next_doc++;  // the padding tail is a document of its own
    for (int64_t t = bounds.back(); t < S; ++t) {
      const size_t at = r * size_t(S) + size_t(t);
      b.doc_ids[at] = pad_doc;
      b.pad[at] = 1;
    }
  }
  add_pack_media(b, split, packs);
  return b;
}

int64_t set_loss_weights(std::vector<rt::Batch>& micro, LossNormalization norm) {
  int64_t tokens = 0;
  std::unordered_map<int32_t, int64_t> per_doc;
  for (const rt::Batch& b : micro)
    for (size_t i = 0; i < b.targets.size(); ++i)
      if (b.targets[i] >= 0) ++tokens, ++per_doc[b.doc_ids[i]];
  const double scale = double(micro.size());
  for (rt::Batch& b : micro) {
    b.loss_weights.assign(b.targets.size(), 0.0f);
    for (size_t i = 0; i < b.targets.size(); ++i) {
      if (b.targets[i] < 0) continue;
      b.loss_weights[i] = norm == LossNormalization::Token
                              ? float(scale / double(tokens))
                              : float(scale / (double(per_doc[b.doc_ids[i]]) * double(per_doc.size())));
    }
  }
  return tokens;
}

}  // namespace nemokit::sft
