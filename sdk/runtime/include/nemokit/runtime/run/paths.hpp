#pragma once
// Paths as configs write them.

#include <filesystem>
#include <string>

namespace nemokit::rt {

// "~" and "~/x" -> $HOME and $HOME/x (the shell's meaning, which TOML strings do not get);
// other paths unchanged.
std::filesystem::path expand_home(const std::string& path);

}  // namespace nemokit::rt
