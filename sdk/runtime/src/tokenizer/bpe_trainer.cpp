// Byte-level BPE training: count pre-tokenized words, then repeatedly merge the most frequent
// adjacent pair, updating pair counts only for the words that contain it.

#include <algorithm>
#include <queue>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "byte_level.hpp"
#include "tokenizer_impl.hpp"
#include "word_counter.hpp"

namespace nemokit::rt {
namespace {

using tok::WordCounts;

uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
int32_t pair_left(uint64_t k) { return int32_t(k >> 32); }
int32_t pair_right(uint64_t k) { return int32_t(uint32_t(k)); }

class Trainer {
 public:
  Trainer(const BpeTrainOptions& opt) : opt_(opt) {}

  nlohmann::ordered_json run(const WordCounts& counts);

 private:
  struct Candidate {
    int64_t count;
    uint64_t pair;
  };
  // Heap order: higher count first; equal counts break on the bytes of (left, right), smaller first,
  // so the result never depends on hash-map iteration order.
  bool ranks_below(const Candidate& x, const Candidate& y) const {
    if (x.count != y.count) return x.count < y.count;
    const auto& xl = bytes_[pair_left(x.pair)];
    const auto& yl = bytes_[pair_left(y.pair)];
    if (xl != yl) return xl > yl;
    return bytes_[pair_right(x.pair)] > bytes_[pair_right(y.pair)];
  }
  void add_word_pairs(size_t w, int64_t sign);

  const BpeTrainOptions& opt_;
  std::vector<std::string> bytes_;  // id -> raw bytes of the token
  std::vector<std::vector<int32_t>> words_;
  std::vector<int64_t> word_count_;
  std::unordered_map<uint64_t, int64_t> pair_count_;
  std::unordered_map<uint64_t, std::vector<uint32_t>> pair_words_;
};

void Trainer::add_word_pairs(size_t w, int64_t sign) {
  const auto& s = words_[w];
  for (size_t i = 0; i + 1 < s.size(); ++i) pair_count_[pair_key(s[i], s[i + 1])] += sign * word_count_[w];
}

nlohmann::ordered_json Trainer::run(const WordCounts& counts) {
  const int32_t n_special = int32_t(opt_.special_tokens.size());
  for (const auto& s : opt_.special_tokens) bytes_.push_back(s);
  for (int b = 0; b < 256; ++b) bytes_.push_back(std::string(1, char(b)));
  std::unordered_map<std::string, int32_t> id_of_bytes;
  for (int32_t id = n_special; id < int32_t(bytes_.size()); ++id) id_of_bytes[bytes_[id]] = id;
  std::unordered_set<std::string> special_spellings(opt_.special_tokens.begin(),
                                                    opt_.special_tokens.end());

  // Words in byte order, so word indices (and everything after) are the same on every run.
  std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end());
  for (const auto& [w, n] : sorted) {
    std::vector<int32_t> syms;
    for (char c : w) syms.push_back(n_special + uint8_t(c));
    words_.push_back(std::move(syms));
    word_count_.push_back(n);
  }
  for (size_t w = 0; w < words_.size(); ++w) {
    add_word_pairs(w, +1);
    const auto& s = words_[w];
    for (size_t i = 0; i + 1 < s.size(); ++i) pair_words_[pair_key(s[i], s[i + 1])].push_back(uint32_t(w));
  }

  auto cmp = [this](const Candidate& x, const Candidate& y) { return ranks_below(x, y); };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(cmp)> heap(cmp);
  for (const auto& [p, n] : pair_count_)
    if (n > 0) heap.push({n, p});

  std::vector<std::pair<int32_t, int32_t>> merges;
  std::unordered_set<uint64_t> banned;  // merges whose text would collide with a special token
  int32_t vocab = int32_t(bytes_.size());
  while (vocab < opt_.vocab_size && !heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    const int64_t current = pair_count_[top.pair];
    if (current != top.count) {  // stale entry: counts only fall, so requeue at the true count
      if (current > 0) heap.push({current, top.pair});
      continue;
    }
    if (current < std::max<int64_t>(1, opt_.min_frequency)) break;
    const int32_t a = pair_left(top.pair), b = pair_right(top.pair);
    std::string merged_bytes = bytes_[a] + bytes_[b];
    if (special_spellings.count(tok::bytes_to_byte_level(merged_bytes)) || banned.count(top.pair)) {
      banned.insert(top.pair);
      continue;
    }
    // Two different merges can spell the same bytes ("ab"+"c", "a"+"bc"): they share one id.
    int32_t merged;
    if (auto it = id_of_bytes.find(merged_bytes); it != id_of_bytes.end()) {
      merged = it->second;
    } else {
      merged = int32_t(bytes_.size());
      bytes_.push_back(merged_bytes);
      id_of_bytes.emplace(std::move(merged_bytes), merged);
      ++vocab;
    }
    merges.emplace_back(a, b);

    auto affected = std::move(pair_words_[top.pair]);
    pair_words_.erase(top.pair);
    std::sort(affected.begin(), affected.end());
    affected.erase(std::unique(affected.begin(), affected.end()), affected.end());
    std::unordered_set<uint64_t> new_pairs;
    for (uint32_t w : affected) {
      auto& s = words_[w];
      bool present = false;
      for (size_t i = 0; i + 1 < s.size() && !present; ++i) present = s[i] == a && s[i + 1] == b;
      if (!present) continue;
      add_word_pairs(w, -1);
      std::vector<int32_t> out;
      out.reserve(s.size());
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          out.push_back(merged);
          i += 2;
        } else {
          out.push_back(s[i++]);
        }
      }
      s = std::move(out);
      add_word_pairs(w, +1);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        if (s[i] != merged && s[i + 1] != merged) continue;
        const uint64_t p = pair_key(s[i], s[i + 1]);
        pair_words_[p].push_back(w);
        new_pairs.insert(p);
      }
    }
    pair_count_.erase(top.pair);
    for (uint64_t p : new_pairs)
      if (pair_count_[p] > 0) heap.push({pair_count_[p], p});
  }

  // The document Hugging Face's `tokenizers` writes for such a model, so both libraries load it.
  using Json = nlohmann::ordered_json;
  Json doc;
  doc["version"] = "1.0";
  doc["truncation"] = nullptr;
  doc["padding"] = nullptr;
  Json added = Json::array();
  for (int32_t i = 0; i < n_special; ++i)
    added.push_back({{"id", i}, {"content", bytes_[i]}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  doc["added_tokens"] = added;
  doc["normalizer"] = nullptr;
  doc["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       Json::array({Json{{"type", "Split"},
                         {"pattern", {{"Regex", std::string(tok::kGpt4Pattern)}}},
                         {"behavior", "Isolated"},
                         {"invert", false}},
                    Json{{"type", "ByteLevel"},
                         {"add_prefix_space", false},
                         {"trim_offsets", true},
                         {"use_regex", false}}})}};
  doc["post_processor"] = nullptr;
  doc["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true},
                    {"use_regex", true}};
  Json vocab_json = Json::object();
  for (int32_t id = 0; id < int32_t(bytes_.size()); ++id)
    vocab_json[id < n_special ? bytes_[id] : tok::bytes_to_byte_level(bytes_[id])] = id;
  Json merges_json = Json::array();
  for (auto [l, r] : merges)
    merges_json.push_back({tok::bytes_to_byte_level(bytes_[l]), tok::bytes_to_byte_level(bytes_[r])});
  doc["model"] = {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"unk_token", nullptr},
                  {"continuing_subword_prefix", nullptr},
                  {"end_of_word_suffix", nullptr},
                  {"fuse_unk", false},
                  {"byte_fallback", false},
                  {"ignore_merges", false},
                  {"vocab", vocab_json},
                  {"merges", merges_json}};
  return doc;
}

}  // namespace

Tokenizer train_bpe(const std::vector<std::filesystem::path>& files, const BpeTrainOptions& opt) {
  if (files.empty()) throw std::runtime_error("train_bpe: no input files");
  std::unordered_set<std::string> seen;
  for (const auto& s : opt.special_tokens) {
    if (s.empty()) throw std::runtime_error("train_bpe: empty special token");
    try {
      (void)nlohmann::json(s).dump();  // tokenizer.json is UTF-8: the strict check nlohmann does
    } catch (const nlohmann::json::exception&) {
      throw std::runtime_error("train_bpe: special token is not valid UTF-8");
    }
    if (!seen.insert(s).second) throw std::runtime_error("train_bpe: special token \"" + s + "\" given twice");
    if (tok::byte_level_to_bytes(s) && tok::byte_level_to_bytes(s)->size() == 1)
      throw std::runtime_error("train_bpe: special token \"" + s + "\" collides with a byte token");
  }
  const int64_t floor = 256 + int64_t(opt.special_tokens.size());
  if (opt.vocab_size < floor)
    throw std::runtime_error("train_bpe: vocab size " + std::to_string(opt.vocab_size) +
                             " is below the 256 byte tokens plus " +
                             std::to_string(opt.special_tokens.size()) + " special tokens");
  const WordCounts counts = tok::count_words(files, opt.special_tokens, opt.threads);
  Trainer trainer(opt);
  return Tokenizer(tok::build_impl(trainer.run(counts), "<trained tokenizer>"));
}

}  // namespace nemokit::rt
