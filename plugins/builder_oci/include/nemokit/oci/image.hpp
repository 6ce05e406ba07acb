#pragma once
// An image located on disk: its config and its layers (bottom first), each
// layer with the descriptor values it must be checked against.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nemokit/oci/blob_store.hpp"
#include "nemokit/oci/platform.hpp"

namespace nemokit::oci {

struct Layer {
  BlobRange blob;
  std::string media_type;             // empty for docker save layers
  std::optional<std::string> digest;  // of the stored (maybe compressed) blob, when known
  std::optional<uint64_t> size;       // from the descriptor, when known
  std::string diff_id;                // sha256 of the uncompressed tar, from the config
};

struct Image {
  std::string source;  // what the user named, for messages
  std::string format;  // "oci", "oci-archive", "docker-archive"
  std::vector<std::string> tags;
  std::string config_digest;
  nlohmann::json config;
  std::vector<Layer> layers;  // bottom layer first
  std::shared_ptr<BlobStore> store;
  // The image manifest as stored (its bytes are what its digest names), for images that have
  // one (OCI layouts and archives); empty for a docker save archive, which has none.
  std::string manifest_text;
  std::string manifest_digest;
  std::string manifest_media_type;
};

// SRC forms: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:TAG], or a
// path whose format is detected (directory with oci-layout, or a tar holding an
// OCI layout or a docker save manifest.json). Manifest and config blobs are
// verified here; layer blobs when they are streamed. An index holding several images picks the
// one of `platform` (the host's when not given).
Image open_image(const std::string& spec, const std::optional<Platform>& platform = std::nullopt);

}  // namespace nemokit::oci
