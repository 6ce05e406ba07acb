#pragma once
// Paths as configs and profiles write them.

#include <filesystem>
#include <string>

namespace nemokit::rt {

// "~" and "~/x" -> $HOME and $HOME/x (the shell's meaning, which TOML strings do not get);
// other paths unchanged.
std::filesystem::path expand_home(const std::string& path);

// The one rule for the build cache folder (where `nemokit build` puts images and where runs and
// `nemokit image`/`exec` find them): `configured` (a profile's build_cache_dir, "~" expanded) when
// not empty, else $NEMOKIT_BUILD_CACHE_DIR, else $HOME/.cache/nemokit (/tmp/.cache/nemokit
// without HOME); made absolute.
std::filesystem::path build_cache_dir(const std::string& configured = {});

}  // namespace nemokit::rt
