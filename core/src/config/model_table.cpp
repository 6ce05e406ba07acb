#include "config/model_table.hpp"

#include "config/config.hpp"
#include "util/error.hpp"

#include "nemokit/runtime/config.hpp"

namespace nemokit {

void check_model_table(const toml::table& config, const std::string& where) {
  const toml::table* model = config["model"].as_table();
  if (!model) return;
  // The keys that define a layer stack; without one, [model] points at a checkpoint.
  if (!model->contains("hybrid_override_pattern") && !model->contains("layers_block_type") &&
      !model->contains("layer_types"))
    return;
  try {
    rt::NemotronHConfig::from_recipe_table(toml_to_json(*model), where + " [model]");
  } catch (const std::runtime_error& e) {
    throw UserError(e.what());
  }
}

}  // namespace nemokit
