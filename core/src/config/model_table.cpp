#include "config/model_table.hpp"

#include "config/config.hpp"
#include "util/error.hpp"

#include "nemokit/runtime/config.hpp"

namespace nemokit {

namespace {

// The [model] table when it defines a layer stack; without one, [model] points at a checkpoint.
const toml::table* architecture_table(const toml::table& config) {
  const toml::table* model = config["model"].as_table();
  if (!model) return nullptr;
  if (!model->contains("hybrid_override_pattern") && !model->contains("layers_block_type") &&
      !model->contains("layer_types"))
    return nullptr;
  return model;
}

}  // namespace

void check_model_table(const toml::table& config, const std::string& where) {
  const toml::table* model = architecture_table(config);
  if (!model) return;
  try {
    rt::NemotronHConfig::from_recipe_table(toml_to_json(*model), where + " [model]");
  } catch (const std::runtime_error& e) {
    throw UserError(e.what());
  }
}

void check_model_fits_here(const toml::table& config, const std::string& where) {
  const toml::table* model = architecture_table(config);
  if (!model) return;
  try {
    rt::NemotronHConfig::from_recipe_table(toml_to_json(*model), where + " [model]")
        .check_fits_in_memory(where + " [model]");
  } catch (const std::runtime_error& e) {
    throw UserError(e.what());
  }
}

}  // namespace nemokit
