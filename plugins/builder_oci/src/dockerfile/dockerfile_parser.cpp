// Dockerfile syntax: parser directives, comments, line continuations with the
// escape character, heredocs, the JSON ("exec") form and leading --flags.
#include <algorithm>
#include <cctype>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "nemokit/runtime/utf8.hpp"
#include "nemokit/dockerfile/dockerfile.hpp"

namespace nemokit::dockerfile {

std::string Location::str() const { return file + ":" + std::to_string(line) + ":" + std::to_string(column); }

const Flag* Instruction::flag(const std::string& name) const {
  for (auto& f : flags)
    if (f.name == name) return &f;
  return nullptr;
}

namespace {

const char* kKnown[] = {"FROM",       "RUN",    "CMD",  "LABEL",   "MAINTAINER", "EXPOSE",  "ENV",        "ADD",         "COPY",
                        "ENTRYPOINT", "VOLUME", "USER", "WORKDIR", "ARG",        "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"};

bool known_keyword(const std::string& k) {
  return std::any_of(std::begin(kKnown), std::end(kKnown), [&](const char* s) { return k == s; });
}

// The instructions whose arguments Docker reads as a JSON array when they are one.
bool takes_json_form(const std::string& k) {
  return k == "RUN" || k == "CMD" || k == "ENTRYPOINT" || k == "SHELL" || k == "VOLUME" || k == "COPY" || k == "ADD";
}

bool takes_heredocs(const std::string& k) { return k == "RUN" || k == "COPY" || k == "ADD"; }

std::string upper(std::string s) {
  for (auto& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string rtrim(const std::string& s) {
  size_t e = s.find_last_not_of(" \t\r");
  return e == std::string::npos ? "" : s.substr(0, e + 1);
}

std::string hex(unsigned char b) {
  const char* digits = "0123456789ABCDEF";
  return {digits[b >> 4], digits[b & 15]};
}

bool blank(const std::string& s) { return s.find_first_not_of(" \t\r") == std::string::npos; }

bool comment(const std::string& s) {
  size_t p = s.find_first_not_of(" \t");
  return p != std::string::npos && s[p] == '#';
}


// "# name = value" (name: a letter, then letters and digits; lowercased), the value trimmed and
// non-empty, with the column where it starts. Matched by hand: a line can be arbitrarily long
// and std::regex recurses once per character.
struct Directive {
  std::string name, value;
  size_t value_at = 0;
};

std::optional<Directive> directive(const std::string& line) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; };
  auto alpha = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; };
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  if (line.empty() || line[0] != '#') return std::nullopt;
  size_t i = 1;
  while (i < line.size() && space(line[i])) ++i;
  if (i == line.size() || !alpha(line[i])) return std::nullopt;
  Directive d;
  while (i < line.size() && alnum(line[i])) d.name += char(std::tolower(static_cast<unsigned char>(line[i++])));
  while (i < line.size() && space(line[i])) ++i;
  if (i == line.size() || line[i] != '=') return std::nullopt;
  ++i;
  while (i < line.size() && space(line[i])) ++i;
  size_t end = line.size();
  while (end > i && space(line[end - 1])) --end;
  if (end == i) return std::nullopt;
  d.value = line.substr(i, end - i);
  d.value_at = i;
  return d;
}

// A heredoc opener at `at` in an instruction's arguments: "<<" then an optional "-" (strip
// tabs), then a word, bare or in matching quotes (no expansion); `end` is just past it.
struct HeredocOpener {
  Heredoc heredoc;
  size_t end = 0;
};

std::optional<HeredocOpener> heredoc_opener(const std::string& text, size_t at) {
  auto word_start = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; };
  auto word_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  size_t i = at + 2;
  HeredocOpener o;
  o.heredoc.strip_tabs = i < text.size() && text[i] == '-';
  if (o.heredoc.strip_tabs) ++i;
  char quote = i < text.size() && (text[i] == '"' || text[i] == '\'') ? text[i] : 0;
  if (quote) ++i;
  o.heredoc.expand = quote == 0;
  if (i == text.size() || !word_start(text[i])) return std::nullopt;
  size_t name_at = i;
  while (i < text.size() && word_char(text[i])) ++i;
  o.heredoc.name = text.substr(name_at, i - name_at);
  if (quote) {
    if (i == text.size() || text[i] != quote) return std::nullopt;
    ++i;
  }
  o.end = i;
  return o;
}

// A logical line: text joined across continuations, with the source position
// of every character so errors point into the file.
struct Logical {
  std::string text;
  std::vector<std::pair<int, int>> pos;  // (line, column) per character
  void append(const std::string& s, int line, int first_col) {
    for (size_t i = 0; i < s.size(); ++i) {
      text += s[i];
      pos.emplace_back(line, first_col + int(i));
    }
  }
};

class Parser {
 public:
  Parser(const std::string& text, const std::string& path) : path_(path) {
    size_t start = 0;
    while (start <= text.size()) {
      size_t nl = text.find('\n', start);
      if (nl == std::string::npos) {
        if (start < text.size()) lines_.push_back(text.substr(start));
        break;
      }
      lines_.push_back(text.substr(start, nl - start));
      start = nl + 1;
    }
    for (auto& l : lines_)
      if (!l.empty() && l.back() == '\r') l.pop_back();
  }

  Dockerfile run() {
    for (size_t i = 0; i < lines_.size(); ++i)
      if (size_t at = rt::invalid_utf8_at(lines_[i]); at != std::string::npos)
        fail(loc(int(i) + 1, int(at) + 1),
             "invalid UTF-8 (byte 0x" + hex(static_cast<unsigned char>(lines_[i][at])) + "); a Dockerfile must be UTF-8");
    Dockerfile df;
    df.path = path_;
    read_directives(df);
    df.escape = escape_;
    while (next_ < lines_.size()) {
      const std::string& line = lines_[next_];
      if (blank(line) || comment(line)) {
        ++next_;
        continue;
      }
      df.instructions.push_back(instruction());
    }
    return df;
  }

 private:
  Location loc(int line, int col) const { return Location{path_, line, col}; }

  [[noreturn]] void fail(const Location& where, const std::string& msg) const { throw BuildError(where.str() + ": " + msg); }

  // Directives are comments of the form "# name=value" before anything else.
  void read_directives(Dockerfile&) {
    bool seen_escape = false;
    while (next_ < lines_.size()) {
      auto d = directive(lines_[next_]);
      if (!d) break;
      if (d->name == "escape") {
        if (seen_escape) fail(loc(int(next_) + 1, 1), "the escape directive is given twice");
        if (d->value != "\\" && d->value != "`")
          fail(loc(int(next_) + 1, int(d->value_at) + 1), "invalid escape character '" + d->value + "' (use \\ or `)");
        escape_ = d->value[0];
        seen_escape = true;
      } else if (d->name != "syntax" && d->name != "check") {
        break;  // an ordinary comment ends the directives
      }
      ++next_;
    }
  }

  // Joins physical lines while they end with the escape character; comment
  // lines inside a continuation are dropped, as Docker does.
  Logical join() {
    Logical lg;
    int first = int(next_);
    while (next_ < lines_.size()) {
      std::string line = lines_[next_];
      int lineno = int(next_) + 1;
      ++next_;
      if (int(next_) - 1 != first && (comment(line) || blank(line))) continue;
      std::string t = rtrim(line);
      // An odd run of trailing escape characters continues the line.
      size_t n = 0;
      while (n < t.size() && t[t.size() - 1 - n] == escape_) ++n;
      if (n % 2 == 1) {
        lg.append(t.substr(0, t.size() - 1), lineno, 1);
        if (next_ >= lines_.size()) break;
        continue;
      }
      lg.append(line, lineno, 1);
      break;
    }
    return lg;
  }

  // The JSON ("exec") form as Docker reads it: a JSON array of strings; a JSON array holding
  // anything else is an error; text that is not a JSON array is the shell form. Docker reads
  // the array with Go's json.Decoder, which stops after one value, so text after the array
  // (`CMD ["a"] # comment`) is ignored and the form stays JSON.
  void read_json_form(Instruction& ins, const std::string& text, std::pair<int, int> at) {
    if (text.empty() || text[0] != '[') return;
    nlohmann::json j;
    std::istringstream in(text);
    try {
      in >> j;  // one value, what follows it left unread
    } catch (const nlohmann::json::exception&) {
      return;  // not JSON, or a number no double holds (Go's decoder fails on it alike): shell form
    }
    if (!j.is_array()) return;
    for (auto& v : j)
      if (!v.is_string()) fail(loc(at.first, at.second), ins.keyword + ": a JSON array must hold only strings, not " + v.dump());
    ins.json_form = true;
    for (auto& v : j) ins.json_args.push_back(v.get<std::string>());
  }

  void read_heredocs(Instruction& ins, const Logical& lg, size_t args_start) {
    std::string text = lg.text.substr(args_start);
    for (size_t at = text.find("<<"); at != std::string::npos; at = text.find("<<", at + 1)) {
      auto opener = heredoc_opener(text, at);
      if (!opener) continue;
      // "<<" after "<" (a here-string, "<<<") is not a heredoc.
      if (at > 0 && text[at - 1] == '<') {
        at = opener->end - 1;
        continue;
      }
      Heredoc h = opener->heredoc;
      auto [sl, sc] = lg.pos[args_start + at];
      bool closed = false;
      while (next_ < lines_.size()) {
        std::string line = lines_[next_++];
        std::string cmp = line;
        if (h.strip_tabs)
          cmp.erase(0, cmp.find_first_not_of('\t') == std::string::npos ? cmp.size() : cmp.find_first_not_of('\t'));
        if (cmp == h.name) {
          closed = true;
          break;
        }
        h.content += cmp + "\n";
      }
      if (!closed) fail(loc(sl, sc), "heredoc <<" + h.name + " is not terminated (no line '" + h.name + "')");
      ins.heredocs.push_back(std::move(h));
      ins.heredoc_only = at == 0 && text.find_first_not_of(" \t\r\f\v", opener->end) == std::string::npos;
      at = opener->end - 1;
    }
  }

  Instruction instruction() {
    int first_line = int(next_) + 1;
    Logical lg = join();
    const std::string& t = lg.text;
    size_t k0 = t.find_first_not_of(" \t");
    // Only an escape character and blank lines after it, up to the end of the file.
    if (k0 == std::string::npos)
      fail(loc(first_line, 1), std::string("line continuation '") + escape_ + "' with no instruction after it");
    size_t k1 = t.find_first_of(" \t", k0);
    if (k1 == std::string::npos) k1 = t.size();
    Instruction ins;
    ins.keyword = upper(t.substr(k0, k1 - k0));
    ins.where = loc(lg.pos[k0].first, lg.pos[k0].second);
    ins.original = rtrim(t.substr(k0));
    if (!known_keyword(ins.keyword)) fail(ins.where, "unknown instruction '" + t.substr(k0, k1 - k0) + "'");

    size_t p = t.find_first_not_of(" \t", k1);
    // Leading --flags (never for instructions whose arguments may start with "--").
    bool has_flags = ins.keyword == "FROM" || ins.keyword == "RUN" || ins.keyword == "COPY" || ins.keyword == "ADD" ||
                     ins.keyword == "HEALTHCHECK";
    while (has_flags && p != std::string::npos && t.compare(p, 2, "--") == 0) {
      size_t e = t.find_first_of(" \t", p);
      if (e == std::string::npos) e = t.size();
      std::string word = t.substr(p, e - p);
      Flag f;
      f.where = loc(lg.pos[p].first, lg.pos[p].second);
      size_t eq = word.find('=');
      f.name = word.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      if (eq != std::string::npos) f.value = word.substr(eq + 1);
      if (f.name.empty()) fail(f.where, "empty flag name in '" + word + "'");
      ins.flags.push_back(f);
      p = t.find_first_not_of(" \t", e);
    }
    if (p == std::string::npos) {
      ins.args_where = loc(lg.pos.back().first, lg.pos.back().second + 1);
    } else {
      ins.args = rtrim(t.substr(p));
      ins.args_where = loc(lg.pos[p].first, lg.pos[p].second);
    }
    if (ins.args.empty() && ins.keyword != "RUN") fail(ins.where, ins.keyword + " needs at least one argument");

    if (ins.keyword == "HEALTHCHECK") {
      // The command after CMD has the two forms of CMD itself.
      size_t c = ins.args.find_first_not_of(" \t", 3);
      if (upper(ins.args.substr(0, 4)) == "CMD " && c != std::string::npos)
        read_json_form(ins, ins.args.substr(c), lg.pos[p + c]);
    } else if (takes_json_form(ins.keyword)) {
      read_json_form(ins, ins.args, p == std::string::npos ? std::pair<int, int>{} : lg.pos[p]);
    }
    if (ins.keyword == "SHELL" && !ins.json_form)
      fail(ins.args_where, "SHELL requires the JSON form, e.g. SHELL [\"/bin/bash\", \"-c\"]");
    if (takes_heredocs(ins.keyword) && !ins.json_form) read_heredocs(ins, lg, p == std::string::npos ? t.size() : p);
    if (ins.keyword == "RUN" && ins.args.empty()) fail(ins.where, "RUN needs a command");
    return ins;
  }

  std::string path_;
  std::vector<std::string> lines_;
  size_t next_ = 0;
  char escape_ = '\\';
};

}  // namespace

Dockerfile parse_dockerfile(const std::string& text, const std::string& path) { return Parser(text, path).run(); }

}  // namespace nemokit::dockerfile
