#include "nemokit/dockerfile/path_pattern.hpp"

#include "nemokit/dockerfile/dockerfile.hpp"

namespace nemokit::dockerfile {

namespace {

// The set of a class's content (between '[' and ']'): an optional leading '!' or '^' negates,
// "a-z" is a range, '\' takes the next character literally.
std::bitset<256> class_set(const std::string& content, const std::string& pattern) {
  std::bitset<256> set;
  size_t i = 0;
  bool negate = !content.empty() && (content[0] == '!' || content[0] == '^');
  if (negate) ++i;
  auto next_char = [&]() -> unsigned char {
    if (content[i] == '\\') {
      if (++i == content.size()) throw BuildError("pattern '" + pattern + "': '\\' ends a character class");
    }
    return static_cast<unsigned char>(content[i++]);
  };
  while (i < content.size()) {
    unsigned char lo = next_char();
    unsigned char hi = lo;
    if (i + 1 < content.size() && content[i] == '-') {
      ++i;
      hi = next_char();
      if (hi < lo) throw BuildError("pattern '" + pattern + "': invalid range in a character class");
    }
    for (unsigned c = lo; c <= hi; ++c) set.set(c);
  }
  return negate ? ~set : set;
}

}  // namespace

PathPattern::PathPattern(const std::string& pattern) {
  auto literal = [](char c) {
    Token t;
    t.literal = c;
    return t;
  };
  auto of_kind = [](Kind k) {
    Token t;
    t.kind = k;
    return t;
  };
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '*' && i + 1 < pattern.size() && pattern[i + 1] == '*') {
      ++i;
      if (i + 1 < pattern.size() && pattern[i + 1] == '/') {
        ++i;
        tokens_.push_back(of_kind(Kind::FolderSkip));
        tokens_.push_back(of_kind(Kind::AnyRun));
        tokens_.push_back(literal('/'));
      } else {
        tokens_.push_back(of_kind(Kind::AnyRun));
      }
    } else if (c == '*') {
      tokens_.push_back(of_kind(Kind::RunInName));
    } else if (c == '?') {
      tokens_.push_back(of_kind(Kind::OneInName));
    } else if (c == '[') {
      size_t e = pattern.find(']', i + 1);
      if (e == std::string::npos) throw BuildError("pattern '" + pattern + "': unterminated '['");
      Token t = of_kind(Kind::Class);
      t.set = class_set(pattern.substr(i + 1, e - i - 1), pattern);
      tokens_.push_back(t);
      i = e;
    } else if (c == '\\') {
      if (i + 1 == pattern.size()) throw BuildError("pattern '" + pattern + "': ends with '\\'");
      tokens_.push_back(literal(pattern[++i]));
    } else {
      tokens_.push_back(literal(c));
    }
  }
}

bool PathPattern::run(std::string_view path, bool accept_parents) const {
  const size_t n = tokens_.size();
  // The positions reached so far: the pattern is matched up to just before token i (n: all of
  // it). Kept as a list, with a stamp per position against duplicates, so a step costs what is
  // live rather than the length of the pattern.
  std::vector<size_t> live, next;
  std::vector<size_t> stamp(n + 1, 0);
  size_t round = 1;
  auto reach = [&](std::vector<size_t>& into, size_t i) {
    if (stamp[i] == round) return;
    stamp[i] = round;
    into.push_back(i);
  };
  // Runs may match nothing and "**/" may be skipped whole: follow those steps (the list grows
  // while it is walked).
  auto close = [&](std::vector<size_t>& v) {
    for (size_t k = 0; k < v.size(); ++k) {
      size_t i = v[k];
      if (i == n) continue;
      Kind kind = tokens_[i].kind;
      if (kind == Kind::RunInName || kind == Kind::AnyRun || kind == Kind::FolderSkip) reach(v, i + 1);
      if (kind == Kind::FolderSkip) reach(v, i + 3);
    }
  };
  auto accepts = [&] { return stamp[n] == round; };
  reach(live, 0);
  close(live);
  for (char ch : path) {
    if (accept_parents && ch == '/' && accepts()) return true;
    ++round;
    next.clear();
    for (size_t i : live) {
      if (i == n) continue;
      const Token& t = tokens_[i];
      switch (t.kind) {
        case Kind::Literal:
          if (ch == t.literal) reach(next, i + 1);
          break;
        case Kind::OneInName:
          if (ch != '/') reach(next, i + 1);
          break;
        case Kind::Class:
          if (t.set.test(static_cast<unsigned char>(ch))) reach(next, i + 1);
          break;
        case Kind::RunInName:
          if (ch != '/') reach(next, i);
          break;
        case Kind::AnyRun:
          reach(next, i);
          break;
        case Kind::FolderSkip:
          break;
      }
    }
    if (next.empty()) return false;
    close(next);
    live.swap(next);
  }
  return accepts();
}

}  // namespace nemokit::dockerfile
