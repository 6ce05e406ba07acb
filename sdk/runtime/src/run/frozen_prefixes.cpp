#include "nemokit/runtime/run/frozen_prefixes.hpp"

#include <stdexcept>

namespace nemokit::rt {

void set_frozen_prefixes(NemotronH& model, const std::vector<std::string>& prefixes, bool frozen, const std::string& key) {
  for (const std::string& prefix : prefixes) {
    bool any = false;
    for (Parameter* p : model.parameters()) any |= p->name.rfind(prefix, 0) == 0;
    if (!any)
      throw std::invalid_argument(key + ": \"" + prefix +
                                  "\" is the prefix of no parameter (e.g. \"backbone.\", \"vision_model.\", \"vision_projector.\")");
    model.set_frozen(prefix, frozen);
  }
}

}  // namespace nemokit::rt
