// One layer blob (tar, tar+gzip or tar+zstd, detected by content) flattened into a squashfs with
// correct digests, so every input reaches the tar reader and the merged tree: whiteouts, hard
// links, symlinks, devices, path cleaning.
#include "oci_convert_support.hpp"

#include "nemokit/runtime/sha256.hpp"

#include <fstream>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string blob(reinterpret_cast<const char*>(data), size);
  const auto file = nemokit::fuzz::scratch_dir() / "layer.tar";
  std::ofstream(file, std::ios::binary | std::ios::trunc) << blob;

  nemokit::oci::Image image;
  image.source = "fuzz";
  image.format = "oci";
  image.config = {{"config", {{"Env", {"PATH=/usr/bin"}}, {"WorkingDir", "/w"}}}};
  nemokit::oci::Layer layer;
  layer.blob = {file, 0, blob.size(), "layer.tar"};
  layer.media_type = "application/vnd.oci.image.layer.v1.tar";
  layer.digest = nemokit::rt::Sha256::digest_of(blob);
  layer.size = blob.size();
  layer.diff_id = *layer.digest;  // right for an uncompressed tar; a compressed one fails at its end
  image.layers = {layer, layer};  // twice: the upper copy hides and whiteouts the lower
  nemokit::fuzz::expect_only<nemokit::oci::Error>(blob, [&] { nemokit::fuzz::convert_to_scratch(image); });
  return 0;
}
