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

namespace nemokit::dockerfile {

struct BaseImage {
  nlohmann::json config;         // full image config
  std::vector<LayerRef> layers;  // bottom first
  std::string chain;             // identity for the layer cache ("scratch" or the config digest)
};

bool is_local_image_spec(const std::string& ref);

BaseImage load_base_image(const std::string& ref, LayerStore& store, const std::filesystem::path& build_cache_dir,
                          const Location& where);

// An empty linux/amd64 image config.
nlohmann::json empty_image_config();

}  // namespace nemokit::dockerfile
