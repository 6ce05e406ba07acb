#pragma once
// The pre-tokenizer: cuts text into the pieces BPE runs on, step by step as tokenizer.json's
// pre_tokenizer says (Split, ByteLevel, Digits, or a Sequence of them).

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "regex_splitter.hpp"

namespace nemokit::rt::tok {

// GPT-2's split pattern, the one ByteLevel uses when use_regex is true.
inline constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// GPT-4's (cl100k) split pattern: digits in groups of three, newlines kept apart.
inline constexpr std::string_view kGpt4Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// What happens to the text a Split pattern matches (Hugging Face's SplitDelimiterBehavior).
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

class PreTokenizer {
 public:
  void add_split(std::shared_ptr<const RegexSplitter> regex, SplitBehavior behavior, bool invert);
  // ByteLevel's add_prefix_space: a piece that does not start with ' ' gets one.
  void add_prefix_space();
  bool empty() const { return steps_.empty(); }

  // Appends the pieces of `text` to `out`. A piece views `text` or a string in `storage`
  // (only prefix spaces create new strings).
  void split(std::string_view text, std::vector<std::string_view>& out,
             std::deque<std::string>& storage) const;

 private:
  struct Step {
    std::shared_ptr<const RegexSplitter> regex;  // null: the prefix-space step
    SplitBehavior behavior = SplitBehavior::Isolated;
    bool invert = false;
  };
  static void apply(const Step& step, std::string_view piece, std::vector<std::string_view>& out,
                    std::deque<std::string>& storage);
  std::vector<Step> steps_;
};

}  // namespace nemokit::rt::tok
