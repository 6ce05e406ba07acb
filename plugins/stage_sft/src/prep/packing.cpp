#include "prep/packing.hpp"

#include "nemokit/runtime/rng.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>

namespace nemokit::sft {

Packer parse_packer(const std::string& name) {
  if (name == "first_fit_shuffle") return Packer::FirstFitShuffle;
  if (name == "first_fit_decreasing") return Packer::FirstFitDecreasing;
  if (name == "concatenative") return Packer::Concatenative;
  throw std::invalid_argument("data.packer: unknown packer \"" + name +
                              "\" (expected first_fit_shuffle, first_fit_decreasing or concatenative)");
}

const char* packer_name(Packer p) {
  switch (p) {
    case Packer::FirstFitShuffle: return "first_fit_shuffle";
    case Packer::FirstFitDecreasing: return "first_fit_decreasing";
    case Packer::Concatenative: return "concatenative";
  }
  return "";
}

namespace {

// First fit over `order`. A max-segment tree over the packs' free space finds the leftmost pack
// with room in O(log n), so tens of thousands of packs cost no more than a sort.
std::vector<std::vector<int64_t>> first_fit(const std::vector<int64_t>& order, const std::vector<int64_t>& lengths,
                                            int64_t pack_size) {
  size_t cap = 1;
  while (cap < order.size()) cap <<= 1;
  std::vector<int64_t> tree(2 * cap, pack_size);  // free space; leaves = packs (empty ones are full-size)
  std::vector<std::vector<int64_t>> packs;
  for (int64_t doc : order) {
    const int64_t len = lengths[size_t(doc)];
    size_t node = 1;
    while (node < cap) node = tree[2 * node] >= len ? 2 * node : 2 * node + 1;
    const size_t pack = node - cap;
    if (pack >= packs.size()) packs.resize(pack + 1);
    packs[pack].push_back(doc);
    tree[node] -= len;
    for (node >>= 1; node >= 1; node >>= 1) tree[node] = std::max(tree[2 * node], tree[2 * node + 1]);
  }
  // Documents keep input order inside a pack, so a pack's content does not depend on the
  // visiting order beyond which documents share it.
  for (auto& p : packs) std::sort(p.begin(), p.end());
  return packs;
}

}  // namespace

std::vector<std::vector<int64_t>> pack_documents(const std::vector<int64_t>& lengths, int64_t pack_size, Packer packer,
                                                 uint64_t seed) {
  for (int64_t len : lengths)
    if (len <= 0 || len > pack_size) throw std::invalid_argument("pack_documents: a document does not fit the pack size");
  std::vector<int64_t> order(lengths.size());
  std::iota(order.begin(), order.end(), 0);
  if (packer == Packer::Concatenative) {
    std::vector<std::vector<int64_t>> packs;
    int64_t used = pack_size;
    for (int64_t doc : order) {
      const int64_t len = lengths[size_t(doc)];
      if (used + len > pack_size) packs.emplace_back(), used = 0;
      packs.back().push_back(doc);
      used += len;
    }
    return packs;
  }
  if (packer == Packer::FirstFitDecreasing) {
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return lengths[size_t(a)] > lengths[size_t(b)]; });
  } else {
    rt::Rng rng(seed);
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[size_t(rng.next_u64() % i)]);
  }
  return first_fit(order, lengths, pack_size);
}

}  // namespace nemokit::sft
