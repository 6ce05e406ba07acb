// Supervised fine-tuning (full and LoRA) for nano3, super3 and omni3.
#include <nemokit/plugin.hpp>

#include <stdexcept>

namespace {

class SftStage : public nemokit::sdk::Plugin {
 public:
  int run(const nemokit::sdk::StageCall& call) override {
    throw std::runtime_error("SFT training for " + call.family + " is not implemented in this version");
  }
  int data_prep(const nemokit::sdk::StageCall& call) override {
    throw std::runtime_error("SFT data prep for " + call.family + " is not implemented in this version");
  }
};

}  // namespace

NEMOKIT_PLUGIN(SftStage)
