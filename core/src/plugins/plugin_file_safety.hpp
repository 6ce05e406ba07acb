#pragma once

#include <filesystem>
#include <string>

namespace nemokit {

// Why loading the shared library at `path` would run code that someone else could have put there,
// or an empty string when it is safe. As Slurm refuses plugins on an insecure path, a plugin file
// or its folder must be owned by root or by the user running nemokit, and not writable by
// everyone: anyone could otherwise replace the code nemokit runs. Symlinks are followed (what
// matters is the file that would be loaded and the folder that holds it).
std::string insecure_plugin_path(const std::filesystem::path& path);

}  // namespace nemokit
