#pragma once
// Layers of images being built, under <build_cache_dir>/build:
//   blobs/sha256/<hex>   layer blobs as they go into the OCI layout
//   layers/<diff hex>/   each layer unpacked in overlayfs form (whiteouts are
//                        0:0 character devices, opaque folders carry
//                        trusted.overlay.opaque=y), ready to be a lowerdir
//   tmp/                 work folders of running steps
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "nemokit/oci/image.hpp"

namespace nemokit::dockerfile {

struct LayerRef {
  std::string diff_id;     // sha256 of the uncompressed tar
  std::string digest;      // sha256 of the blob
  std::string media_type;  // OCI layer media type of the blob
  uint64_t size = 0;       // blob bytes
};

class LayerStore {
 public:
  explicit LayerStore(const std::filesystem::path& build_cache_dir);

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path layer_dir(const LayerRef& l) const;
  std::filesystem::path blob_path(const std::string& digest) const;
  bool has(const LayerRef& l) const;

  // Unpacks a base image layer (checked against its digests while read) and
  // keeps its blob, unless both are here already.
  LayerRef import(const oci::Layer& layer, const std::string& label);

  // A fresh empty folder under tmp/ (removed by the caller or the next clean()).
  std::filesystem::path temp_dir(const std::string& hint);

  // Turns the upper folder of a finished step into a layer: the tar (with
  // .wh. whiteouts) is written as a zstd blob and the folder moves to
  // layers/. Returns nullopt when the step changed nothing.
  std::optional<LayerRef> commit(const std::filesystem::path& upper);

  // An empty folder to put under every overlay (overlayfs needs a lowerdir).
  std::filesystem::path empty_dir() const;

 private:
  std::filesystem::path root_;
};

// Writes the tar of an overlayfs upper folder to `blob` (zstd) and returns the
// digests; `entries` counts what went in.
LayerRef write_layer_blob(const std::filesystem::path& upper, const std::filesystem::path& blob, uint64_t& entries);

}  // namespace nemokit::dockerfile
