#include "byte_level.hpp"

#include <unordered_map>

namespace nemokit::rt::tok {
namespace {

struct Tables {
  std::array<char32_t, 256> to_cp{};
  std::unordered_map<char32_t, uint8_t> to_byte;
  std::array<std::string, 256> spelled;  // UTF-8 of to_cp, for fast byte -> string

  Tables() {
    // Printable Latin-1 bytes keep their own code point; the rest (controls, space, DEL, ...)
    // are moved to 256 + n in byte order, exactly as GPT-2 defined it.
    auto keeps_itself = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      to_cp[b] = keeps_itself(b) ? char32_t(b) : next++;
      to_byte[to_cp[b]] = uint8_t(b);
      append_utf8(spelled[b], to_cp[b]);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

bool is_unicode_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(char(cp));
  } else if (cp < 0x800) {
    out.push_back(char(0xC0 | (cp >> 6)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(char(0xE0 | (cp >> 12)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (cp >> 18)));
    out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  }
}

std::optional<char32_t> next_utf8(std::string_view s, size_t& i) {
  const auto b0 = uint8_t(s[i]);
  int len = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
  if (len == 0 || i + len > s.size()) {
    ++i;
    return std::nullopt;
  }
  char32_t cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (int k = 1; k < len; ++k) {
    const auto b = uint8_t(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      ++i;
      return std::nullopt;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  i += len;
  return cp;
}

char32_t byte_to_codepoint(uint8_t byte) { return tables().to_cp[byte]; }

std::optional<uint8_t> codepoint_to_byte(char32_t cp) {
  const auto& m = tables().to_byte;
  auto it = m.find(cp);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

std::string bytes_to_byte_level(std::string_view raw) {
  const auto& t = tables();
  std::string out;
  out.reserve(raw.size() * 2);
  for (char c : raw) out += t.spelled[uint8_t(c)];
  return out;
}

std::optional<std::string> byte_level_to_bytes(std::string_view spelled) {
  std::string out;
  out.reserve(spelled.size());
  size_t i = 0;
  while (i < spelled.size()) {
    auto cp = next_utf8(spelled, i);
    if (!cp) return std::nullopt;
    auto b = codepoint_to_byte(*cp);
    if (!b) return std::nullopt;
    out.push_back(char(*b));
  }
  return out;
}

}  // namespace nemokit::rt::tok
