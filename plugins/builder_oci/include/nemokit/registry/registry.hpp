#pragma once
// Pulls from and pushes to registries over the OCI distribution API (libcurl):
// manifest lists (the requested platform's image picked), Docker and OCI media
// types, bearer tokens from WWW-Authenticate and basic auth with credentials
// from the enroot credentials file (netrc format). Pulled blobs are checked by
// digest and kept by digest under <build_cache_dir>/registry.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "nemokit/oci/image.hpp"
#include "nemokit/oci/platform.hpp"

namespace nemokit::registry {

struct ImageReference {
  std::string registry;    // "registry-1.docker.io", "localhost:5000"
  std::string repository;  // "library/debian"
  std::string reference;   // tag or "sha256:..." digest
  std::string str() const;
};

// Docker's reference grammar: [registry/]repo[:tag][@digest]; "debian" is
// docker.io/library/debian:latest.
ImageReference parse_reference(const std::string& text);

struct PullOptions {
  std::filesystem::path credentials_file;  // empty: $ENROOT_CONFIG_PATH/.credentials or ~/.config/enroot/.credentials
  bool insecure_http = false;              // plain http (also for localhost / 127.0.0.1 registries)
  std::optional<oci::Platform> platform;   // the image picked from a manifest list; nullopt: the host's
};

// Pulls `ref` into an OCI image layout under the cache, one per platform, and returns its
// folder; the image is tagged "latest" there. An image of another platform than the one asked
// for (a single-platform manifest) is refused, naming both.
std::filesystem::path pull_image(const ImageReference& ref, const std::filesystem::path& build_cache_dir,
                                 const PullOptions& options = {});

struct PushOptions {
  std::filesystem::path credentials_file;  // as for pulls
  bool insecure_http = false;
  uint64_t chunk_size = 0;  // 0: each blob in one PUT; else PATCH chunks of this many bytes, then a PUT
};

struct PushResult {
  std::string manifest_digest;
  size_t blobs_uploaded = 0;
  size_t blobs_present = 0;  // already in the repository (HEAD answered 200): not sent again
  uint64_t bytes_uploaded = 0;
};

// Pushes `image` (one with a stored manifest: an OCI layout or archive, or a built image) to
// `dest`'s repository under its tag: each blob the registry lacks is uploaded, then the
// manifest, byte for byte, so the registry's digest is the image's. A docker save archive gets
// a Docker schema 2 manifest made from its files.
PushResult push_image(const oci::Image& image, const ImageReference& dest, const PushOptions& options = {});

}  // namespace nemokit::registry
