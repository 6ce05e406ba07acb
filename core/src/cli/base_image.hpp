#pragma once

#include <filesystem>

namespace nemokit::cli {

// The image every stage Dockerfile builds FROM, made by the core from this nemokit's install.
inline constexpr const char* kBaseImageName = "nemokit-base";

struct BaseImageBuild {
  std::filesystem::path dockerfile;  // <prefix>/share/nemokit/containers/Dockerfile.base
  std::filesystem::path context;     // <prefix>: bin/nemokit, lib/, the recorded package list
};

// nemokit-base's Dockerfile and context in the install this program runs from (<prefix> is the
// folder above its bin/). Throws UserError naming the first file it lacks: a build tree is not an
// install (`cmake --install BUILD --prefix DIR` makes one).
BaseImageBuild installed_base_image();

}  // namespace nemokit::cli
