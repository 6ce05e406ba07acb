#include "bpe_model.hpp"

#include <climits>
#include <queue>

namespace nemokit::rt::tok {

void PairTable::reserve(size_t pairs) {
  size_t cap = 16;
  while (cap < pairs * 2) cap <<= 1;
  keys_.assign(cap, kEmpty);
  values_.assign(cap, Entry{0, 0});
  mask_ = cap - 1;
  size_ = 0;
}

void PairTable::grow() {
  auto old_keys = std::move(keys_);
  auto old_values = std::move(values_);
  reserve(old_keys.empty() ? 8 : old_keys.size());
  for (size_t i = 0; i < old_keys.size(); ++i)
    if (old_keys[i] != kEmpty)
      insert(int32_t(old_keys[i] >> 32), int32_t(uint32_t(old_keys[i])), old_values[i]);
}

void PairTable::insert(int32_t left, int32_t right, Entry e) {
  if ((size_ + 1) * 2 > keys_.size()) grow();
  const uint64_t key = pack(left, right);
  for (size_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
    if (keys_[i] == key) {
      values_[i] = e;
      return;
    }
    if (keys_[i] == kEmpty) {
      keys_[i] = key;
      values_[i] = e;
      ++size_;
      return;
    }
  }
}

// Short pieces (nearly all words) merge fastest with a plain scan for the lowest rank: the
// arrays stay in one cache line and there is no heap bookkeeping.
void BpeModel::merge_short(std::vector<int32_t>& syms) const {
  int32_t ranks[64];
  int32_t merged[64];
  size_t n = syms.size();
  auto score = [&](size_t i) {
    const auto* e = merges.find(syms[i], syms[i + 1]);
    ranks[i] = e ? e->rank : INT_MAX;
    merged[i] = e ? e->merged : -1;
  };
  for (size_t i = 0; i + 1 < n; ++i) score(i);
  while (n > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < n; ++i)
      if (ranks[i] < ranks[best]) best = i;  // strict: the leftmost of equal ranks wins
    if (ranks[best] == INT_MAX) break;
    syms[best] = merged[best];
    for (size_t i = best + 1; i + 1 < n; ++i) syms[i] = syms[i + 1];
    for (size_t i = best + 1; i + 2 < n; ++i) {
      ranks[i] = ranks[i + 1];
      merged[i] = merged[i + 1];
    }
    --n;
    if (best > 0) score(best - 1);
    if (best + 1 < n) score(best);
  }
  syms.resize(n);
}

// Long pieces (runs of spaces, long unbroken strings): a min-heap of (rank, position) over a
// linked list, so each merge costs O(log n) instead of a rescan.
void BpeModel::merge_long(std::vector<int32_t>& syms) const {
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t merged;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  const int32_t n = int32_t(syms.size());
  std::vector<int32_t> prev(n), next(n);
  for (int32_t i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto push = [&](int32_t pos) {
    if (pos < 0 || next[pos] < 0) return;
    if (const auto* e = merges.find(syms[pos], syms[next[pos]])) heap.push({e->rank, pos, e->merged});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    const int32_t pos = top.pos;
    if (syms[pos] < 0 || next[pos] < 0) continue;
    const auto* e = merges.find(syms[pos], syms[next[pos]]);
    if (!e || e->merged != top.merged) continue;  // stale: a neighbour merged first
    const int32_t gone = next[pos];
    syms[pos] = top.merged;
    syms[gone] = -1;
    next[pos] = next[gone];
    if (next[pos] >= 0) prev[next[pos]] = pos;
    push(prev[pos]);
    push(pos);
  }
  size_t w = 0;
  for (int32_t i = 0; i >= 0 && i < n; i = next[i]) syms[w++] = syms[i];
  syms.resize(w);
}

void BpeModel::encode_piece(std::string_view raw, std::vector<int32_t>& out) const {
  if (raw.empty()) return;
  if (ignore_merges) {
    if (auto it = by_bytes.find(raw); it != by_bytes.end()) {
      out.push_back(it->second);
      return;
    }
  }
  thread_local std::vector<int32_t> syms;
  syms.clear();
  bool last_was_unk = false;
  for (char c : raw) {
    const int32_t id = byte_id[uint8_t(c)];
    if (id >= 0) {
      syms.push_back(id);
      last_was_unk = false;
    } else if (unk_id) {
      if (!(fuse_unk && last_was_unk)) syms.push_back(*unk_id);
      last_was_unk = true;
    }
  }
  if (syms.size() <= 64)
    merge_short(syms);
  else
    merge_long(syms);
  out.insert(out.end(), syms.begin(), syms.end());
}

}  // namespace nemokit::rt::tok
