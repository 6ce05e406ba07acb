#pragma once
// Pulls from registries over the OCI distribution API (libcurl): manifest
// lists (linux/amd64 picked), Docker and OCI media types, bearer tokens from
// WWW-Authenticate and basic auth with credentials from the enroot
// credentials file (netrc format). Blobs are checked by digest and kept by
// digest under <build_cache_dir>/registry.
#include <filesystem>
#include <string>

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
};

// Pulls `ref` into an OCI image layout under the cache and returns its folder;
// the image is tagged "latest" there.
std::filesystem::path pull_image(const ImageReference& ref, const std::filesystem::path& build_cache_dir,
                                 const PullOptions& options = {});

}  // namespace nemokit::registry
