// Encoding and decoding with a loaded tokenizer.

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <stdexcept>
#include <thread>

#include "tokenizer_impl.hpp"

namespace nemokit::rt {
namespace {

// Most pieces are common words, so each thread remembers the ids of pieces it has already merged.
// The cache is per thread (no locks on the hot path) and per tokenizer (keyed by Impl::serial);
// a thread that alternates between more tokenizers than it has slots just recomputes.
class WordCache {
 public:
  static WordCache& for_tokenizer(uint64_t serial) {
    thread_local std::array<WordCache, 4> slots;
    thread_local size_t victim = 0;
    for (auto& s : slots)
      if (s.serial_ == serial) return s;
    auto& s = slots[victim++ % slots.size()];
    s.reset(serial);
    return s;
  }

  // Appends the cached ids of `piece` to out and returns true, or returns false.
  bool lookup(std::string_view piece, std::vector<int32_t>& out) const {
    auto it = index_.find(piece);
    if (it == index_.end()) return false;
    out.insert(out.end(), ids_.begin() + it->second.first,
               ids_.begin() + it->second.first + it->second.second);
    return true;
  }
  void store(std::string_view piece, const int32_t* ids, size_t n) {
    if (piece.size() > kMaxPieceBytes) return;
    if (index_.size() >= kMaxEntries) reset(serial_);  // crude but bounded: start over
    index_.emplace(std::string(piece), std::pair<uint32_t, uint32_t>(uint32_t(ids_.size()), uint32_t(n)));
    ids_.insert(ids_.end(), ids, ids + n);
  }

 private:
  static constexpr size_t kMaxPieceBytes = 128;
  static constexpr size_t kMaxEntries = 1 << 17;
  void reset(uint64_t serial) {
    serial_ = serial;
    index_.clear();
    ids_.clear();
  }
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  uint64_t serial_ = 0;
  std::unordered_map<std::string, std::pair<uint32_t, uint32_t>, Hash, std::equal_to<>> index_;
  std::vector<int32_t> ids_;
};

}  // namespace

Tokenizer::Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  const Impl& im = *impl_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  auto& cache = WordCache::for_tokenizer(im.serial);
  thread_local std::vector<tok::AddedTokenMatcher::Span> spans;
  thread_local std::vector<std::string_view> pieces;
  thread_local std::deque<std::string> storage;
  spans.clear();
  storage.clear();
  if (im.added_matcher.empty())
    spans.push_back({0, text.size(), -1});
  else
    im.added_matcher.split(text, spans);
  for (const auto& span : spans) {
    if (span.id >= 0) {
      out.push_back(span.id);
      continue;
    }
    pieces.clear();
    im.pre_tokenizer.split(text.substr(span.begin, span.end - span.begin), pieces, storage);
    for (auto piece : pieces) {
      if (cache.lookup(piece, out)) continue;
      const size_t before = out.size();
      im.model.encode_piece(piece, out);
      cache.store(piece, out.data() + before, out.size() - before);
    }
  }
  return out;
}

std::vector<std::vector<int32_t>> Tokenizer::encode_batch(std::span<const std::string> texts,
                                                          int threads) const {
  std::vector<std::vector<int32_t>> results(texts.size());
  size_t n_threads = threads > 0 ? size_t(threads) : std::max(1u, std::thread::hardware_concurrency());
  n_threads = std::min(n_threads, (texts.size() + 15) / 16);
  if (n_threads <= 1) {
    for (size_t i = 0; i < texts.size(); ++i) results[i] = encode(texts[i]);
    return results;
  }
  // Small blocks handed out from a shared counter keep all threads busy when text lengths vary.
  std::atomic<size_t> next{0};
  constexpr size_t kBlock = 16;
  auto worker = [&] {
    for (;;) {
      const size_t begin = next.fetch_add(kBlock);
      if (begin >= texts.size()) return;
      const size_t end = std::min(texts.size(), begin + kBlock);
      for (size_t i = begin; i < end; ++i) results[i] = encode(texts[i]);
    }
  };
  std::vector<std::jthread> pool;
  for (size_t t = 1; t < n_threads; ++t) pool.emplace_back(worker);
  worker();
  return results;
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const { return decode(ids, false); }

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  const Impl& im = *impl_;
  for (int32_t id : ids)
    if (id < 0 || id >= im.vocab_size || im.id_kind[id] == 0)
      throw std::out_of_range("token id " + std::to_string(id) + " is not in the vocab of " +
                              im.origin);
  return decode_generated(ids, skip_special);
}

std::string Tokenizer::decode_generated(std::span<const int32_t> ids, bool skip_special) const {
  const Impl& im = *impl_;
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || id >= im.vocab_size || im.id_kind[id] == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      continue;
    }
    if (skip_special && im.id_kind[id] == 3) continue;
    out += im.id_bytes[id];
  }
  return out;
}

int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (auto it = impl_->added_by_content.find(token); it != impl_->added_by_content.end())
    return it->second;
  if (auto it = impl_->model.by_spelling.find(token); it != impl_->model.by_spelling.end())
    return it->second;
  return std::nullopt;
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  const Impl& im = *impl_;
  if (id < 0 || id >= im.vocab_size || im.id_kind[id] == 0) return std::nullopt;
  if (im.id_kind[id] >= 2) {
    for (const auto& a : im.added)
      if (a.id == id) return a.content;
  }
  return im.model.spelling[id];
}

const std::vector<AddedToken>& Tokenizer::added_tokens() const { return impl_->added; }

}  // namespace nemokit::rt
