#pragma once

#include <filesystem>

namespace nemokit::cli {

// The image every stage Dockerfile builds FROM, made by the core from this nemokit's install.
inline constexpr const char* kBaseImageName = "nemokit-base";

struct BaseImageBuild {
  std::filesystem::path dockerfile;  // <prefix>/share/nemokit/containers/Dockerfile.base
  std::filesystem::path context;     // BUILD_CACHE_DIR/base-context: nemokit.deb, debian-packages.txt
};

// nemokit-base's Dockerfile and context from the install this program runs from (<prefix> is the
// folder above its bin/). The context holds the install as a Debian package, nemokit.deb (the
// program, its runtime and plugins under /usr, depending on the packages recorded at install
// time), and that package list; they are written when `write` is set (not for --dry-run). Throws
// UserError naming the first file the install lacks: a build tree is not an install
// (`cmake --install BUILD --prefix DIR` makes one).
BaseImageBuild installed_base_image(const std::filesystem::path& build_cache_dir, bool write);

}  // namespace nemokit::cli
