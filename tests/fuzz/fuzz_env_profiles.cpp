// env.toml: profiles with `extends`, ${env:...}, typed keys; then every accessor a command uses.
#include "fuzz_support.hpp"

#include "profiles/profiles.hpp"
#include "util/error.hpp"

#include <fstream>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto file = nemokit::fuzz::scratch_dir() / "env.toml";
  std::ofstream(file, std::ios::binary | std::ios::trunc) << text;
  nemokit::fuzz::expect_only<nemokit::UserError>(text, [&] {
    const auto set = nemokit::ProfileSet::load(file);
    for (const auto& name : set.names()) {
      const auto& p = set.get(name);
      (void)p.executor();
      (void)p.env_vars();
      (void)p.strings("mounts");
      (void)p.integer("nodes");
      (void)p.boolean("exclusive");
    }
  });
  return 0;
}
