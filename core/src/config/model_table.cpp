#include "config/model_table.hpp"

#include "config/config.hpp"
#include "util/error.hpp"

#include "nemokit/runtime/config.hpp"

#include <optional>

namespace nemokit {

namespace {

// The recipe's architecture, or nothing when [model] names a checkpoint instead (no layer stack).
std::optional<rt::NemotronHConfig> recipe_model(const toml::table& config, const std::string& where) {
  const toml::table* model = config["model"].as_table();
  if (!model || (!model->contains("hybrid_override_pattern") && !model->contains("layers_block_type") &&
                 !model->contains("layer_types")))
    return std::nullopt;
  try {
    return rt::NemotronHConfig::from_recipe_table(toml_to_json(*model), where + " [model]");
  } catch (const std::runtime_error& e) {
    throw UserError(e.what());
  }
}

}  // namespace

void check_model_table(const toml::table& config, const std::string& where) { recipe_model(config, where); }

void check_model_fits_here(const toml::table& config, const std::string& where) {
  const auto model = recipe_model(config, where);
  if (!model) return;
  try {
    model->check_fits_in_memory(where + " [model]");
  } catch (const std::runtime_error& e) {
    throw UserError(e.what());
  }
}

}  // namespace nemokit
