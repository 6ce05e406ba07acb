#include "rlhf/rlhf_stage.hpp"

#include "grpo/grpo_options.hpp"
#include "model/init_model.hpp"
#include "prep/rl_data_prep.hpp"
#include "rlhf/reward_model_env.hpp"

#include "nemokit/runtime/run/metrics_log.hpp"
#include "nemokit/runtime/run/parallel_options.hpp"
#include "nemokit/runtime/run/paths.hpp"
#include "nemokit/runtime/run/table_reader.hpp"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>

namespace nemokit::rl {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct RlhfOptions {
  fs::path path;    // an existing reward model to use (no training)
  fs::path output;  // where a trained one goes (default: checkpoint.dir/reward_model)
  int64_t pairs_per_task = 3;
  RewardTrainOptions train;
};

RlhfOptions read_options(const json& config, const GrpoOptions& grpo) {
  RlhfOptions o;
  o.output = grpo.checkpoint_dir / "reward_model";
  if (!config.contains("reward_model")) return o;
  rt::TableReader t(config["reward_model"], "reward_model");
  std::string path, output;
  t.string("path", path);
  t.string("output", output);
  if (!path.empty()) o.path = rt::expand_home(path);
  if (!output.empty()) o.output = rt::expand_home(output);
  t.integer("pairs_per_task", o.pairs_per_task, 1);
  t.integer("steps", o.train.steps, 0);
  t.integer("batch_pairs", o.train.batch_pairs, 1);
  t.number("lr", o.train.lr);
  t.number("weight_decay", o.train.weight_decay);
  t.number("grad_clip", o.train.grad_clip);
  t.integer("eval_interval", o.train.eval_interval, 0);
  int64_t seed = int64_t(o.train.seed);
  t.integer("seed", seed, 0);
  o.train.seed = uint64_t(seed);
  t.no_unknown_keys();
  if (o.train.lr <= 0) t.fail("lr", "must be positive");
  if (o.train.grad_clip <= 0) t.fail("grad_clip", "must be positive");
  return o;
}

// The split files, prepared now when data.output has none (as the GRPO loop does).
json split_files(const json& config, const fs::path& job_dir, const StageLog& host) {
  RlPrepConfig c = RlPrepConfig::from_config(config, job_dir);
  if (!fs::exists(c.output / "metadata.json")) {
    host.info("no prepared RL data in " + c.output.string() + ": preparing it now (nemokit data prep)");
    run_rl_data_prep(c, c.output, std::cerr);
  }
  std::ifstream in(c.output / "manifest.json");
  json m = json::parse(in, nullptr, false);
  for (const char* split : {"train", "val", "test"})
    if (!m.is_object() || !m.contains(split) || !m[split].is_string())
      throw std::invalid_argument((c.output / "manifest.json").string() + ": \"" + split + "\" must name the split's file");
  return m;
}

std::string accuracy_line(const char* what, const PairAccuracy& a) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s pair accuracy %.3f on %lld pairs (loss %.4f, margin %.3f)", what, a.accuracy,
                (long long)a.pairs, a.loss, a.margin);
  std::string line = buf;
  for (const auto& [k, v] : a.by_kind.items()) {
    std::snprintf(buf, sizeof buf, " | %s %.3f", k.c_str(), v.get<double>());
    line += buf;
  }
  return line;
}

}  // namespace

int run_rlhf(const json& config, const fs::path& job_dir, EnvironmentSet& envs, const StageLog& host) {
  GrpoOptions grpo = GrpoOptions::from_config(config);
  if (grpo.checkpoint_dir.empty()) grpo.checkpoint_dir = job_dir / "checkpoints";
  const RlhfOptions o = read_options(config, grpo);
  const sft::InitModel init = sft::resolve_init_model(config, job_dir);
  const rt::Tokenizer tok = rt::Tokenizer::load(init.tokenizer);
  const SequenceOf seq_of = reward_sequence(tok, grpo.enable_thinking);
  // Data parallel: every rank trains the same reward model (the same pairs, seed and order; no
  // rank waits on another's long phase inside a collective's timeout), rank 0 writes it and the
  // metrics; then GRPO runs over the same ranks.
  std::unique_ptr<rt::Communicator> comm = rt::open_job_communicator(config);
  const bool writer = comm->rank() == 0;

  std::shared_ptr<RewardModel> rm;
  const fs::path existing = !o.path.empty() ? o.path : o.output;
  if (!o.path.empty() || RewardModel::is_reward_model(o.output)) {
    rm = std::make_shared<RewardModel>(RewardModel::load(existing));
    if (writer) host.info("reward model: using " + existing.string() + " (not retrained)");
    comm->barrier();
  } else {
    comm->barrier();  // every rank has looked for a saved reward model before rank 0 writes one
    const json files = split_files(config, job_dir, host);
    const std::vector<json> train = read_tasks(files["train"].get<std::string>());
    const std::vector<json> val = read_tasks(files["val"].get<std::string>());
    const std::vector<json> test = read_tasks(files["test"].get<std::string>());
    // Only pairs the tasks' own environments order the same way (chosen rewarded above rejected).
    const PairChecker check = [&envs](const json& task, const std::string& response) {
      return envs.score(task, response).value;
    };
    const int per = int(o.pairs_per_task);
    const auto train_pairs = preference_pairs(train, per, check, files["train"].get<std::string>());
    const auto val_pairs = preference_pairs(val, per, check, files["val"].get<std::string>());
    const auto test_pairs = preference_pairs(test, per, check, files["test"].get<std::string>());
    rm = std::make_shared<RewardModel>(RewardModel::from_language_model(init.dir, o.train.seed));
    if (writer)
      host.info("reward model from " + init.dir.string() + ": " + std::to_string(train_pairs.size()) + " train, " +
              std::to_string(val_pairs.size()) + " val and " + std::to_string(test_pairs.size()) +
              " test preference pairs; " + std::to_string(o.train.steps) + " steps of " +
              std::to_string(o.train.batch_pairs) + " pairs");
    std::optional<rt::MetricsLog> metrics;
    if (writer) metrics.emplace(job_dir / "metrics.jsonl");
    const PairAccuracy before = pair_accuracy(*rm, val_pairs, seq_of, o.train.batch_pairs);
    if (writer) {
      metrics->write({{"phase", "reward_model"}, {"step", 0}, {"val", before.to_json()}});
      host.info(accuracy_line("reward model step 0: val", before));
    }
    double loss_sum = 0;
    int64_t loss_n = 0;
    train_reward_model(*rm, train_pairs, val_pairs, seq_of, o.train, [&](int64_t step, double loss, const PairAccuracy* val) {
      loss_sum += loss, ++loss_n;
      json m = {{"phase", "reward_model"}, {"step", step}, {"loss", loss}};
      if (!writer) return;
      if (val) {
        m["val"] = val->to_json();
        char buf[64];
        std::snprintf(buf, sizeof buf, "reward model step %lld: train loss %.4f,", (long long)step, loss_sum / double(loss_n));
        host.info(accuracy_line(buf, *val).insert(std::string(buf).size(), " val"));
        loss_sum = 0, loss_n = 0;
      }
      metrics->write(m);
    });
    if (writer) {
      const PairAccuracy held_out = pair_accuracy(*rm, test_pairs, seq_of, o.train.batch_pairs);
      metrics->write({{"phase", "reward_model"}, {"step", o.train.steps}, {"test", held_out.to_json()}});
      host.info(accuracy_line("reward model: held-out (test split)", held_out));
      rm->save(o.output);
      host.info("reward model saved to " + o.output.string());
    }
  }

  envs.add(std::make_unique<RewardModelEnvironment>(rm, seq_of), "the rlhf reward model " + existing.string());
  // Every task is scored by the reward model (plus the config's `always` environments).
  RewardFn reward_of = [&envs](const json& task, const std::string& response) {
    json t = task;
    t["environment"] = "reward_model";
    return envs.score(t, response);
  };
  return run_grpo(config, job_dir, reward_of, host, rollout, comm.get());
}

}  // namespace nemokit::rl
