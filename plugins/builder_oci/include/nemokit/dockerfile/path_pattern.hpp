#pragma once
// Docker's .dockerignore pattern language on slash-separated relative paths: filepath.Match
// ('*' and '?' never cross '/', '[...]' classes, '\' escapes) plus "**" (any run of folders).
#include <bitset>
#include <string>
#include <string_view>
#include <vector>

namespace nemokit::dockerfile {

class PathPattern {
 public:
  // Throws BuildError naming the pattern when it is malformed (an unterminated '[', ...).
  explicit PathPattern(const std::string& pattern);

  // Whether the whole of `path` matches. Runs the pattern as a set of positions advanced one
  // character at a time: linear in the path, no recursion, so any length is safe.
  bool matches(std::string_view path) const { return run(path, false); }
  // Whether `path` or one of its parent folders ("a/b" for "a/b/c") matches, in one pass.
  bool matches_itself_or_a_parent(std::string_view path) const { return run(path, true); }

 private:
  enum class Kind {
    Literal,     // one given character
    OneInName,   // '?': any character but '/'
    Class,       // '[...]': a character of the set
    RunInName,   // '*': any run of characters without '/'
    AnyRun,      // "**": any run of characters
    FolderSkip,  // starts "**/" (FolderSkip AnyRun '/'): matches nothing, lets the whole group be skipped
  };
  struct Token {
    Kind kind = Kind::Literal;
    char literal = 0;
    std::bitset<256> set;
  };
  bool run(std::string_view path, bool accept_parents) const;

  std::vector<Token> tokens_;
};

}  // namespace nemokit::dockerfile
