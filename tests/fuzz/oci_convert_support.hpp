// Converting a fuzzed image the way `nemokit image convert` does, into a scratch squashfs: a
// refusal is an oci::Error (or dockerfile::BuildError-free: the OCI reader has one error type).
#pragma once

#include "fuzz_support.hpp"

#include "nemokit/oci/convert.hpp"
#include "nemokit/oci/error.hpp"

namespace nemokit::fuzz {

inline void convert_to_scratch(const oci::Image& image) {
  oci::ConvertOptions options;
  options.squashfs.compressor = "lz4";  // the fastest: the target is the reading, not the compression
  options.squashfs.workers = 1;
  options.progress = false;
  options.handle_signals = false;
  oci::convert_image(image, scratch_dir() / "out.sqsh", options);
}

}  // namespace nemokit::fuzz
