#pragma once
// Finds added tokens (specials such as "<|endoftext|>" and user-added words) in raw text so they
// are emitted as their own ids and never reach the pre-tokenizer, as Hugging Face does.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nemokit::rt::tok {

struct AddedTokenSpec {
  std::string content;
  int32_t id = 0;
  bool special = false;
  bool single_word = false;  // only match when not inside a word
  bool lstrip = false;       // swallow whitespace on the left
  bool rstrip = false;       // swallow whitespace on the right
  bool normalized = false;   // matched after normalization (a second pass, as Hugging Face does)
};

class AddedTokenMatcher {
 public:
  struct Span {
    size_t begin, end;
    int32_t id;  // -1: plain text for the pre-tokenizer
  };

  AddedTokenMatcher() = default;
  explicit AddedTokenMatcher(const std::vector<AddedTokenSpec>& tokens);
  bool empty() const { return raw_.nodes.size() <= 1 && normalized_.nodes.size() <= 1; }

  // Cuts `text` into plain-text spans and added-token spans, in order; empty spans are omitted.
  void split(std::string_view text, std::vector<Span>& out) const;

 private:
  // A byte trie: at each position the longest token starting there wins (leftmost-longest).
  struct Trie {
    struct Node {
      std::vector<std::pair<uint8_t, int32_t>> children;
      int32_t token = -1;  // index into specs_
    };
    std::vector<Node> nodes{Node{}};
    bool first_byte[256] = {};
    void add(std::string_view s, int32_t token);
    // Longest token starting at text[pos]: its index and length, or -1.
    int32_t longest_at(std::string_view text, size_t pos, size_t& len) const;
  };
  void split_with(const Trie& trie, std::string_view text, size_t base,
                  std::vector<Span>& out) const;

  std::vector<AddedTokenSpec> specs_;
  Trie raw_, normalized_;
};

}  // namespace nemokit::rt::tok
