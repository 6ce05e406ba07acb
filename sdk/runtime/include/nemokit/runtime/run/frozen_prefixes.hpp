#pragma once
// Config lists of parameter-name prefixes that freeze or unfreeze parts of a model
// ("backbone.", "vision_model.", "vision_projector."), as every stage's [train] reads them.

#include "nemokit/runtime/model.hpp"

#include <string>
#include <vector>

namespace nemokit::rt {

// Sets every parameter under each prefix frozen (or trainable). A prefix that names no
// parameter throws std::invalid_argument naming `key` (e.g. "train.frozen") and the prefix.
void set_frozen_prefixes(NemotronH& model, const std::vector<std::string>& prefixes, bool frozen, const std::string& key);

}  // namespace nemokit::rt
