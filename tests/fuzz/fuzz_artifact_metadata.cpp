// Artifact metadata: the input is one artifact's metadata.json in a store, read the way `nemokit
// artifacts show|lineage` and a config's NAME:latest read it (Store::resolve and all(), the type,
// digest, path and used artifacts, dotted fields, find_by_path).
#include "fuzz_support.hpp"

#include "nemokit/runtime/artifacts.hpp"

#include <fstream>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fs = std::filesystem;
  namespace art = nemokit::rt::artifacts;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const fs::path root = nemokit::fuzz::scratch_dir() / "store";
  fs::create_directories(root / "data" / "v1");
  std::ofstream(root / "data" / "v1" / "metadata.json", std::ios::binary | std::ios::trunc) << input;
  nemokit::fuzz::expect_only<std::exception>(input, [&] {
    const art::Store store(root);
    for (const art::Artifact& a : store.all()) {
      (void)a.type(), (void)a.digest(), (void)a.path(), (void)a.used();
      (void)art::field(a.metadata, "tracking.used_artifacts");
      for (const std::string& ref : a.used())
        if (art::parse_ref(ref)) try {
            (void)store.resolve(ref);
          } catch (const art::NotFound&) {
          }
    }
    (void)store.resolve("data:latest");
    (void)store.find_by_path(root / "data");
  });
  return 0;
}
