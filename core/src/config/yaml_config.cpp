#include "config/yaml_config.hpp"

#include "util/error.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <map>
#include <string_view>
#include <vector>

namespace nemokit {

namespace {

// The YAML 1.2 core schema's scalar forms, matched by hand in one pass: std::regex recurses once
// per character and overflowed the stack on a long plain scalar (a number of 200,000 digits).
bool one_of(std::string_view s, std::initializer_list<std::string_view> words) {
  return std::find(words.begin(), words.end(), s) != words.end();
}

// Advances `i` over characters `ok` accepts; true when it passed at least one.
template <class Pred>
bool skip_run(std::string_view s, size_t& i, Pred ok) {
  const size_t start = i;
  while (i < s.size() && ok(s[i])) ++i;
  return i > start;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

size_t sign_length(std::string_view s) { return !s.empty() && (s[0] == '-' || s[0] == '+') ? 1 : 0; }

// [-+]?[0-9]+ | 0x[0-9a-fA-F]+ | 0o[0-7]+
bool is_int_form(std::string_view s) {
  size_t i = 2;
  if (s.starts_with("0x"))
    return skip_run(s, i, [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }) && i == s.size();
  if (s.starts_with("0o")) return skip_run(s, i, [](char c) { return c >= '0' && c <= '7'; }) && i == s.size();
  i = sign_length(s);
  return skip_run(s, i, is_digit) && i == s.size();
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool is_float_form(std::string_view s) {
  size_t i = sign_length(s);
  if (i < s.size() && s[i] == '.') {
    if (!skip_run(s, ++i, is_digit)) return false;
  } else {
    if (!skip_run(s, i, is_digit)) return false;
    if (i < s.size() && s[i] == '.') skip_run(s, ++i, is_digit);
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    i += sign_length(s.substr(i));
    if (!skip_run(s, i, is_digit)) return false;
  }
  return i == s.size();
}

// [-+]?\.(inf|Inf|INF) | \.(nan|NaN|NAN)
bool is_special_float_form(std::string_view s) {
  return one_of(s.substr(sign_length(s)), {".inf", ".Inf", ".INF"}) || one_of(s, {".nan", ".NaN", ".NAN"});
}

struct Emitter {
  std::string origin;
  std::vector<std::string> lines;  // lines[i] is TOML line i + 1

  [[noreturn]] void fail(const YAML::Mark& m, const std::string& what) const {
    throw UserError(origin + ":" + std::to_string(m.line + 1) + ": " + what);
  }

  // Puts `text` on line `line` (1-based), or the first free line after it.
  void put(size_t line, const std::string& text) {
    if (line == 0) line = 1;
    while (lines.size() >= line && !lines[line - 1].empty()) ++line;
    if (lines.size() < line) lines.resize(line);
    lines[line - 1] = text;
  }

  static std::string quote(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        case '\r': out += "\\r"; break;
        default:
          if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
          } else {
            out += static_cast<char>(c);
          }
      }
    }
    return out + "\"";
  }

  // A plain scalar's TOML form by the YAML 1.2 core schema; quoted scalars stay strings.
  std::string scalar(const YAML::Node& n) const {
    const std::string& s = n.Scalar();
    if (n.Tag() == "!") return quote(s);  // quoted in the YAML file
    if (s.empty() || one_of(s, {"~", "null", "Null", "NULL"}))
      fail(n.Mark(), "a null value (TOML has none: leave the key out, or quote \"" + s + "\" for a string)");
    if (one_of(s, {"true", "True", "TRUE", "false", "False", "FALSE"})) return s[0] == 't' || s[0] == 'T' ? "true" : "false";
    if (is_int_form(s)) {
      long long v = 0;
      const char* b = s.data() + (s[0] == '+');
      int base = 10;
      if (s.starts_with("0x")) b += 2, base = 16;
      else if (s.starts_with("0o")) b += 2, base = 8;
      auto [p, ec] = std::from_chars(b, s.data() + s.size(), v, base);
      if (ec != std::errc() || p != s.data() + s.size()) fail(n.Mark(), "integer " + s + " is out of range");
      return std::to_string(v);
    }
    if (is_special_float_form(s)) {
      if (s.find_first_of("iI") == std::string::npos) return "nan";
      return s[0] == '-' ? "-inf" : "inf";
    }
    if (is_float_form(s)) {
      double d = std::strtod(s.c_str(), nullptr);
      char buf[40];
      std::string t(buf, std::to_chars(buf, buf + sizeof buf, d).ptr);
      if (t.find_first_of(".en") == std::string::npos) t += ".0";
      return t;
    }
    return quote(s);
  }

  std::string inline_value(const YAML::Node& n) const {
    switch (n.Type()) {
      case YAML::NodeType::Scalar: return scalar(n);
      case YAML::NodeType::Sequence: {
        std::string out = "[";
        for (size_t i = 0; i < n.size(); ++i) out += (i ? ", " : "") + inline_value(n[i]);
        return out + "]";
      }
      case YAML::NodeType::Map: {
        check_unique_keys(n);
        std::string out = "{";
        bool first = true;
        for (const auto& kv : n) {
          out += (first ? " " : ", ") + key(kv.first) + " = " + inline_value(kv.second);
          first = false;
        }
        return out + (first ? "}" : " }");
      }
      default: fail(n.Mark(), "a null value (TOML has none: leave the key out)");
    }
  }

  // yaml-cpp keeps a key given twice in one mapping; TOML refuses it, in words about its own text
  // ("cannot redefine existing string"), so it is refused here naming both lines.
  void check_unique_keys(const YAML::Node& map) const {
    std::map<std::string, int> first_line;
    for (const auto& kv : map) {
      if (!kv.first.IsScalar()) continue;  // key() refuses it
      auto [it, fresh] = first_line.emplace(kv.first.Scalar(), kv.first.Mark().line + 1);
      if (!fresh)
        fail(kv.first.Mark(), "key \"" + kv.first.Scalar() + "\" is given twice in one mapping (first on line " +
                                  std::to_string(it->second) + ")");
    }
  }

  std::string key(const YAML::Node& k) const {
    if (!k.IsScalar()) fail(k.Mark(), "a key must be a plain name, not a list or a mapping");
    if (k.Scalar() == "<<") fail(k.Mark(), "merge keys (<<) are not supported: write the keys out");
    return quote(k.Scalar());
  }

  // Block mappings become dotted keys, each on its YAML line; anything else is one value.
  void mapping(const YAML::Node& map, const std::string& prefix, const std::string& shown) {
    check_unique_keys(map);
    for (const auto& kv : map) {
      const std::string path = prefix + key(kv.first), name = shown + kv.first.Scalar();
      const YAML::Node& v = kv.second;
      if (v.IsNull()) fail(kv.first.Mark(), name + ": a null value (TOML has none: leave the key out)");
      if (v.IsMap() && v.size() > 0 && v.Style() == YAML::EmitterStyle::Block) {
        mapping(v, path + ".", name + ".");
        continue;
      }
      put(kv.first.Mark().line + 1, path + " = " + inline_value(v));
    }
  }
};

}  // namespace

bool is_yaml_name(const std::string& name) { return name.ends_with(".yaml") || name.ends_with(".yml"); }

std::string yaml_to_toml_text(const std::string& yaml, const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw UserError(origin + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  Emitter em{origin, {}};
  if (root.IsNull()) return "";
  if (!root.IsMap()) em.fail(root.Mark(), "a config must be a mapping of keys to values");
  em.mapping(root, "", "");
  std::string out;
  for (const auto& l : em.lines) out += l + "\n";
  return out;
}

}  // namespace nemokit
