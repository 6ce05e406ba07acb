// Supervised fine-tuning (full and LoRA) of nano3 and super3: chat data prep (the Nemotron 3
// template, answer-only loss masks, packing) and the fine-tuning loop on the shared runtime.
#include <nemokit/plugin.hpp>
#include <nemokit/stage_artifacts.hpp>

#include "model/init_model.hpp"
#include "train/sft_loop.hpp"

#include <nlohmann/json.hpp>

namespace {
using nlohmann::json;

nemokit::sft::StageLog log_of(const nemokit::sdk::Host& host) {
  return {[host](const std::string& l) { host.info(l); }, [host](const std::string& l) { host.warn(l); }};
}

class SftStage : public nemokit::sdk::Plugin {
 public:
  // A finished run publishes its model, naming the packed data and the model it started from.
  int run(const nemokit::sdk::StageCall& call) override {
    const json config = json::parse(call.config_json);
    const int rc = nemokit::sft::run_sft(config, call.job_dir, log_of(call.host));
    if (rc == 0) nemokit::sdk::publish_trained_model(call, config, {nemokit::sft::resolve_init_model(config, call.job_dir).dir});
    return rc;
  }
  int data_prep(const nemokit::sdk::StageCall& call) override {
    const json config = json::parse(call.config_json);
    auto out = nemokit::sft::prepare_sft_data(config, call.job_dir, log_of(call.host));
    nemokit::sdk::publish_data(call, config, out);
    return 0;
  }
};

}  // namespace

NEMOKIT_PLUGIN(SftStage)
