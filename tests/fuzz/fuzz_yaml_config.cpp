// yaml_to_toml_text: a YAML config turned into TOML text. What it returns must be TOML the
// config loader parses: a refusal there would blame a line of text the user never wrote.
#include "fuzz_support.hpp"

#include "config/yaml_config.hpp"
#include "util/error.hpp"

#include <toml++/toml.h>

namespace {

// TOML text must be UTF-8; yaml-cpp passes other bytes through, and the config loader's TOML
// parser then refuses them naming the YAML file, line and column ("invalid utf-8 sequence").
bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
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
      if (!valid_utf8(yaml)) return;
      std::fprintf(stderr, "FINDING: the YAML was accepted but its TOML does not parse: %s\n---\n%s\n",
                   std::string(e.description()).c_str(), toml_text.c_str());
      std::abort();
    }
  });
  return 0;
}
