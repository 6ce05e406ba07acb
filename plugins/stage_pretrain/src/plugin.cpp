// The pretraining stage of nano3 and super3: data prep (raw text -> Megatron bin/idx) and the
// pretraining loop on the shared runtime.
#include <nemokit/plugin.hpp>

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
  int run(const nemokit::sdk::StageCall& call) override {
    return nemokit::pretrain::run_pretraining(json::parse(call.config_json), call.job_dir, call.host);
  }

  // Writes the data artifact to data.output (the folder `run` reads), else into the job folder.
  int data_prep(const nemokit::sdk::StageCall& call) override {
    const json config = json::parse(call.config_json);
    std::filesystem::path out;
    int rc = nemokit::pretrain::run_pretrain_data_prep(nemokit::pretrain::data_table(config), call.job_dir / "data",
                                                       std::cerr, &out);
    if (rc == 0) call.host.info("data artifact: " + (out / "metadata.json").string());
    return rc;
  }
};

}  // namespace

NEMOKIT_PLUGIN(PretrainStage)
