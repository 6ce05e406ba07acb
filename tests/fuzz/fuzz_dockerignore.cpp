// .dockerignore rules: the first line of the input is a path to test, the rest is the file.
#include "fuzz_support.hpp"

#include "nemokit/dockerfile/context.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nl = input.find('\n');
  const std::string path = nl == std::string::npos ? "a/b.txt" : input.substr(0, nl);
  const std::string text = nl == std::string::npos ? input : input.substr(nl + 1);
  nemokit::fuzz::expect_only<nemokit::dockerfile::BuildError>(input, [&] {
    const auto rules = nemokit::dockerfile::IgnoreRules::parse(text, ".dockerignore");
    for (const std::string& p : {path, std::string("a"), std::string("a/b/c.txt"), std::string(".git/HEAD")})
      (void)rules.excluded(p);
  });
  return 0;
}
