// Reinforcement learning: GRPO for nano3 (`rl`) and super3 (`rl rlvr`) over the verifiable
// environments, super3 `rl rlhf` (a reward model, then GRPO against it); data prep of the task
// splits; super3 `rl swe1`/`rl swe2` (GRPO over the code-execution environment; swe2's episodes
// use the sandbox's tools, src/swe); omni3 `rl mpo` (preference pairs from the SFT model's own
// answers, MPO against the frozen starting model, src/omni), `rl text` and `rl vision` (GRPO,
// the vision tasks' images through the model's encoder).
#include <nemokit/plugin.hpp>
#include <nemokit/stage_artifacts.hpp>

#include "env/environment.hpp"
#include "grpo/grpo_loop.hpp"
#include "model/init_model.hpp"
#include "omni/mpo_loop.hpp"
#include "omni/mpo_pairs.hpp"
#include "swe/swe_stage.hpp"
#include "rlhf/rlhf_stage.hpp"

#include <nlohmann/json.hpp>

#include <stdexcept>

namespace {
using nlohmann::json;

nemokit::rl::StageLog log_of(const nemokit::sdk::Host& host) {
  return {[host](const std::string& l) { host.info(l); }, [host](const std::string& l) { host.warn(l); }};
}

class RlStage : public nemokit::sdk::Plugin {
 public:
  // A finished run publishes its model, naming its task splits and the model it started from.
  int run(const nemokit::sdk::StageCall& call) override {
    const json config = json::parse(call.config_json);
    const int rc = train(call, config);
    if (rc == 0) nemokit::sdk::publish_trained_model(call, config, {nemokit::sft::resolve_init_model(config, call.job_dir).dir});
    return rc;
  }

 private:
  int train(const nemokit::sdk::StageCall& call, const json& config) {
    auto envs = nemokit::rl::EnvironmentSet::load(config.contains("environments") ? config["environments"] : json::object());
    if (call.family == "super3" && call.substage == "rlhf") return nemokit::rl::run_rlhf(config, call.job_dir, envs, log_of(call.host));
    nemokit::rl::RewardFn reward_of = [&envs](const json& task, const std::string& response) {
      return envs.score(task, response);
    };
    if (call.family == "super3" && call.substage == "swe2")  // multi-turn episodes with the sandbox's tools
      return nemokit::rl::swe::run_swe2(config, call.job_dir, envs, reward_of, log_of(call.host));
    if (call.family == "omni3" && call.substage == "mpo") return nemokit::rl::run_mpo(config, call.job_dir, reward_of, log_of(call.host));
    return nemokit::rl::run_grpo(config, call.job_dir, reward_of, log_of(call.host));
  }

 public:
  int data_prep(const nemokit::sdk::StageCall& call) override {
    json config = json::parse(call.config_json);
    if (call.family == "omni3" && call.substage == "mpo") {  // pairs from the model's own answers
      auto envs = nemokit::rl::EnvironmentSet::load(config.contains("environments") ? config["environments"] : json::object());
      nemokit::rl::RewardFn reward_of = [&envs](const json& task, const std::string& response) {
        return envs.score(task, response);
      };
      auto out = nemokit::rl::prepare_mpo_data(config, call.job_dir, reward_of, log_of(call.host));
      nemokit::sdk::publish_data(call, config, out);
      return 0;
    }
    auto out = nemokit::rl::prepare_rl_data(config, call.job_dir, log_of(call.host));
    nemokit::sdk::publish_data(call, config, out);
    return 0;
  }
};

}  // namespace

NEMOKIT_PLUGIN(RlStage)
