#pragma once
// A compiled PCRE2 pattern (UTF + Unicode properties, JIT) that finds all matches in a text.
// One compiled pattern is shared by all threads; match state lives per thread.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace nemokit::rt::tok {

class RegexSplitter {
 public:
  // Throws std::runtime_error with PCRE2's message and the offset in the pattern.
  // `literal` matches the pattern text verbatim (the "String" form of a Split pattern).
  RegexSplitter(std::string pattern, bool literal);
  ~RegexSplitter();
  RegexSplitter(const RegexSplitter&) = delete;
  RegexSplitter& operator=(const RegexSplitter&) = delete;

  const std::string& pattern() const { return pattern_; }
  bool literal() const { return literal_; }

  // Finds the first non-empty match at or after `from`; sets [begin, end) and returns true.
  // Looping from the previous `end` walks all non-overlapping matches left to right. Invalid
  // UTF-8 in `text` never matches a character class and is left in the gaps.
  bool next_match(std::string_view text, size_t from, size_t& begin, size_t& end) const;

 private:
  std::string pattern_;
  bool literal_;
  void* code_ = nullptr;  // pcre2_code_8*, kept opaque so pcre2.h stays out of this header
  bool jit_ = false;
};

}  // namespace nemokit::rt::tok
