// A safetensors file: the 8-byte header length, the JSON header, the data; then every tensor read.
#include "fuzz_support.hpp"

#include "nemokit/runtime/safetensors.hpp"

#include <fstream>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const auto file = nemokit::fuzz::scratch_dir() / "model.safetensors";
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
  nemokit::fuzz::expect_only<std::runtime_error>(bytes, [&] {
    const auto st = nemokit::rt::SafetensorsFile::open(file.string());
    for (const auto& e : st.entries()) {
      nemokit::fuzz::expect_only<std::runtime_error>(bytes, [&] { (void)st.load(e.name); });
      nemokit::fuzz::expect_only<std::runtime_error>(bytes, [&] { (void)st.load_f32(e.name); });
    }
  });
  return 0;
}
