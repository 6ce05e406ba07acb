// yaml_to_toml_text: a YAML config turned into TOML text. What it returns must be TOML the
// config loader parses: a refusal there would blame a line of text the user never wrote.
#include "fuzz_support.hpp"

#include "config/yaml_config.hpp"
#include "util/error.hpp"

#include <toml++/toml.h>

namespace {

// TOML text must be UTF-8; yaml-cpp passes other bytes through (and turns a NUL byte into a lone
// 0xA0), and the config loader's TOML parser then refuses them naming the YAML file, line and
// column ("invalid utf-8 sequence"). Only text files are held to the round trip.
bool is_text(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 && c != '\n' && c != '\t' && c != '\r') return false;
    // Well-formed UTF-8 (Unicode's table 3-7): no overlong forms, surrogates or values past U+10FFFF.
    const size_t n = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    const auto second = static_cast<unsigned char>(n > 1 ? s[i + 1] : 0x80);
    const unsigned char low = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
    const unsigned char high = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
    if (second < low || second > high) return false;
    for (size_t k = 2; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    i += n;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  nemokit::fuzz::expect_only<nemokit::UserError>(yaml, [&] {
    const std::string toml_text = nemokit::yaml_to_toml_text(yaml, "config.yaml");
    try {
      (void)toml::parse(toml_text, std::string("config.yaml"));
    } catch (const toml::parse_error& e) {
      if (!is_text(yaml)) return;
      std::fprintf(stderr, "FINDING: the YAML was accepted but its TOML does not parse: %s\n---\n%s\n",
                   std::string(e.description()).c_str(), toml_text.c_str());
      std::abort();
    }
  });
  return 0;
}
