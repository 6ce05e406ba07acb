#include "chat/python_text.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <system_error>

namespace nemokit::sft {
namespace {

using ordered_json = nlohmann::ordered_json;

// Decodes the UTF-8 code point starting at text[pos] and advances pos past it. nlohmann has already
// rejected invalid UTF-8 when it parsed the record; a stray byte is returned as itself.
char32_t next_code_point(std::string_view text, std::size_t& pos) {
  const auto byte = static_cast<unsigned char>(text[pos]);
  int extra = byte >= 0xF0 ? 3 : byte >= 0xE0 ? 2 : byte >= 0xC0 ? 1 : 0;
  if (pos + extra >= text.size()) extra = 0;  // a truncated sequence: take the byte alone
  char32_t cp = extra == 0 ? byte : byte & (0x3F >> extra);
  for (int k = 1; k <= extra; ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[pos + k]) & 0x3F);
  pos += 1 + extra;
  return cp;
}

// Python's str.isspace(): the characters with bidirectional type WS, B or S, or category Zs.
bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// Python's str.isprintable(), which decides what repr() escapes. Exact for control characters,
// separators and the common format characters; unassigned code points count as printable here.
bool is_python_printable(char32_t c) {
  if (c == ' ') return true;
  if (c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD) return false;
  if (is_python_space(c)) return false;
  if ((c >= 0x600 && c <= 0x605) || c == 0x61C || c == 0x6DD || c == 0x70F || c == 0x180E) return false;
  if ((c >= 0x200B && c <= 0x200F) || (c >= 0x202A && c <= 0x202E) || (c >= 0x2060 && c <= 0x206F)) return false;
  if (c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFB)) return false;
  if ((c >= 0xD800 && c <= 0xF8FF) || c >= 0xF0000) return false;  // surrogates and private use
  return true;
}

void append_hex(std::string& out, char32_t value, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) out += kHex[(value >> shift) & 0xF];
}

// Python's repr() of a str, as str(list) and str(dict) print their string members.
std::string python_str_repr(std::string_view text) {
  const bool has_single = text.find('\'') != std::string_view::npos;
  const bool has_double = text.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t start = pos;
    const char32_t c = next_code_point(text, pos);
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (!is_python_printable(c)) {
      if (c < 0x100) {
        out += "\\x";
        append_hex(out, c, 2);
      } else if (c < 0x10000) {
        out += "\\u";
        append_hex(out, c, 4);
      } else {
        out += "\\U";
        append_hex(out, c, 8);
      }
    } else {
      out.append(text.substr(start, pos - start));
    }
  }
  out += quote;
  return out;
}

// json.dumps' string escaping with ensure_ascii=False: only '"', '\\' and control characters.
void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  for (const char ch : text) {
    const auto byte = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (byte < 0x20) {
          out += "\\u";
          append_hex(out, byte, 4);
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

std::string integer_text(const ordered_json& value) {
  return value.is_number_unsigned() ? std::to_string(value.get<std::uint64_t>())
                                    : std::to_string(value.get<std::int64_t>());
}

// str() of a value nested in a container: strings are quoted there, everything else reads as at top level.
void append_python_repr(std::string& out, const ordered_json& value);

void append_python_container(std::string& out, const ordered_json& value) {
  if (value.is_array()) {
    out += '[';
    bool first = true;
    for (const auto& item : value) {
      if (!first) out += ", ";
      first = false;
      append_python_repr(out, item);
    }
    out += ']';
    return;
  }
  out += '{';
  bool first = true;
  for (const auto& [key, item] : value.items()) {
    if (!first) out += ", ";
    first = false;
    out += python_str_repr(key);
    out += ": ";
    append_python_repr(out, item);
  }
  out += '}';
}

void append_python_repr(std::string& out, const ordered_json& value) {
  if (value.is_string()) {
    out += python_str_repr(value.get_ref<const std::string&>());
  } else {
    out += python_str(value);
  }
}

void append_python_json(std::string& out, const ordered_json& value) {
  switch (value.type()) {
    case ordered_json::value_t::null: out += "null"; return;
    case ordered_json::value_t::boolean: out += value.get<bool>() ? "true" : "false"; return;
    case ordered_json::value_t::number_integer:
    case ordered_json::value_t::number_unsigned: out += integer_text(value); return;
    case ordered_json::value_t::number_float: {
      const double v = value.get<double>();
      // json.dumps writes the non-finite floats as JavaScript names (records parsed as JSON have none).
      if (std::isnan(v)) out += "NaN";
      else if (std::isinf(v)) out += v > 0 ? "Infinity" : "-Infinity";
      else out += python_float_repr(v);
      return;
    }
    case ordered_json::value_t::string: append_json_string(out, value.get_ref<const std::string&>()); return;
    case ordered_json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& item : value) {
        if (!first) out += ", ";
        first = false;
        append_python_json(out, item);
      }
      out += ']';
      return;
    }
    case ordered_json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, item] : value.items()) {
        if (!first) out += ", ";
        first = false;
        append_json_string(out, key);
        out += ": ";
        append_python_json(out, item);
      }
      out += '}';
      return;
    }
    default: out += "null"; return;  // binary and discarded values never come from a parsed record
  }
}

}  // namespace

std::string python_float_repr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  // Shortest round-trip digits in scientific form, e.g. "1.2345e+02"; the layout is then Python's.
  char buf[64];
  const auto result = std::to_chars(buf, buf + sizeof buf, std::fabs(value), std::chars_format::scientific);
  const std::string_view sci(buf, static_cast<std::size_t>(result.ptr - buf));
  const std::size_t e_pos = sci.find('e');
  std::string digits;
  for (const char ch : sci.substr(0, e_pos))
    if (ch != '.') digits += ch;
  int exponent = 0;
  std::from_chars(sci.data() + e_pos + 1 + (sci[e_pos + 1] == '+' ? 1 : 0), sci.data() + sci.size(), exponent);

  std::string out = std::signbit(value) ? "-" : "";
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      out += "0." + std::string(static_cast<std::size_t>(-exponent - 1), '0') + digits;
    } else {
      const auto int_len = static_cast<std::size_t>(exponent) + 1;
      if (digits.size() < int_len) digits.append(int_len - digits.size(), '0');
      const std::string fraction = digits.substr(int_len);
      out += digits.substr(0, int_len) + "." + (fraction.empty() ? "0" : fraction);
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char exp_buf[8];
  std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  return out + exp_buf;
}

std::string python_str(const ordered_json& value) {
  switch (value.type()) {
    case ordered_json::value_t::null: return "None";
    case ordered_json::value_t::boolean: return value.get<bool>() ? "True" : "False";
    case ordered_json::value_t::number_integer:
    case ordered_json::value_t::number_unsigned: return integer_text(value);
    case ordered_json::value_t::number_float: return python_float_repr(value.get<double>());
    case ordered_json::value_t::string: return value.get<std::string>();
    case ordered_json::value_t::array:
    case ordered_json::value_t::object: {
      std::string out;
      append_python_container(out, value);
      return out;
    }
    default: return "None";
  }
}

std::string python_json(const ordered_json& value) {
  std::string out;
  append_python_json(out, value);
  return out;
}

std::string python_strip(std::string_view text) {
  std::size_t begin = text.size();
  std::size_t end = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t start = pos;
    if (!is_python_space(next_code_point(text, pos))) {
      if (begin == text.size()) begin = start;
      end = pos;
    }
  }
  return begin < end ? std::string(text.substr(begin, end - begin)) : std::string();
}

}  // namespace nemokit::sft
