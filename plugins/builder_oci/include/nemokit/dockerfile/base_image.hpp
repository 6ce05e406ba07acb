#pragma once
// What FROM (and COPY --from=IMAGE) names: scratch, a local image (oci:,
// oci-archive:, docker-archive:), the tag of an image built here before
// (<build_cache_dir>/oci/<tag>), or a registry reference, pulled into the
// cache. Its layers are unpacked into the layer store.
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nemokit/dockerfile/dockerfile.hpp"
#include "nemokit/dockerfile/layer_store.hpp"
#include "nemokit/oci/platform.hpp"

namespace nemokit::dockerfile {

struct BaseImage {
  nlohmann::json config;         // full image config
  std::vector<LayerRef> layers;  // bottom first
  std::string chain;             // identity for the layer cache ("scratch" or the config digest)
};

bool is_local_image_spec(const std::string& ref);

// `platform` picks the image of a manifest list or index; a base that records another platform
// in its config is refused at `where`, naming both.
BaseImage load_base_image(const std::string& ref, LayerStore& store, const std::filesystem::path& build_cache_dir,
                          const Location& where, const oci::Platform& platform);

// An empty image config of `platform`.
nlohmann::json empty_image_config(const oci::Platform& platform);

}  // namespace nemokit::dockerfile
