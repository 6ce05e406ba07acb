#pragma once

#include "plugins/plugin_host.hpp"

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include <filesystem>
#include <string>
#include <vector>

namespace nemokit {

// A recipe config after inheritance, overrides and interpolation. Values keep the place they came
// from (file and line) so that later errors can name it.
struct ResolvedConfig {
  toml::table table;
  std::vector<std::string> chain;  // where each layer came from, base first
};

// `ref` is a config name the stage ships (`tiny`) or a user's file (has a `/` or ends in .toml,
// .yaml or .yml; YAML files as yaml_config.hpp reads them).
// `defaults = ["name" | "path.toml", ...]` in a config inherits from those, in order, with cycles
// detected. Throws UserError naming the file, line and key.
ResolvedConfig load_stage_config(const StageEntry& stage, const std::string& ref);

// Applies `key.sub=value` (existing keys only, value checked against the type already there) and
// `+key.sub=value` (adds a key). An execution key (run.partition, ...: execution_keys()) may be
// set without the + on any stage. Throws UserError naming the override and the key.
void apply_overrides(toml::table& config, const std::vector<std::string>& overrides);

// Throws UserError for a top-level table the stage does not read (StageEntry::tables, from its
// manifest), naming it, the tables the stage reads and the closest: `+evl.max_tasks=5` or a
// user config's misspelt [trian] would otherwise be carried along and never used.
void check_config_tables(const StageEntry& stage, const toml::table& config, const std::string& where);

// Replaces `${env:NAME,default}` (and the recipes' `${oc.env:NAME,default}`) in every string value;
// an unset variable without a default, or any other `${...}` but `${art:...}`, is an error naming
// the key. `where` names the file for messages.
void interpolate_env(toml::table& config, const std::string& where);

nlohmann::json toml_to_json(const toml::table& t);
std::string to_toml_text(const toml::table& t);

}  // namespace nemokit
