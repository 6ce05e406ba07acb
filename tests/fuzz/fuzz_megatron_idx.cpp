// A Megatron indexed dataset: the input is the .idx, then "BIN!" and the .bin (when present);
// open() checks both, then every sequence is read.
#include "fuzz_support.hpp"

#include "nemokit/runtime/data/indexed_dataset.hpp"

#include <fstream>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.rfind("BIN!");
  const auto prefix = nemokit::fuzz::scratch_dir() / "data";
  std::ofstream(prefix.string() + ".idx", std::ios::binary | std::ios::trunc) << input.substr(0, split);
  std::ofstream(prefix.string() + ".bin", std::ios::binary | std::ios::trunc)
      << (split == std::string::npos ? std::string(64, '\1') : input.substr(split + 4));
  nemokit::fuzz::expect_only<std::runtime_error>(input, [&] {
    const auto ds = nemokit::rt::IndexedDataset::open(prefix);
    for (size_t i = 0; i < ds->sequence_count() && i < 64; ++i) (void)ds->sequence(i);
  });
  return 0;
}
