// Supervised fine-tuning (full and LoRA) of nano3 and super3: chat data prep (the Nemotron 3
// template, answer-only loss masks, packing) and the fine-tuning loop on the shared runtime.
#include <nemokit/plugin.hpp>

#include "train/sft_loop.hpp"

#include <nlohmann/json.hpp>

namespace {
using nlohmann::json;

nemokit::sft::StageLog log_of(const nemokit::sdk::Host& host) {
  return {[host](const std::string& l) { host.info(l); }, [host](const std::string& l) { host.warn(l); }};
}

class SftStage : public nemokit::sdk::Plugin {
 public:
  int run(const nemokit::sdk::StageCall& call) override {
    return nemokit::sft::run_sft(json::parse(call.config_json), call.job_dir, log_of(call.host));
  }
  int data_prep(const nemokit::sdk::StageCall& call) override {
    auto out = nemokit::sft::prepare_sft_data(json::parse(call.config_json), call.job_dir, log_of(call.host));
    call.host.info("data artifact: " + (out / "metadata.json").string());
    return 0;
  }
};

}  // namespace

NEMOKIT_PLUGIN(SftStage)
