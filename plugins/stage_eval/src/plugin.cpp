// The eval stage of every family (nano3, super3, omni3 eval): perplexity on held-out text, the
// RL environments' accuracy on held-out tasks, greedy exact match on chat items (omni3's with
// images, video and audio), for one model or several side by side. The results are JOB/eval.json,
// a table on stdout, and an EvalResultsArtifact in the artifact store naming the models and data.
#include <nemokit/plugin.hpp>
#include <nemokit/stage_artifacts.hpp>

#include "eval_stage.hpp"

#include "nemokit/runtime/artifacts.hpp"
#include "nemokit/runtime/run/paths.hpp"

#include <nlohmann/json.hpp>

#include <set>

namespace {
using nlohmann::json;
namespace art = nemokit::rt::artifacts;

// The name the results are published under: the config's artifact.name, else FAMILY-eval-results.
std::string results_name(const nemokit::sdk::StageCall& call, const json& config) {
  if (config.contains("artifact") && config["artifact"].contains("name"))
    return art::model_artifact_name(nemokit::sdk::artifact_producer(call, "run", config));  // checks the name
  return call.family + "-" + call.stage + "-results";
}

void publish_results(const nemokit::sdk::StageCall& call, const json& config, const nemokit::eval::EvalRun& run) {
  if (!art::publishing_rank()) return;
  const art::Producer producer = nemokit::sdk::artifact_producer(call, "run", config);
  art::PublishRequest req;
  req.name = results_name(call, config);
  req.type = "EvalResultsArtifact";
  req.path = run.results_file;
  req.config = config;
  req.producer = producer.text();
  req.job_dir = call.job_dir;
  json models = json::array();
  for (const auto& m : run.models) {
    json j = m.to_json();
    j.erase("seconds");
    models.push_back(j);
  }
  req.fields = {{"models", models}};
  std::vector<std::filesystem::path> used;
  for (const auto& m : run.models) used.push_back(m.dir);
  if (config.contains("perplexity") && config["perplexity"].contains("data"))
    used.push_back(nemokit::rt::expand_home(config["perplexity"]["data"].get<std::string>()));
  std::set<std::string> seen;
  for (const auto& u : used)
    if (auto a = art::artifact_of_folder(producer, u); a && seen.insert(a->ref()).second) req.used.push_back(a->ref());
  const art::Artifact a = art::Store(art::store_root()).publish(req);
  call.host.info("published artifact " + a.ref() + " (" + a.type() + ") -> " + (a.dir / "metadata.json").string());
}

class EvalStage : public nemokit::sdk::Plugin {
 public:
  int run(const nemokit::sdk::StageCall& call) override {
    // One process measures every model; further ranks a profile may start have nothing to do.
    if (!art::publishing_rank()) {
      call.host.info("eval: rank 0 evaluates the models; this rank has nothing to do");
      return 0;
    }
    const json config = json::parse(call.config_json);
    const nemokit::eval::EvalRun run =
        nemokit::eval::run_eval(config, call.family, call.job_dir, [host = call.host](const std::string& l) { host.info(l); });
    nemokit::sdk::publish_or_warn(call, [&] { publish_results(call, config, run); });
    return 0;
  }
};

}  // namespace

NEMOKIT_PLUGIN(EvalStage)
