// Stand-in stages for the executor tests. `exectest echo` prints who it is (rank, world,
// rendezvous, resume state, the model it starts from: model.init_from) and its config lines, then
// exits with the configured code. `exectest checkpoint` counts steps like a training loop: on the
// signal named by NEMOKIT_PREEMPT_SIGNAL it writes its step to a checkpoint and exits; started
// again with NEMOKIT_RESUMED=1 it continues from that step; when it has counted every step it
// saves a model checkpoint (JOB/checkpoints/step_N) and publishes it to the artifact store, as
// a training stage does (not with EXECTEST_NO_PUBLISH set), so that `nemokit pipe
// exectest` hands it to echo.
#include <nemokit/plugin.hpp>
#include <nemokit/stage_artifacts.hpp>

#include "nemokit/runtime/atomic_file.hpp"
#include "nemokit/runtime/run/checkpoint_dir.hpp"

#include <nlohmann/json.hpp>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::atomic<bool> preempted{false};
extern "C" void on_preempt(int) { preempted = true; }

int run_echo(const nemokit::sdk::StageCall& call, const nlohmann::json& cfg) {
  const nlohmann::json& e = cfg.at("echo");
  std::string who = "exectest rank " + env("RANK") + "/" + env("WORLD_SIZE") + " local " + env("LOCAL_RANK") + " master " +
                    env("MASTER_ADDR") + ":" + env("MASTER_PORT") + " resumed " + env("NEMOKIT_RESUMED") + " init_from " +
                    (cfg.contains("model") ? cfg["model"].value("init_from", std::string()) : std::string());
  std::cout << who << std::endl;
  for (const auto& l : e.value("lines", nlohmann::json::array())) std::cout << l.get<std::string>() << std::endl;
  if (!e.value("note", std::string()).empty()) std::cout << "note: " << e.value("note", std::string()) << std::endl;
  std::ofstream(call.job_dir / ("echo-rank-" + env("RANK") + ".txt")) << who << "\n";
  std::this_thread::sleep_for(std::chrono::milliseconds(e.value("sleep_ms", 0)));
  int code = e.value("exit_code", 0);
  if (code != 0) std::cerr << "exectest echo: exiting with code " << code << std::endl;
  return code;
}

int run_checkpoint(const nemokit::sdk::StageCall& call, const nlohmann::json& cfg) {
  const nlohmann::json& c = cfg.at("checkpoint");
  int steps = c.value("steps", 40), step_ms = c.value("step_ms", 100);
  // A resumed run may go faster, so a test of the real time limit need not wait a whole limit twice.
  if (env("NEMOKIT_RESUMED") == "1") step_ms = c.value("resume_step_ms", step_ms);
  std::string sig = env("NEMOKIT_PREEMPT_SIGNAL");
  struct sigaction sa {};
  sa.sa_handler = on_preempt;
  sigaction(sig == "USR2" ? SIGUSR2 : SIGUSR1, &sa, nullptr);
  auto ckpt = call.job_dir / ("checkpoint-rank-" + env("RANK") + ".txt");
  int step = 0;
  if (env("NEMOKIT_RESUMED") == "1") {
    std::ifstream in(ckpt);
    if (!(in >> step)) throw std::runtime_error("resumed but " + ckpt.string() + " holds no step");
    std::cout << "resumed at step " << step << " (restart " << env("NEMOKIT_RESTART_COUNT") << ")" << std::endl;
  } else {
    std::cout << "started at step 0" << std::endl;
  }
  for (; step < steps; ++step) {
    if (preempted) {
      std::ofstream(ckpt) << step << "\n";
      std::cout << "checkpointed at step " << step << std::endl;
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(step_ms));
  }
  std::cout << "finished " << steps << " steps" << std::endl;
  if ((env("RANK").empty() || env("RANK") == "0") && env("EXECTEST_NO_PUBLISH").empty()) {
    nemokit::rt::CheckpointDir ckpts(call.job_dir / "checkpoints", 1);
    const std::filesystem::path dir = ckpts.for_step(steps);
    std::filesystem::create_directories(dir);
    nemokit::rt::write_file_atomic(dir / "config.json", "{\"model_type\": \"exectest\"}\n");
    nemokit::rt::write_file_atomic(dir / "trainer_state.json", "{\"step\": " + std::to_string(steps) + "}\n");
    ckpts.mark_latest(steps);
    nemokit::sdk::publish_trained_model(call, cfg);
  }
  return 0;
}

class ExecTestStage : public nemokit::sdk::Plugin {
 public:
  int run(const nemokit::sdk::StageCall& call) override {
    nlohmann::json cfg = nlohmann::json::parse(call.config_json);
    if (call.stage == "echo") return run_echo(call, cfg);
    if (call.stage == "checkpoint") return run_checkpoint(call, cfg);
    throw std::runtime_error("exectest has no stage " + call.stage);
  }
};

}  // namespace

NEMOKIT_PLUGIN(ExecTestStage)
