// The Dockerfile parser, then the word processing every instruction's arguments go through
// (quotes, escapes, ${VAR:-default} expansion, KEY=VALUE lists).
#include "fuzz_support.hpp"

#include "nemokit/dockerfile/dockerfile.hpp"
#include "nemokit/dockerfile/words.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  using nemokit::dockerfile::BuildError;
  nemokit::fuzz::expect_only<BuildError>(text, [&] {
    const auto file = nemokit::dockerfile::parse_dockerfile(text, "Dockerfile");
    const nemokit::dockerfile::Vars vars{{"A", "a b"}, {"EMPTY", ""}};
    for (const auto& ins : file.instructions) {
      const nemokit::dockerfile::WordOptions opt{file.escape, true};
      nemokit::fuzz::expect_only<BuildError>(text, [&] { nemokit::dockerfile::split_words(ins.args, vars, opt, ins.args_where); });
      nemokit::fuzz::expect_only<BuildError>(text, [&] { nemokit::dockerfile::process_word(ins.args, vars, opt, ins.args_where); });
      nemokit::fuzz::expect_only<BuildError>(
          text, [&] { nemokit::dockerfile::parse_key_values(ins.args, vars, opt, ins.args_where, true); });
    }
  });
  return 0;
}
