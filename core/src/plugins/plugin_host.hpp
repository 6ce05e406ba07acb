#pragma once

#include <nemokit/plugin.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace boost::dll { class shared_library; }

namespace nemokit {

// A plugin file as read from disk without running its code.
struct PluginFile {
  std::filesystem::path path;
  std::string name, version, description;
  uint32_t abi_major = 0, abi_minor = 0;
  nlohmann::json manifest;
  std::string resources;   // the raw nemokit_resources section (see nemokit/resources.hpp)
  std::string error;       // empty when usable; else the one-line cause

  bool ok() const { return error.empty(); }
  std::optional<std::string> resource(const std::string& name) const;
  std::vector<std::string> resource_names() const;
};

struct StageEntry {
  std::string family, stage, substage;   // substage "" when the stage has none
  std::string image;                     // container image the stage runs in
  std::string description;
  std::map<std::string, std::string> configs;  // config name -> resource name
  bool in_pipe = true;                   // manifest "pipe": false keeps it out of `nemokit pipe`
  // manifest "tables": the config tables the stage reads ([model], [train], ...); a config with
  // any other is refused (check_config_tables). Empty: not declared, nothing checked.
  std::vector<std::string> tables;
  const PluginFile* plugin = nullptr;

  std::string triple() const { return family + " " + stage + (substage.empty() ? "" : " " + substage); }
};

struct ImageEntry {
  std::string name;
  std::string dockerfile;  // resource name of the Dockerfile
  const PluginFile* plugin = nullptr;
};

// A loaded plugin: holds the library for as long as anything made from it lives.
class LoadedPlugin {
 public:
  LoadedPlugin(std::shared_ptr<boost::dll::shared_library> lib, const nemokit_plugin_v1* d)
      : lib_(std::move(lib)), desc_(d) {}
  const nemokit_plugin_v1& descriptor() const { return *desc_; }
  // Calls into the plugin; returns its exit code and fills `error` with its one-line cause.
  int invoke(const nemokit_call_v1& call, std::string& error) const;

 private:
  std::shared_ptr<boost::dll::shared_library> lib_;
  const nemokit_plugin_v1* desc_;
};

class PluginRegistry {
 public:
  // Reads every *.so in the folders (in order; missing folders are skipped). Never throws for a
  // bad plugin: its problem is recorded and the others still register.
  static PluginRegistry discover(const std::vector<std::filesystem::path>& dirs);

  // <prefix>/lib/nemokit/plugins (prefix: the folder above the executable's bin/), then the
  // folders of NEMOKIT_PLUGIN_PATH.
  static std::vector<std::filesystem::path> default_search_path();

  const std::vector<std::unique_ptr<PluginFile>>& plugins() const { return plugins_; }
  const std::vector<std::string>& problems() const { return problems_; }
  const std::vector<StageEntry>& stages() const { return stages_; }
  const std::vector<ImageEntry>& images() const { return images_; }

  // Throws UserError with the known triples when nothing serves it, or with both files when two do.
  const StageEntry& stage(const std::string& family, const std::string& stage, const std::string& substage) const;
  const ImageEntry* image(const std::string& name) const;
  const PluginFile* command_provider(const std::string& command) const;
  const PluginFile* builder() const;
  const PluginFile* plugin(const std::string& name) const;

  // Loads the library (RTLD_LOCAL) and checks its descriptor against the manifest.
  LoadedPlugin load(const PluginFile& plugin) const;

 private:
  void add(std::unique_ptr<PluginFile> p);
  std::vector<std::unique_ptr<PluginFile>> plugins_;
  std::vector<std::string> problems_;
  std::vector<StageEntry> stages_;
  std::vector<ImageEntry> images_;
  std::map<std::string, std::string> ambiguous_;  // triple -> "a.so and b.so"
  std::map<std::string, const PluginFile*> commands_;
};

// Reads one plugin file (manifest, resources, entry point) without loading it.
std::unique_ptr<PluginFile> inspect_plugin_file(const std::filesystem::path& path);

}  // namespace nemokit
