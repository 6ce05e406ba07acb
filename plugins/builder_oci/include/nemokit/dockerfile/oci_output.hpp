#pragma once
// A built image written out: an OCI image layout (the blobs are hard links to
// the layer store's), and from it an oci-archive or a docker-archive.
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nemokit/dockerfile/layer_store.hpp"

namespace nemokit::dockerfile {

struct BuiltImage {
  std::string tag;
  nlohmann::json config;  // the full image config (architecture, os, config, rootfs, history)
  std::vector<LayerRef> layers;
};

struct LayoutResult {
  std::filesystem::path dir;
  std::string manifest_digest;
  std::string config_digest;
};

// Writes (or refreshes) the layout at `dir` with the image tagged `tag`;
// index.json appears atomically and blobs no longer referenced are removed.
LayoutResult write_oci_layout(const LayerStore& store, const BuiltImage& image, const std::filesystem::path& dir);

// The layout folder as one uncompressed tar ("oci-archive:FILE").
void write_oci_archive(const std::filesystem::path& layout_dir, const std::filesystem::path& file);

// A `docker load`-able archive: the layout plus manifest.json pointing into blobs/.
void write_docker_archive(const LayoutResult& layout, const BuiltImage& image, const std::filesystem::path& file);

}  // namespace nemokit::dockerfile
