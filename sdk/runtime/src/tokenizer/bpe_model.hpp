#pragma once
// The BPE model: vocab, merge ranks, and the merge loop that turns one pre-tokenized piece
// (raw bytes) into token ids.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace nemokit::rt::tok {

// Hash for string-keyed maps that can be probed with a string_view without a copy.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// (left id, right id) -> (rank, merged id), open addressing: the merge loop probes it for every
// adjacent pair, so it has to be a couple of loads, not a node-based map walk.
class PairTable {
 public:
  struct Entry {
    int32_t rank;
    int32_t merged;
  };
  void reserve(size_t pairs);
  void insert(int32_t left, int32_t right, Entry e);  // a later insert of a pair wins
  const Entry* find(int32_t left, int32_t right) const {
    if (keys_.empty()) return nullptr;
    const uint64_t key = pack(left, right);
    for (size_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
      if (keys_[i] == key) return &values_[i];
      if (keys_[i] == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t pack(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  static size_t mix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return size_t(k);
  }
  void grow();
  std::vector<uint64_t> keys_;
  std::vector<Entry> values_;
  size_t mask_ = 0, size_ = 0;
};

struct BpeModel {
  std::vector<std::string> spelling;  // id -> byte-level spelling; empty for ids not in the vocab
  StringIdMap by_spelling;            // byte-level spelling -> id
  StringIdMap by_bytes;               // raw bytes -> id (for ignore_merges)
  std::array<int32_t, 256> byte_id{}; // the token of each single byte, -1 when the vocab lacks it
  PairTable merges;
  std::vector<std::pair<int32_t, int32_t>> merge_list;  // in rank order
  std::optional<int32_t> unk_id;
  bool fuse_unk = false;
  bool ignore_merges = false;

  // Appends the ids of one piece (raw bytes). A byte without a token becomes unk_id, or is
  // dropped when there is no unk token, as Hugging Face's BPE does.
  void encode_piece(std::string_view raw, std::vector<int32_t>& out) const;

 private:
  void merge_short(std::vector<int32_t>& syms) const;
  void merge_long(std::vector<int32_t>& syms) const;
};

}  // namespace nemokit::rt::tok
