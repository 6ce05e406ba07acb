#include "eval_stage.hpp"

#include "chat_accuracy.hpp"
#include "eval_options.hpp"
#include "perplexity.hpp"
#include "task_accuracy.hpp"

#include "env/environment.hpp"
#include "model/init_model.hpp"

#include "nemokit/runtime/atomic_file.hpp"
#include "nemokit/runtime/checkpoint.hpp"
#include "nemokit/runtime/progress.hpp"
#include "nemokit/runtime/tokenizer.hpp"

#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>

namespace nemokit::eval {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string summary(const std::vector<Row>& rows) {
  if (rows.empty()) return "nothing to measure";
  char buf[128];
  std::snprintf(buf, sizeof buf, "%s %.4g (%lld %s)", rows[0].label.c_str(), rows[0].value, (long long)rows[0].count,
                rows[0].unit.c_str());
  return buf;
}

}  // namespace

EvalRun run_eval(const json& config, const std::string& family, const fs::path& job_dir,
                 const std::function<void(const std::string&)>& info) {
  const EvalOptions o = EvalOptions::from_config(config);
  // Everything a model is checked against is read before the first model loads, so that a
  // missing file stops the job at once, not after the first model's suites.
  std::vector<sft::InitModel> models;
  for (size_t i = 0; i < o.checkpoints.size(); ++i)
    models.push_back(sft::resolve_model(o.checkpoints[i], "model.checkpoints[" + std::to_string(i) + "]", job_dir));
  std::optional<PerplexitySuite> perplexity;
  if (o.perplexity) perplexity.emplace(*o.perplexity);
  rl::EnvironmentSet envs = rl::EnvironmentSet::load(o.environments);
  std::optional<TaskSuite> tasks;
  if (o.tasks) tasks.emplace(*o.tasks, envs);
  if (o.chats && !fs::exists(o.chats->file)) throw std::invalid_argument("chats.file: " + o.chats->file.string() + " does not exist");

  EvalRun run;
  // Each model's suites, counted as they finish (rate and ETA on a terminal, a line each in a log).
  const int64_t suites = int64_t(models.size()) * (int64_t(perplexity.has_value()) + int64_t(tasks.has_value()) + int64_t(o.chats.has_value()));
  rt::Progress progress("suite", suites, 1);
  int64_t done = 0;
  for (size_t i = 0; i < models.size(); ++i) {
    const sft::InitModel& m = models[i];
    const auto t0 = Clock::now();
    ModelResult r;
    r.label = model_label(m.dir);
    r.dir = m.dir;
    r.origin = o.checkpoints[i];
    rt::Tokenizer tok = rt::Tokenizer::load(m.tokenizer);
    std::unique_ptr<rt::NemotronH> model = rt::load_pretrained(m.dir.string());
    if (tok.vocab_size() > model->config().vocab_size)
      throw std::invalid_argument("model.checkpoints[" + std::to_string(i) + "]: " + m.tokenizer.string() + " has " +
                                  std::to_string(tok.vocab_size()) + " ids, more than the model's vocab_size " +
                                  std::to_string(model->config().vocab_size) + " (" + m.dir.string() + ")");
    info("eval " + family + ": " + m.dir.string() + (m.origin == m.dir.string() ? "" : " (" + m.origin + ")"));
    auto suite = [&](const char* name, auto&& measure) {
      const auto s0 = Clock::now();
      std::vector<Row> rows = measure();
      char took[32];
      std::snprintf(took, sizeof took, "%.1f s", seconds_since(s0));
      info(std::string("  ") + name + ": " + summary(rows) + ", " + took);
      r.rows.insert(r.rows.end(), rows.begin(), rows.end());
      progress.update(++done, r.label + " " + name);
    };
    if (perplexity) suite("perplexity", [&] { return perplexity->run(*model, tok, m.tokenizer); });
    if (tasks) suite("tasks", [&] { return tasks->run(*model, tok, o.media); });
    if (o.chats) suite("chats", [&] { return chat_accuracy(*model, tok, *o.chats, o.media); });
    r.seconds = seconds_since(t0);
    run.models.push_back(std::move(r));
  }

  json results = {{"family", family}, {"models", json::array()}};
  for (const ModelResult& r : run.models) results["models"].push_back(r.to_json());
  run.results_file = job_dir / "eval.json";
  rt::write_file_atomic(run.results_file, results.dump(2) + "\n");
  std::cout << side_by_side(run.models) << std::flush;
  info("results: " + run.results_file.string());
  return run;
}

}  // namespace nemokit::eval
