// A registry's answers: the input is taken as a token server's reply, then as a manifest (an image
// manifest or a manifest list), through the functions the puller reads them with.
#include "fuzz_support.hpp"

#include "nemokit/dockerfile/dockerfile.hpp"
#include "registry/registry_replies.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nemokit::registry;
  using nemokit::dockerfile::BuildError;
  const std::string input(reinterpret_cast<const char*>(data), size);
  nemokit::fuzz::expect_only<BuildError>(input, [&] {
    const std::string token = token_of_reply(input, "https://auth.example/token");
    if (token.empty() || token.find_first_of("\r\n") != std::string::npos) std::abort();
  });
  nemokit::fuzz::expect_only<BuildError>(input, [&] {
    const ManifestReply m = read_manifest_reply(input, "registry.example/img:tag");
    if (m.is_list) {
      (void)platform_manifest_digest(m, nemokit::oci::Platform{"linux", "arm64", ""}, "registry.example/img:tag");
    } else {
      for (const std::string& d : image_manifest_blobs(m, "registry.example/img:tag"))
        if (d.size() != 71 || d.rfind("sha256:", 0) != 0) std::abort();  // a digest goes into a blob path
    }
  });
  return 0;
}
