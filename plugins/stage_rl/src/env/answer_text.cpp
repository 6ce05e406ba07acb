#include "env/answer_text.hpp"

#include <algorithm>
#include <cctype>
#include <vector>

namespace nemokit::rl {

namespace {
bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
}  // namespace

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::string excerpt(std::string_view s, size_t n) {
  // A cut never splits a UTF-8 character: back up over continuation bytes (10xxxxxx).
  size_t end = std::min(s.size(), n);
  if (end < s.size())
    while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  std::string out;
  for (size_t i = 0; i < end; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  }
  if (s.size() > n) out += "...";
  return out;
}

size_t count_boxed(std::string_view text) {
  size_t n = 0;
  for (size_t p = text.find("\\boxed{"); p != std::string_view::npos; p = text.find("\\boxed{", p + 1)) ++n;
  return n;
}

std::optional<std::string> last_boxed(std::string_view text) {
  size_t p = text.rfind("\\boxed{");
  // An unbalanced last box falls back to the one before it.
  while (p != std::string_view::npos) {
    size_t i = p + 7, depth = 1;
    for (; i < text.size() && depth; ++i) {
      if (text[i] == '{') ++depth;
      else if (text[i] == '}') --depth;
    }
    if (depth == 0) return trim(text.substr(p + 7, i - 1 - (p + 7)));
    if (p == 0) break;
    p = text.rfind("\\boxed{", p - 1);
  }
  return std::nullopt;
}

std::string_view without_reasoning(std::string_view response) {
  const size_t open = response.find_first_not_of(" \n");
  if (open == std::string_view::npos || response.substr(open, 7) != "<think>") return response;
  const size_t close = response.find("</think>", open + 7);
  return close == std::string_view::npos ? std::string_view() : response.substr(close + 8);
}

std::optional<std::string> marked_answer(std::string_view response) {
  if (auto b = last_boxed(response)) return b;
  std::optional<std::string> found;
  size_t start = 0;
  while (start <= response.size()) {
    size_t nl = response.find('\n', start);
    std::string_view line = response.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    size_t i = 0;
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '*' || line[i] == '#' || line[i] == '>')) ++i;
    std::string head = lower(line.substr(i, 14));
    size_t skip = head.rfind("answer:", 0) == 0 ? 7 : head.rfind("final answer:", 0) == 0 ? 13 : 0;
    if (skip) {
      std::string rest = trim(line.substr(i + skip));
      while (!rest.empty() && (rest.back() == '*' || rest.back() == '.')) rest.pop_back();
      // "**Answer:** 42": the bold marker's closing stars follow the colon.
      size_t b = 0;
      while (b < rest.size() && rest[b] == '*') ++b;
      found = trim(rest.substr(b));
    }
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  return found;
}

std::optional<std::string> normalize_integer(std::string_view text) {
  bool neg = false;
  size_t i = 0;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) neg = text[i++] == '-';
  if (i == text.size()) return std::nullopt;
  for (size_t j = i; j < text.size(); ++j)
    if (!is_digit(text[j])) return std::nullopt;
  while (i + 1 < text.size() && text[i] == '0') ++i;
  std::string digits(text.substr(i));
  if (digits == "0") neg = false;
  return (neg ? "-" : "") + digits;
}

std::optional<std::string> last_number(std::string_view text) {
  size_t e = text.size();
  while (e > 0) {
    if (!is_digit(text[e - 1])) {
      --e;
      continue;
    }
    size_t b = e;
    while (b > 0 && is_digit(text[b - 1])) --b;
    // Digits glued to letters ("x2", "2nd") are not a number of their own.
    bool glued = (b > 0 && std::isalpha(static_cast<unsigned char>(text[b - 1]))) ||
                 (e < text.size() && std::isalpha(static_cast<unsigned char>(text[e])));
    if (!glued) {
      // "3.5": the whole decimal, which the caller then reports as not an integer.
      if (b > 1 && text[b - 1] == '.' && is_digit(text[b - 2]))
        for (--b; b > 0 && is_digit(text[b - 1]);) --b;
      if (b > 0 && text[b - 1] == '-' && (b == 1 || !is_alnum(text[b - 2]))) --b;
      return std::string(text.substr(b, e - b));
    }
    e = b;
  }
  return std::nullopt;
}

}  // namespace nemokit::rl
