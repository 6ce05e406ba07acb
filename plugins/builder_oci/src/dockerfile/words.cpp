// Docker's shell-like word lexer (moby's shell.Lex): single quotes are literal,
// double quotes allow expansion, the escape character protects the next one,
// and expansions never split into more words.
#include "nemokit/dockerfile/words.hpp"

#include <cctype>

namespace nemokit::dockerfile {
namespace {

class Lexer {
 public:
  Lexer(const std::string& text, const Vars& vars, const WordOptions& opt, const Location& where)
      : s_(text), vars_(vars), opt_(opt), where_(where) {}

  std::vector<std::string> words() {
    std::vector<std::string> out;
    while (true) {
      skip_space();
      if (i_ >= s_.size()) break;
      out.push_back(word(true));
    }
    return out;
  }

  std::string whole() { return word(false); }

 private:
  [[noreturn]] void fail(const std::string& msg) const { throw BuildError(where_.str() + ": " + msg); }

  void skip_space() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }

  std::string word(bool stop_at_space) {
    std::string w;
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (stop_at_space && std::isspace(static_cast<unsigned char>(c))) break;
      if (c == opt_.escape) {
        ++i_;
        if (i_ < s_.size()) w += s_[i_++];
        continue;
      }
      if (c == '\'') {
        ++i_;
        size_t e = s_.find('\'', i_);
        if (e == std::string::npos) fail("unterminated single quote in '" + s_ + "'");
        w += s_.substr(i_, e - i_);
        i_ = e + 1;
        continue;
      }
      if (c == '"') {
        ++i_;
        w += double_quoted();
        continue;
      }
      if (c == '$' && opt_.expand) {
        ++i_;
        w += dollar();
        continue;
      }
      w += c;
      ++i_;
    }
    return w;
  }

  std::string double_quoted() {
    std::string w;
    while (true) {
      if (i_ >= s_.size()) fail("unterminated double quote in '" + s_ + "'");
      char c = s_[i_];
      if (c == '"') {
        ++i_;
        return w;
      }
      if (c == opt_.escape && i_ + 1 < s_.size()) {
        char n = s_[i_ + 1];
        // Inside double quotes only these are escapable, as in sh.
        if (n == '"' || n == '$' || n == opt_.escape) {
          w += n;
          i_ += 2;
          continue;
        }
      }
      if (c == '$' && opt_.expand) {
        ++i_;
        w += dollar();
        continue;
      }
      w += c;
      ++i_;
    }
  }

  static bool name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

  const std::string* lookup(const std::string& name) const {
    auto it = vars_.find(name);
    return it == vars_.end() ? nullptr : &it->second;
  }

  // After '$': NAME, {NAME}, {NAME:-word}, {NAME-word}, {NAME:+word}, {NAME+word},
  // {NAME:?msg}, {NAME?msg}; anything else leaves the '$' as it is.
  std::string dollar() {
    if (i_ >= s_.size()) return "$";
    if (s_[i_] == '{') {
      ++i_;
      size_t n0 = i_;
      while (i_ < s_.size() && name_char(s_[i_])) ++i_;
      std::string name = s_.substr(n0, i_ - n0);
      if (name.empty()) fail("bad substitution in '" + s_ + "'");
      if (i_ >= s_.size()) fail("missing '}' in '" + s_ + "'");
      const std::string* v = lookup(name);
      if (s_[i_] == '}') {
        ++i_;
        return v ? *v : "";
      }
      bool colon = false;
      if (s_[i_] == ':') {
        colon = true;
        ++i_;
      }
      if (i_ >= s_.size()) fail("missing '}' in '" + s_ + "'");
      char op = s_[i_++];
      std::string operand = nested_word();
      bool set = v && (!colon || !v->empty());
      switch (op) {
        case '-':
          return set ? *v : operand;
        case '+':
          return set ? operand : "";
        case '?':
          if (!set) fail(name + ": " + (operand.empty() ? "is not set" : operand));
          return *v;
        default:
          fail("unsupported modifier '" + std::string(1, op) + "' in ${" + name + "...}");
      }
    }
    if (!name_char(s_[i_])) return "$";
    size_t n0 = i_;
    while (i_ < s_.size() && name_char(s_[i_])) ++i_;
    const std::string* v = lookup(s_.substr(n0, i_ - n0));
    return v ? *v : "";
  }

  // The operand of ${NAME:-...} up to the matching '}', itself expanded.
  std::string nested_word() {
    std::string w;
    while (true) {
      if (i_ >= s_.size()) fail("missing '}' in '" + s_ + "'");
      char c = s_[i_];
      if (c == '}') {
        ++i_;
        return w;
      }
      if (c == opt_.escape && i_ + 1 < s_.size()) {
        w += s_[i_ + 1];
        i_ += 2;
        continue;
      }
      if (c == '$') {
        ++i_;
        w += dollar();
        continue;
      }
      if (c == '\'' || c == '"') {
        ++i_;
        size_t e = s_.find(c, i_);
        if (e == std::string::npos) fail("unterminated quote in '" + s_ + "'");
        w += s_.substr(i_, e - i_);
        i_ = e + 1;
        continue;
      }
      w += c;
      ++i_;
    }
  }

  const std::string& s_;
  const Vars& vars_;
  WordOptions opt_;
  Location where_;
  size_t i_ = 0;
};

}  // namespace

std::vector<std::string> split_words(const std::string& text, const Vars& vars, const WordOptions& opt, const Location& where) {
  return Lexer(text, vars, opt, where).words();
}

std::string process_word(const std::string& text, const Vars& vars, const WordOptions& opt, const Location& where) {
  return Lexer(text, vars, opt, where).whole();
}

std::vector<std::pair<std::string, std::string>> parse_key_values(const std::string& text, const Vars& vars,
                                                                  const WordOptions& opt, const Location& where,
                                                                  bool allow_legacy) {
  std::vector<std::pair<std::string, std::string>> out;
  // Legacy form: "KEY value with spaces" (the first word has no '=').
  size_t sp = text.find_first_of(" \t");
  std::string first = text.substr(0, sp);
  if (first.find('=') == std::string::npos) {
    if (!allow_legacy || sp == std::string::npos) throw BuildError(where.str() + ": expected KEY=VALUE, got '" + text + "'");
    std::string rest = text.substr(text.find_first_not_of(" \t", sp));
    out.emplace_back(first, process_word(rest, vars, opt, where));
    return out;
  }
  for (auto& w : split_words(text, vars, opt, where)) {
    size_t eq = w.find('=');
    if (eq == std::string::npos || eq == 0) throw BuildError(where.str() + ": expected KEY=VALUE, got '" + w + "'");
    out.emplace_back(w.substr(0, eq), w.substr(eq + 1));
  }
  return out;
}

}  // namespace nemokit::dockerfile
