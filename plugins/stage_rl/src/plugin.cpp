// Reinforcement learning: GRPO for nano3/super3 and omni3 text/vision, MPO for omni3.
#include <nemokit/plugin.hpp>

#include <stdexcept>

namespace {

class RlStage : public nemokit::sdk::Plugin {
 public:
  int run(const nemokit::sdk::StageCall& call) override {
    std::string what = call.substage.empty() ? "RL" : "RL " + call.substage;
    throw std::runtime_error(what + " training for " + call.family + " is not implemented in this version");
  }
  int data_prep(const nemokit::sdk::StageCall& call) override {
    throw std::runtime_error("RL data prep for " + call.family + " is not implemented in this version");
  }
};

}  // namespace

NEMOKIT_PLUGIN(RlStage)
