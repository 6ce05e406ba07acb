#pragma once
// Environments from third-party plugins (nemokit/reward.h). A plugin file is read without running
// its code first: the reward ABI major from its entry alias name, the manifest from its ELF
// section. Only a plugin that passes is loaded (RTLD_LOCAL) and its descriptor checked against
// the manifest.

#include "env/environment.hpp"

#include <filesystem>
#include <functional>

namespace nemokit::rl {

struct EnvironmentPluginFile {
  std::filesystem::path path;
  std::string name, version;
  uint32_t abi_major = 0, abi_minor = 0;
  std::vector<std::string> environments;  // from the manifest
};

// Throws std::invalid_argument "<path>: <cause>" (not a plugin, other ABI, bad manifest).
EnvironmentPluginFile inspect_environment_plugin(const std::filesystem::path& path);

// Loads the plugin and makes its environments; settings_of(name) gives each one's settings.
std::vector<std::unique_ptr<Environment>> load_environment_plugin(
    const EnvironmentPluginFile& file, const std::function<nlohmann::json(const std::string&)>& settings_of);

// The plugin files to load: each entry of `plugins` (a .so file or a folder of them), then the
// folders of NEMOKIT_ENVIRONMENT_PATH, then lib/nemokit/environments beside the plugin folder
// this code was installed in. A listed path that does not exist is an error naming it.
std::vector<std::filesystem::path> environment_plugin_files(const nlohmann::json& plugins);

}  // namespace nemokit::rl
