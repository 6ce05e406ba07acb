#include "added_tokens.hpp"

#include <optional>

#include "byte_level.hpp"
#include "regex_splitter.hpp"

namespace nemokit::rt::tok {
namespace {

// A word character for single_word, as the \w of Hugging Face's (Rust) regex: letters, marks,
// decimal digits, letter numbers, connector punctuation and the joiners. "½" or "€" are not.
bool is_word_char(std::string_view ch) {
  static const RegexSplitter word(R"(^[\p{L}\p{M}\p{Nd}\p{Nl}\p{Pc}\x{200C}\x{200D}])", false);
  size_t b = 0, e = 0;
  return word.next_match(ch, 0, b, e);
}

// The code point that ends at `end` (exclusive), decoding backwards over continuation bytes.
std::optional<char32_t> last_char(std::string_view s, size_t end, size_t& begin) {
  begin = end;
  while (begin > 0) {
    --begin;
    if ((uint8_t(s[begin]) & 0xC0) != 0x80) break;
  }
  size_t i = begin;
  return next_utf8(s.substr(0, end), i);
}

}  // namespace

void AddedTokenMatcher::Trie::add(std::string_view s, int32_t token) {
  if (s.empty()) return;
  first_byte[uint8_t(s[0])] = true;
  int32_t node = 0;
  for (char c : s) {
    int32_t child = -1;
    for (auto [b, n] : nodes[node].children)
      if (b == uint8_t(c)) child = n;
    if (child < 0) {
      child = int32_t(nodes.size());
      nodes[node].children.emplace_back(uint8_t(c), child);
      nodes.emplace_back();
    }
    node = child;
  }
  nodes[node].token = token;
}

int32_t AddedTokenMatcher::Trie::longest_at(std::string_view text, size_t pos, size_t& len) const {
  int32_t best = -1, node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    int32_t child = -1;
    for (auto [b, n] : nodes[node].children)
      if (b == uint8_t(text[i])) child = n;
    if (child < 0) break;
    node = child;
    if (nodes[node].token >= 0) {
      best = nodes[node].token;
      len = i + 1 - pos;
    }
  }
  return best;
}

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedTokenSpec>& tokens) : specs_(tokens) {
  for (size_t i = 0; i < specs_.size(); ++i)
    (specs_[i].normalized ? normalized_ : raw_).add(specs_[i].content, int32_t(i));
}

void AddedTokenMatcher::split_with(const Trie& trie, std::string_view text, size_t base,
                                   std::vector<Span>& out) const {
  size_t plain_begin = 0;  // start of text not yet emitted
  size_t pos = 0;
  while (pos < text.size()) {
    if (!trie.first_byte[uint8_t(text[pos])]) {
      ++pos;
      continue;
    }
    size_t len = 0;
    const int32_t t = trie.longest_at(text, pos, len);
    if (t < 0) {
      ++pos;
      continue;
    }
    const auto& spec = specs_[t];
    size_t start = pos, stop = pos + len;
    if (spec.single_word) {
      size_t b = start, i = stop;
      if (start > 0) last_char(text, start, b);
      if (stop < text.size()) next_utf8(text, i);
      if ((start > 0 && is_word_char(text.substr(b, start - b))) ||
          (stop < text.size() && is_word_char(text.substr(stop, i - stop)))) {
        pos = stop;  // the matched text stays plain, as a discarded match does there
        continue;
      }
    }
    if (spec.lstrip) {
      while (start > plain_begin) {
        size_t b = 0;
        auto c = last_char(text, start, b);
        if (!c || !is_unicode_space(*c) || b < plain_begin) break;
        start = b;
      }
    }
    if (spec.rstrip) {
      while (stop < text.size()) {
        size_t i = stop;
        auto c = next_utf8(text, i);
        if (!c || !is_unicode_space(*c)) break;
        stop = i;
      }
    }
    if (start > plain_begin) out.push_back({base + plain_begin, base + start, -1});
    out.push_back({base + start, base + stop, spec.id});
    plain_begin = pos = stop;
  }
  if (plain_begin < text.size()) out.push_back({base + plain_begin, base + text.size(), -1});
}

void AddedTokenMatcher::split(std::string_view text, std::vector<Span>& out) const {
  if (text.empty()) return;
  // Tokens matched on raw text first, then normalized ones inside what is left; with no
  // normalizer in the pipeline the second pass sees the same bytes.
  std::vector<Span> first;
  split_with(raw_, text, 0, first);
  for (const auto& s : first) {
    if (s.id >= 0 || normalized_.nodes.size() <= 1)
      out.push_back(s);
    else
      split_with(normalized_, text.substr(s.begin, s.end - s.begin), s.begin, out);
  }
}

}  // namespace nemokit::rt::tok
