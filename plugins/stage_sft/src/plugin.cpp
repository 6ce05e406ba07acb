// Supervised fine-tuning (full and LoRA) of nano3 and super3: chat data prep (the Nemotron 3
// template, answer-only loss masks, packing) and the fine-tuning loop on the shared runtime.
#include <nemokit/plugin.hpp>

#include "train/sft_loop.hpp"

#include <nlohmann/json.hpp>

#include <stdexcept>

namespace {
using nlohmann::json;

nemokit::sft::StageLog log_of(const nemokit::sdk::Host& host) {
  return {[host](const std::string& l) { host.info(l); }, [host](const std::string& l) { host.warn(l); }};
}

// omni3 trains image and audio encoders beside the language model; this stage's loop is the
// language-only one, so it refuses omni3 rather than silently dropping the encoders.
void require_language_family(const nemokit::sdk::StageCall& call) {
  if (call.family == "omni3")
    throw std::invalid_argument("omni3 sft: the image and audio encoders are not in this build; nano3 and super3 SFT are");
}

class SftStage : public nemokit::sdk::Plugin {
 public:
  int run(const nemokit::sdk::StageCall& call) override {
    require_language_family(call);
    return nemokit::sft::run_sft(json::parse(call.config_json), call.job_dir, log_of(call.host));
  }
  int data_prep(const nemokit::sdk::StageCall& call) override {
    require_language_family(call);
    auto out = nemokit::sft::prepare_sft_data(json::parse(call.config_json), call.job_dir, log_of(call.host));
    call.host.info("data artifact: " + (out / "metadata.json").string());
    return 0;
  }
};

}  // namespace

NEMOKIT_PLUGIN(SftStage)
