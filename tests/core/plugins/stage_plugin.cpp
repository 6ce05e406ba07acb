// A minimal valid stage plugin; the manifest it is built with decides what it serves. Used for
// the duplicate-triple and newer-minor cases, and by objcopy as the base of a corrupt manifest.
#include <nemokit/plugin.hpp>

#include <cstdio>

namespace {
class TestStage : public nemokit::sdk::Plugin {
 public:
  int run(const nemokit::sdk::StageCall& call) override {
    std::printf("test stage %s ran %s %s\n", NEMOKIT_PLUGIN_NAME, call.family.c_str(), call.stage.c_str());
    return 0;
  }
};
}  // namespace

NEMOKIT_PLUGIN(TestStage)
