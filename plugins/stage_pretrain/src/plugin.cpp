// The pretraining stage of nano3 and super3: data prep (raw text -> Megatron bin/idx) and the
// pretraining loop on the shared runtime.
#include <nemokit/plugin.hpp>

#include <stdexcept>

namespace {

class PretrainStage : public nemokit::sdk::Plugin {
 public:
  int run(const nemokit::sdk::StageCall& call) override {
    throw std::runtime_error("the pretraining loop for " + call.family +
                             " is not implemented in this version (the config resolves; see --dry-run)");
  }
  int data_prep(const nemokit::sdk::StageCall& call) override {
    throw std::runtime_error("pretraining data prep for " + call.family + " is not implemented in this version");
  }
};

}  // namespace

NEMOKIT_PLUGIN(PretrainStage)
