#include "word_counter.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "added_tokens.hpp"
#include "byte_level.hpp"
#include "pre_tokenizer.hpp"

namespace nemokit::rt::tok {
namespace {

// Offset i is safe when text[i-1] is '\n' and text[i] starts a non-space character: every match
// of the split pattern that holds a newline either ends with it or continues over spaces only.
bool is_safe_cut(std::string_view text, size_t i) {
  if (i == 0 || i >= text.size() || text[i - 1] != '\n') return false;
  size_t j = i;
  const auto c = next_utf8(text, j);
  return c && !is_unicode_space(*c);
}

class WordCounter {
 public:
  WordCounter(const std::vector<std::string>& specials, int threads)
      : threads_(std::max<size_t>(1, threads > 0 ? size_t(threads) : std::thread::hardware_concurrency())),
        partial_(threads_) {
    std::vector<AddedTokenSpec> specs;
    for (const auto& s : specials) specs.push_back({s, 0, true, false, false, false, false});
    matcher_ = AddedTokenMatcher(specs);
    pre_.add_split(std::make_shared<RegexSplitter>(std::string(kGpt4Pattern), false),
                   SplitBehavior::Isolated, false);
  }

  size_t threads() const { return threads_; }
  size_t pending_bytes() const { return pending_bytes_; }

  void add(std::string chunk) {
    pending_bytes_ += chunk.size();
    pending_.push_back(std::move(chunk));
  }

  // Counts everything pending on all threads, ~1 MiB per task.
  void flush() {
    std::vector<std::string_view> tasks;
    constexpr size_t kTask = 1 << 20;
    for (const auto& chunk : pending_) {
      std::string_view text = chunk;
      size_t begin = 0;
      while (begin < text.size()) {
        size_t cut = text.size();
        for (size_t i = begin + kTask; i < text.size(); ++i) {
          if (is_safe_cut(text, i)) {
            cut = i;
            break;
          }
        }
        tasks.push_back(text.substr(begin, cut - begin));
        begin = cut;
      }
    }
    std::atomic<size_t> next{0};
    auto worker = [&](size_t t) {
      std::vector<AddedTokenMatcher::Span> spans;
      std::vector<std::string_view> pieces;
      std::deque<std::string> storage;
      for (size_t k; (k = next.fetch_add(1)) < tasks.size();) {
        spans.clear();
        matcher_.split(tasks[k], spans);
        for (const auto& s : spans) {
          if (s.id >= 0) continue;  // special tokens are not part of any word
          pieces.clear();
          pre_.split(tasks[k].substr(s.begin, s.end - s.begin), pieces, storage);
          for (auto p : pieces) {
            auto it = partial_[t].find(p);
            if (it != partial_[t].end())
              ++it->second;
            else
              partial_[t].emplace(std::string(p), 1);
          }
        }
      }
    };
    {
      const size_t n = std::min(threads_, std::max<size_t>(1, tasks.size()));
      std::vector<std::jthread> pool;
      for (size_t t = 1; t < n; ++t) pool.emplace_back(worker, t);
      worker(0);
    }
    pending_.clear();
    pending_bytes_ = 0;
  }

  WordCounts finish() {
    flush();
    WordCounts total;
    for (auto& part : partial_) {
      for (auto& [w, n] : part) total[w] += n;
      part = {};
    }
    return total;
  }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  size_t threads_;
  std::vector<std::unordered_map<std::string, int64_t, Hash, std::equal_to<>>> partial_;
  AddedTokenMatcher matcher_;
  PreTokenizer pre_;
  std::vector<std::string> pending_;
  size_t pending_bytes_ = 0;
};

}  // namespace

size_t last_safe_cut(std::string_view text) {
  for (size_t i = text.size(); i > 0; --i) {
    const size_t nl = text.rfind('\n', i - 1);
    if (nl == std::string_view::npos) return 0;
    if (is_safe_cut(text, nl + 1)) return nl + 1;
    i = nl + 1;  // continue before this newline
  }
  return 0;
}

WordCounts count_words(const std::vector<std::filesystem::path>& files,
                       const std::vector<std::string>& specials, int threads, size_t block_bytes) {
  WordCounter counter(specials, threads);
  block_bytes = std::max<size_t>(block_bytes, 16);
  std::string block(block_bytes, '\0');
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path.string() + ": cannot open: " + std::strerror(errno));
    std::string carry;  // text after the last safe cut, waiting for the next block
    while (in) {
      in.read(block.data(), std::streamsize(block.size()));
      const size_t got = size_t(in.gcount());
      if (got == 0) break;
      carry.append(block.data(), got);
      if (const size_t cut = last_safe_cut(carry); cut > 0) {
        counter.add(carry.substr(0, cut));
        carry.erase(0, cut);
      }
      if (counter.pending_bytes() >= counter.threads() * block_bytes) counter.flush();
    }
    if (in.bad()) throw std::runtime_error(path.string() + ": read error");
    if (!carry.empty()) counter.add(std::move(carry));
  }
  return counter.finish();
}

}  // namespace nemokit::rt::tok
