// Data parallel through the real program: `nemokit run` with two local ranks (started under
// mpirun, each with half the global batch) trains the same model as one rank with the whole
// batch: the same losses step by step and, after 10 steps, the same weights (fp32, relative error
// below 1e-6), with metrics and checkpoints written once, by rank 0. With the optimizer state
// sharded (ZeRO-1) the two ranks train the same weights and save the same moments again, and a
// ZeRO-1 run resumed from its checkpoint (each rank reloading its block) continues exactly.
#include "bible_slice.hpp"
#include "data_parallel_config.hpp"
#include "run_cli.hpp"
#include "tensor_compare.hpp"

#include "nemokit/runtime/safetensors.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

namespace fs = std::filesystem;
using nemokit::test::relative_error;
using nemokit::test::run_cli;
using nemokit::test::worst_tensor_error;
using nlohmann::json;

namespace {

std::vector<json> metrics_of(const fs::path& jobs_root) {
  std::vector<json> out;
  for (const auto& e : fs::directory_iterator(jobs_root)) {
    std::ifstream in(e.path() / "metrics.jsonl");
    for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  }
  return out;
}

// The pid of the process whose environment says OMPI_COMM_WORLD_RANK=`rank` and whose command
// line mentions `needle` (a rank of that job under mpirun), or -1.
pid_t rank_pid(const std::string& needle, int rank) {
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream cmd(e.path() / "cmdline"), env(e.path() / "environ");
    std::stringstream c, v;
    c << cmd.rdbuf();
    v << env.rdbuf();
    std::string environ_text = v.str();
    if (c.str().find(needle) != std::string::npos && c.str().find("__task") != std::string::npos &&
        environ_text.find(std::string("OMPI_COMM_WORLD_RANK=") + std::to_string(rank) + '\0') != std::string::npos)
      return pid_t(std::stol(name));
  }
  return -1;
}

}  // namespace

TEST(PretrainDataParallel, TwoRanksWithHalfTheBatchTrainAsOneRankWithAllOfIt) {
  if (!fs::exists(nemokit::test::kjv_bible())) GTEST_FAIL() << nemokit::test::kjv_bible() << " missing: run scripts/setup.sh";
  fs::path dir = nemokit::test::temp_folder("pt-dp");
  fs::path cfg = nemokit::test::write_data_parallel_config(dir);
  // One thread per rank: the comparison is about the data split, and two ranks share two cores.
  auto one = run_cli("run nano3 pretrain -c " + cfg.string() + " checkpoint.dir=" + (dir / "ckpt-1").string(),
                     "NEMOKIT_NUM_THREADS=1 NEMOKIT_JOB_ROOT=" + (dir / "jobs-1").string());
  ASSERT_EQ(one.rc, 0) << one.out << one.err;
  auto two =
      run_cli("run nano3 pretrain -c " + cfg.string() + " checkpoint.dir=" + (dir / "ckpt-2").string() + " +run.nproc_per_node=2",
              "NEMOKIT_NUM_THREADS=1 NEMOKIT_COMM_TIMEOUT_S=60 NEMOKIT_JOB_ROOT=" + (dir / "jobs-2").string());
  ASSERT_EQ(two.rc, 0) << two.out << two.err;
  EXPECT_NE((two.out + two.err).find("over 2 data-parallel ranks (mpi)"), std::string::npos) << two.out << two.err;

  // Losses: one line per step, written by rank 0 alone.
  std::map<int64_t, double> loss1, loss2, val1, val2;
  for (const auto& m : metrics_of(dir / "jobs-1"))
    (m.contains("loss") ? loss1 : val1)[m["step"]] = m.value("loss", m.value("val_loss", 0.0));
  for (const auto& m : metrics_of(dir / "jobs-2"))
    (m.contains("loss") ? loss2 : val2)[m["step"]] = m.value("loss", m.value("val_loss", 0.0));
  ASSERT_EQ(loss1.size(), 10u);
  ASSERT_EQ(loss2.size(), 10u) << "metrics.jsonl must hold each step once";
  for (const auto& [step, l] : loss1)
    EXPECT_LT(relative_error(l, loss2[step]), 1e-6) << "step " << step << ": " << l << " vs " << loss2[step];
  ASSERT_EQ(val2.size(), val1.size());
  for (const auto& [step, v] : val1) EXPECT_LT(relative_error(v, val2[step]), 1e-6) << "val at step " << step;

  // Weights after 10 steps: per tensor, |w2 - w1| / |w1| below 1e-6.
  auto [worst, worst_name] = worst_tensor_error(dir / "ckpt-1" / "step_0000010" / "model.safetensors",
                                                dir / "ckpt-2" / "step_0000010" / "model.safetensors");
  EXPECT_LT(worst, 1e-6) << "worst tensor " << worst_name;
  // Both ranks logged into the job folder; only rank 0 checkpointed (one step folder per save).
  fs::path job2 = fs::directory_iterator(dir / "jobs-2")->path();
  EXPECT_TRUE(fs::exists(job2 / "logs" / "rank-0.log"));
  EXPECT_TRUE(fs::exists(job2 / "logs" / "rank-1.log"));
}

// The GPU path over two ranks (train.device = "cuda" through the CUDA module built over the
// kernel emulator, tests/gpu): each rank runs its two micro-batches on its own device trainer,
// the fp32 gradients are summed over the communicator before clipping and AdamW, so the two
// ranks follow one rank with all four micro-batches on the same path. Not bit for bit as on the
// CPU (which sums in double): one rank adds the four gradients in turn, two ranks add two each
// and then the two sums, in float. Measured: losses at most 1.7e-5 apart, weights at most 2.2%
// (a router's gate, whose small gradients AdamW's normalization turns into whole steps); without
// the sum over the ranks, 1.5e-2 and 58%. Each rank picks its GPU by its local rank (one visible
// emulated device here, so both take device 0).
TEST(PretrainDataParallel, TwoRanksOnTheCudaPathTrainAsOneRank) {
  if (!fs::exists(nemokit::test::kjv_bible())) GTEST_FAIL() << nemokit::test::kjv_bible() << " missing: run scripts/setup.sh";
  fs::path dir = nemokit::test::temp_folder("pt-dp-cuda");
  fs::path cfg = nemokit::test::write_data_parallel_config(dir);
  const std::string env = "NEMOKIT_CUDA_MODULE='" NEMOKIT_EMULATED_CUDA_MODULE "' NEMOKIT_NUM_THREADS=1 NEMOKIT_COMM_TIMEOUT_S=60";
  auto one = run_cli("run nano3 pretrain -c " + cfg.string() + " checkpoint.dir=" + (dir / "ckpt-1").string() + " +train.device=cuda",
                     env + " NEMOKIT_JOB_ROOT=" + (dir / "jobs-1").string());
  ASSERT_EQ(one.rc, 0) << one.out << one.err;
  auto two = run_cli("run nano3 pretrain -c " + cfg.string() + " checkpoint.dir=" + (dir / "ckpt-2").string() +
                         " +train.device=cuda +run.nproc_per_node=2",
                     env + " NEMOKIT_JOB_ROOT=" + (dir / "jobs-2").string());
  ASSERT_EQ(two.rc, 0) << two.out << two.err;
  EXPECT_NE((two.out + two.err).find("over 2 data-parallel ranks (mpi) on cuda"), std::string::npos) << two.out << two.err;

  std::map<int64_t, double> loss1, loss2;
  for (const auto& m : metrics_of(dir / "jobs-1"))
    if (m.contains("loss")) loss1[m["step"]] = m["loss"].get<double>();
  for (const auto& m : metrics_of(dir / "jobs-2"))
    if (m.contains("loss")) loss2[m["step"]] = m["loss"].get<double>();
  ASSERT_EQ(loss1.size(), 10u);
  ASSERT_EQ(loss2.size(), 10u);
  for (const auto& [step, l] : loss1)
    EXPECT_LT(relative_error(l, loss2[step]), 1e-4) << "step " << step << ": " << l << " vs " << loss2[step];
  auto [worst, worst_name] = worst_tensor_error(dir / "ckpt-1" / "step_0000010" / "model.safetensors",
                                                dir / "ckpt-2" / "step_0000010" / "model.safetensors");
  EXPECT_LT(worst, 5e-2) << "worst tensor " << worst_name;
}

// ZeRO-1: the same two ranks with the optimizer state sharded train the same weights and save the
// same moments as with it whole; resumed from the step-5 checkpoint (each rank takes its block of
// the moments back) the run ends on the same weights as without the break.
TEST(PretrainDataParallel, ShardedOptimizerStateTrainsAndResumesAsWholeState) {
  if (!fs::exists(nemokit::test::kjv_bible())) GTEST_FAIL() << nemokit::test::kjv_bible() << " missing: run scripts/setup.sh";
  fs::path dir = nemokit::test::temp_folder("pt-zero");
  fs::path cfg = nemokit::test::write_data_parallel_config(dir);
  auto run2 = [&](const std::string& name, const std::string& extra) {
    return run_cli("run nano3 pretrain -c " + cfg.string() + " checkpoint.dir=" + (dir / ("ckpt-" + name)).string() +
                       " +run.nproc_per_node=2" + extra,
                   "NEMOKIT_NUM_THREADS=1 NEMOKIT_COMM_TIMEOUT_S=60 NEMOKIT_JOB_ROOT=" + (dir / ("jobs-" + name)).string());
  };
  auto plain = run2("plain", "");
  ASSERT_EQ(plain.rc, 0) << plain.out << plain.err;
  auto zero = run2("zero", " +parallel.zero=1");
  ASSERT_EQ(zero.rc, 0) << zero.out << zero.err;
  EXPECT_NE((zero.out + zero.err).find("over 2 data-parallel ranks (mpi), optimizer state sharded (ZeRO-1)"), std::string::npos)
      << zero.out << zero.err;
  const auto loss_plain = nemokit::test::train_losses(dir / "jobs-plain"),
             loss_zero = nemokit::test::train_losses(dir / "jobs-zero");
  ASSERT_EQ(loss_zero.size(), 10u);
  for (const auto& [step, l] : loss_plain) EXPECT_LT(relative_error(l, loss_zero.at(step)), 1e-6) << "step " << step;
  for (const char* file : {"model.safetensors", "optimizer.safetensors"}) {
    auto [worst, name] =
        worst_tensor_error(dir / "ckpt-plain" / "step_0000010" / file, dir / "ckpt-zero" / "step_0000010" / file);
    EXPECT_LT(worst, 1e-6) << file << ": worst tensor " << name;
  }

  // Resume: a checkpoint folder holding only the step-5 checkpoint of the ZeRO-1 run.
  const fs::path resumed = dir / "ckpt-resumed";
  fs::create_directories(resumed);
  fs::copy(dir / "ckpt-zero" / "step_0000005", resumed / "step_0000005", fs::copy_options::recursive);
  std::ofstream(resumed / "latest") << "step_0000005\n";
  auto again = run2("resumed", " +parallel.zero=1");
  ASSERT_EQ(again.rc, 0) << again.out << again.err;
  EXPECT_NE((again.out + again.err).find("at step 5"), std::string::npos) << again.out << again.err;
  const auto loss_again = nemokit::test::train_losses(dir / "jobs-resumed");
  ASSERT_EQ(loss_again.size(), 5u) << "steps 6 to 10 only";
  for (const auto& [step, l] : loss_again) EXPECT_LT(relative_error(loss_zero.at(step), l), 1e-6) << "step " << step;
  for (const char* file : {"model.safetensors", "optimizer.safetensors"}) {
    auto [worst, name] = worst_tensor_error(dir / "ckpt-zero" / "step_0000010" / file, resumed / "step_0000010" / file);
    EXPECT_LT(worst, 1e-6) << file << " after resuming: worst tensor " << name;
  }
}

TEST(PretrainDataParallel, AZeroStageWeDoNotHaveIsRefusedNamingTheKey) {
  if (!fs::exists(nemokit::test::kjv_bible())) GTEST_FAIL() << nemokit::test::kjv_bible() << " missing: run scripts/setup.sh";
  fs::path dir = nemokit::test::temp_folder("pt-zero-bad");
  fs::path cfg = nemokit::test::write_data_parallel_config(dir);
  auto r = run_cli("run nano3 pretrain -c " + cfg.string() + " +parallel.zero=3", "NEMOKIT_JOB_ROOT=" + (dir / "jobs").string());
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("parallel.zero: 3 is not a ZeRO stage"), std::string::npos) << r.err;
}

TEST(PretrainDataParallel, ADataParallelSizeThatDisagreesWithTheRanksIsRefusedNamingTheKey) {
  if (!fs::exists(nemokit::test::kjv_bible())) GTEST_FAIL() << nemokit::test::kjv_bible() << " missing: run scripts/setup.sh";
  fs::path dir = nemokit::test::temp_folder("pt-dp-bad");
  fs::path cfg = nemokit::test::write_data_parallel_config(dir);
  auto r = run_cli("run nano3 pretrain -c " + cfg.string() + " +parallel.dp=2", "NEMOKIT_JOB_ROOT=" + (dir / "jobs").string());
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("parallel.dp: 2, but the job has 1 rank(s)"), std::string::npos) << r.err;
}

// A rank killed in the middle of training ends the whole job promptly, with the rank named
// (mpirun reports it; a survivor's collective would time out naming it otherwise), never a hang.
TEST(PretrainDataParallel, ARankKilledMidTrainingEndsTheJobNamingIt) {
  if (!fs::exists(nemokit::test::kjv_bible())) GTEST_FAIL() << nemokit::test::kjv_bible() << " missing: run scripts/setup.sh";
  fs::path dir = nemokit::test::temp_folder("pt-dp-kill");
  fs::path cfg = nemokit::test::write_data_parallel_config(dir);
  nemokit::test::RunOptions opt;
  opt.env = {{"NEMOKIT_NUM_THREADS", "1"}, {"NEMOKIT_COMM_TIMEOUT_S", "20"}, {"NEMOKIT_JOB_ROOT", (dir / "jobs").string()}};
  nemokit::test::Process p(nemokit::test::nemokit_argv({"run", "nano3", "pretrain", "-c", cfg.string(), "train.max_steps=100000",
                                                        "checkpoint.dir=" + (dir / "ckpt").string(), "+run.nproc_per_node=2"}),
                           opt);
  ASSERT_TRUE(p.wait_for_output([](const std::string& s) { return s.find("[0] step 3/") != std::string::npos; }, 120))
      << p.err_so_far();
  pid_t victim = rank_pid((dir / "jobs").string(), 1);
  ASSERT_GT(victim, 0) << "rank 1 not found";
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  nemokit::test::RunResult r = p.wait(60);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_NE(r.exit_code, -2) << "the job hung after rank 1 died";
  EXPECT_NE(r.exit_code, 0);
  EXPECT_LT(secs, 30);
  const std::string all = r.out + r.err;
  EXPECT_TRUE(all.find("rank 1 with PID") != std::string::npos || all.find("rank 1 never arrived") != std::string::npos) << all;
  EXPECT_EQ(rank_pid((dir / "jobs").string(), 0), -1) << "rank 0 outlived the job";
}

// The whole two-rank job killed with SIGKILL (both ranks and nemokit, as a lost node would end
// it) after its step-5 checkpoint: run again, it resumes there and reproduces the uninterrupted
// run's losses and final weights exactly.
TEST(PretrainDataParallel, TwoRanksKilledWithSigkillResumeToTheUninterruptedRun) {
  if (!fs::exists(nemokit::test::kjv_bible())) GTEST_FAIL() << nemokit::test::kjv_bible() << " missing: run scripts/setup.sh";
  fs::path dir = nemokit::test::temp_folder("pt-dp-resume");
  fs::path cfg = nemokit::test::write_data_parallel_config(dir);
  const std::string env = "NEMOKIT_NUM_THREADS=1 NEMOKIT_COMM_TIMEOUT_S=60 NEMOKIT_JOB_ROOT=";
  auto full = run_cli(
      "run nano3 pretrain -c " + cfg.string() + " checkpoint.dir=" + (dir / "ckpt-full").string() + " +run.nproc_per_node=2",
      env + (dir / "jobs-full").string());
  ASSERT_EQ(full.rc, 0) << full.out << full.err;

  const fs::path ckpt = dir / "ckpt-killed", jobs = dir / "jobs-killed";
  const std::vector<std::string> args = {
      "run", "nano3", "pretrain", "-c", cfg.string(), "checkpoint.dir=" + ckpt.string(), "+run.nproc_per_node=2"};
  nemokit::test::RunOptions opt;
  opt.env = {{"NEMOKIT_NUM_THREADS", "1"}, {"NEMOKIT_COMM_TIMEOUT_S", "60"}, {"NEMOKIT_JOB_ROOT", jobs.string()}};
  nemokit::test::Process killed(nemokit::test::nemokit_argv(args), opt);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  auto latest = [&] {
    std::ifstream in(ckpt / "latest");
    std::string name;
    in >> name;
    return name;
  };
  while (std::chrono::steady_clock::now() < deadline && latest() != "step_0000005")
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(latest(), "step_0000005") << killed.err_so_far();
  for (int rank : {0, 1})
    if (pid_t p = rank_pid(jobs.string(), rank); p > 0) ::kill(p, SIGKILL);
  ::kill(killed.pid(), SIGKILL);
  ASSERT_EQ(killed.wait(60).exit_code, 128 + SIGKILL) << "the job finished before it could be killed";
  for (int i = 0; i < 300 && (rank_pid(jobs.string(), 0) > 0 || rank_pid(jobs.string(), 1) > 0); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_EQ(rank_pid(jobs.string(), 1), -1) << "a rank outlived its killed job";

  std::string cmd = "run";
  for (size_t i = 1; i < args.size(); ++i) cmd += " " + args[i];
  auto again = run_cli(cmd, env + jobs.string());
  ASSERT_EQ(again.rc, 0) << again.out << again.err;
  EXPECT_NE((again.out + again.err).find("at step 5"), std::string::npos) << again.out << again.err;
  // Every step's loss, from the killed job and the resumed one, is the uninterrupted run's.
  const auto ref = nemokit::test::train_losses(dir / "jobs-full"), got = nemokit::test::train_losses(jobs);
  ASSERT_EQ(got.size(), 10u);
  for (const auto& [step, l] : ref) EXPECT_EQ(got.at(step), l) << "step " << step;
  auto [worst, name] =
      worst_tensor_error(dir / "ckpt-full" / "step_0000010" / "model.safetensors", ckpt / "step_0000010" / "model.safetensors");
  EXPECT_EQ(worst, 0.0) << "worst tensor " << name;
  for (const auto& e : fs::directory_iterator(ckpt))
    if (e.is_directory()) EXPECT_TRUE(fs::exists(e.path() / "trainer_state.json")) << e.path() << " is half written";
}
