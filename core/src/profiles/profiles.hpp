#pragma once

#include <toml++/toml.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace nemokit {

// One execution profile of env.toml, after `extends` and ${env:...} are resolved.
struct Profile {
  std::string name;
  std::filesystem::path file;
  std::vector<std::string> chain;  // itself first, then what it extends
  toml::table values;              // only the known keys, types checked

  std::optional<std::string> str(const char* key) const;
  std::optional<int64_t> integer(const char* key) const;
  std::optional<bool> boolean(const char* key) const;
  std::vector<std::string> strings(const char* key) const;      // arrays of strings (mounts, ...)
  std::map<std::string, std::string> env_vars() const;
  std::string executor() const { return str("executor").value_or("local"); }
};

class ProfileSet {
 public:
  // $NEMOKIT_ENV when set; else the first env.toml walking up from `start`; else
  // ~/.config/nemokit/env.toml. nullopt when none exists (NEMOKIT_ENV naming a missing file is
  // an error).
  static std::optional<std::filesystem::path> locate(const std::filesystem::path& start);

  // Parses and checks every profile; errors (UserError) name the file, line and key.
  static ProfileSet load(const std::filesystem::path& file);
  static ProfileSet load_default();  // locate() from the current folder; empty set when none

  const std::filesystem::path& file() const { return file_; }
  std::vector<std::string> names() const;
  const Profile& get(const std::string& name) const;  // UserError listing the known names
  bool empty() const { return profiles_.empty(); }

  // Sections of env.toml that are not profiles.
  static bool is_reserved_section(const std::string& name);

  // `[artifacts] root` (${env:...} resolved, "~" not yet expanded); empty when not set.
  const std::string& artifacts_root() const { return artifacts_root_; }

 private:
  std::filesystem::path file_;
  std::string artifacts_root_;
  std::map<std::string, Profile> profiles_;
};

// True for environment variable names that hold secrets (KEY, TOKEN, SECRET, PASSWORD, ...):
// their values are never printed or written into scripts and logs.
bool is_secret_name(const std::string& name);

}  // namespace nemokit
