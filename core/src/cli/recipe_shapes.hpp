// The recipes' command shapes (`nemotron FAMILY ...`) read as nemokit's own, so a recipe user's
// commands work as they are written:
//   FAMILY STAGE [SUBSTAGE] ...        ->  run FAMILY STAGE [SUBSTAGE] ...
//   FAMILY data prep STAGE [SUB] ...   ->  data prep FAMILY STAGE [SUB] ...
//   FAMILY build STAGE [SUB] ...       ->  build IMAGE ...   (the image the stage runs in)
//   FAMILY pipe ...                    ->  pipe FAMILY ...
//   FAMILY model eval A [B ...] ...    ->  model eval --family FAMILY A [B ...] ...
#pragma once

#include "plugins/plugin_host.hpp"

#include <string>
#include <vector>

namespace nemokit::cli {

// `argv` in nemokit's shape when its first word (options before it stay where they are) is a
// family some plugin ships; unchanged otherwise. Throws UserError for `FAMILY build` of a stage
// that does not exist, naming the stages the family has, and for a first word that is no command
// but close to a family ("nanoo3"), naming the family.
std::vector<std::string> from_recipe_shape(const std::vector<std::string>& argv, const PluginRegistry& registry,
                                           const std::vector<std::string>& commands);

}  // namespace nemokit::cli
