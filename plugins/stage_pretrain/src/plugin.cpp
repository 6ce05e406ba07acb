// The pretraining stage of nano3 and super3: data prep (raw text -> Megatron bin/idx) and the
// pretraining loop on the shared runtime.
#include <nemokit/plugin.hpp>
#include <nemokit/stage_artifacts.hpp>

#include "prep/data_prep.hpp"
#include "train/pretrain_loop.hpp"
#include "train/pretrain_options.hpp"

#include <nlohmann/json.hpp>

#include <iostream>
#include <stdexcept>

namespace {
using nlohmann::json;

class PretrainStage : public nemokit::sdk::Plugin {
 public:
  // A finished run publishes its model, naming the data artifact it trained on.
  int run(const nemokit::sdk::StageCall& call) override {
    const json config = json::parse(call.config_json);
    const int rc = nemokit::pretrain::run_pretraining(config, call.job_dir, call.host);
    if (rc == 0) nemokit::sdk::publish_trained_model(call, config);
    return rc;
  }

  // Writes the data to data.output (the folder `run` reads), else into the job folder, and
  // publishes it to the artifact store.
  int data_prep(const nemokit::sdk::StageCall& call) override {
    const json config = json::parse(call.config_json);
    std::filesystem::path out;
    int rc = nemokit::pretrain::run_pretrain_data_prep(nemokit::pretrain::data_table(config), call.job_dir / "data",
                                                       std::cerr, &out);
    if (rc == 0) nemokit::sdk::publish_data(call, config, out);
    return rc;
  }
};

}  // namespace

NEMOKIT_PLUGIN(PretrainStage)
