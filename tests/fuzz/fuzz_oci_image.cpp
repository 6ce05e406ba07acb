// An OCI image layout: index.json, one manifest, its config and one layer, given as four parts
// separated by lines "@@". The parts may name each other's digests and sizes with $M/$C/$L and
// %M/%C/%L (replaced before writing), so the fuzzed JSON gets past digest checks to the
// parsing of the manifest, the config (Env, WorkingDir, diff_ids) and the conversion.
#include "oci_convert_support.hpp"

#include "nemokit/oci/image.hpp"
#include "nemokit/runtime/sha256.hpp"

#include <fstream>

namespace {

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
}

void write(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    size_t end = input.find("\n@@\n", start);
    parts.push_back(input.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos || parts.size() == 4) break;
    start = end + 4;
  }
  parts.resize(4);
  std::string &index = parts[0], &manifest = parts[1], &config = parts[2], &layer = parts[3];
  using nemokit::rt::Sha256;
  const std::string layer_digest = Sha256::digest_of(layer);
  for (std::string* doc : {&config, &manifest, &index}) {
    replace_all(*doc, "$L", layer_digest);
    replace_all(*doc, "%L", std::to_string(layer.size()));
  }
  for (std::string* doc : {&manifest, &index}) {
    replace_all(*doc, "$C", Sha256::digest_of(config));
    replace_all(*doc, "%C", std::to_string(config.size()));
  }
  replace_all(index, "$M", Sha256::digest_of(manifest));
  replace_all(index, "%M", std::to_string(manifest.size()));

  const auto dir = nemokit::fuzz::scratch_dir() / "layout";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "blobs" / "sha256");
  write(dir / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  write(dir / "index.json", index);
  for (const std::string* blob : {&manifest, &config, &layer})
    write(dir / "blobs" / "sha256" / Sha256::digest_of(*blob).substr(7), *blob);

  nemokit::fuzz::expect_only<nemokit::oci::Error>(input, [&] {
    const auto image = nemokit::oci::open_image("oci:" + dir.string());
    nemokit::fuzz::convert_to_scratch(image);
  });
  return 0;
}
