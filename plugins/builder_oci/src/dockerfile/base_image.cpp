#include "nemokit/dockerfile/base_image.hpp"

#include "nemokit/oci/error.hpp"
#include "nemokit/oci/image.hpp"
#include "nemokit/registry/registry.hpp"

namespace nemokit::dockerfile {

using nlohmann::json;

json empty_image_config(const oci::Platform& platform) {
  json config = platform.to_json();
  config["config"] = json::object();
  config["rootfs"] = {{"type", "layers"}, {"diff_ids", json::array()}};
  config["history"] = json::array();
  return config;
}

bool is_local_image_spec(const std::string& ref) {
  return ref.rfind("oci:", 0) == 0 || ref.rfind("oci-archive:", 0) == 0 || ref.rfind("docker-archive:", 0) == 0;
}

BaseImage load_base_image(const std::string& ref, LayerStore& store, const std::filesystem::path& build_cache_dir,
                          const Location& where, const oci::Platform& platform) {
  BaseImage base;
  if (ref == "scratch") {
    base.config = empty_image_config(platform);
    // Docker and buildah give an image built FROM scratch the default PATH, so that the
    // programs copied into it are found by name.
    base.config["config"]["Env"] = json::array({"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"});
    base.chain = "scratch";
    return base;
  }
  oci::Image image;
  // A bare name ("nemokit-base") that was never built here is most often a missing local
  // build, not a Docker Hub image: say how to make it beside the registry's answer.
  const bool bare_name = ref.find_first_of("/:@") == std::string::npos;
  auto hint = [&] {
    if (!bare_name) return std::string();
    return " (no image " + ref + " was built into " + (build_cache_dir / "oci").string() +
           " either; build it first, e.g. `nemokit build -f containers/Dockerfile.base --tag nemokit-base`, "
           "or choose another base with --build-arg BASE_IMAGE=REF)";
  };
  try {
    // An image built here earlier, by its tag (e.g. "nemokit-base"), before any registry.
    std::filesystem::path built = build_cache_dir / "oci" / ref;
    if (is_local_image_spec(ref)) {
      image = oci::open_image(ref, platform);
    } else if (bare_name && std::filesystem::exists(built / "index.json")) {
      image = oci::open_image("oci:" + built.string() + ":" + ref, platform);
    } else {
      registry::ImageReference r = registry::parse_reference(ref);
      registry::PullOptions options;
      options.platform = platform;
      std::filesystem::path layout = registry::pull_image(r, build_cache_dir, options);
      image = oci::open_image("oci:" + layout.string() + ":latest", platform);
    }
  } catch (const std::exception& e) {  // oci::Error, BuildError, and file errors alike
    throw BuildError(where.str() + ": FROM " + ref + ": " + e.what() + hint());
  }
  // Its layers' programs are for the platform its config names: built on as another platform,
  // the image would carry the wrong label (and its RUN steps fail with "exec format error").
  if (std::optional<oci::Platform> has = oci::platform_of_config(image.config); has && !(*has == platform))
    throw BuildError(where.str() + ": FROM " + ref + ": the image is " + has->str() + ", not " + platform.str() +
                     " (choose the platform with --platform or FROM --platform=, or a " + platform.str() + " image)");
  base.config = image.config;
  if (!base.config.contains("config") || !base.config["config"].is_object()) base.config["config"] = json::object();
  if (!base.config.contains("history") || !base.config["history"].is_array()) base.config["history"] = json::array();
  for (size_t i = 0; i < image.layers.size(); ++i) {
    std::string label = ref + ": layer " + std::to_string(i + 1) + "/" + std::to_string(image.layers.size());
    try {
      base.layers.push_back(store.import(image.layers[i], label));
    } catch (const oci::Error& e) {
      throw BuildError(where.str() + ": " + e.what());
    }
  }
  base.chain = image.config_digest;
  return base;
}

}  // namespace nemokit::dockerfile
