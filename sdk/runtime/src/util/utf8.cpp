#include "nemokit/runtime/utf8.hpp"

namespace nemokit::rt {

size_t invalid_utf8_at(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    size_t more = (b >> 5) == 0x6 ? 1 : (b >> 4) == 0xE ? 2 : (b >> 3) == 0x1E ? 3 : 0;  // continuation bytes
    if (more == 0 || b < 0xC2 || b > 0xF4 || i + more >= s.size()) return i;
    // The second byte's range rules out overlong forms, surrogates and code points past U+10FFFF.
    auto b1 = static_cast<unsigned char>(s[i + 1]);
    unsigned lo = b == 0xE0 ? 0xA0 : b == 0xF0 ? 0x90 : 0x80;
    unsigned hi = b == 0xED ? 0x9F : b == 0xF4 ? 0x8F : 0xBF;
    if (b1 < lo || b1 > hi) return i;
    for (size_t k = 2; k <= more; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return i;
    i += more + 1;
  }
  return std::string::npos;
}

}  // namespace nemokit::rt
