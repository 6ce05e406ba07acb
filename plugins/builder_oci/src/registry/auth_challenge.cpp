#include "auth_challenge.hpp"

namespace nemokit::registry {

namespace {
bool is_letter(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
}  // namespace

std::map<std::string, std::string> auth_challenge_params(std::string_view h) {
  std::map<std::string, std::string> out;
  size_t i = 0;
  while (i < h.size()) {
    if (!is_letter(h[i])) {
      ++i;
      continue;
    }
    size_t key_end = i;
    while (key_end < h.size() && is_letter(h[key_end])) ++key_end;
    if (key_end + 1 < h.size() && h[key_end] == '=' && h[key_end + 1] == '"') {
      const size_t close = h.find('"', key_end + 2);
      if (close == std::string_view::npos) break;  // an unterminated value ends the header
      out[std::string(h.substr(i, key_end - i))] = std::string(h.substr(key_end + 2, close - key_end - 2));
      i = close + 1;
    } else {
      i = key_end;  // a word that is not a key (the scheme, a token68 value)
    }
  }
  return out;
}

}  // namespace nemokit::registry
