// `nemokit data prep` and `nemokit run` of the pretraining stage, as a user runs them, on real
// text (the King James Bible extracted from Debian's bible-kjv by the setup), with a model small
// enough to train a few steps in seconds.
#include "bible_slice.hpp"
#include "run_cli.hpp"

#include "nemokit/runtime/safetensors.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <sstream>
#include <cstdlib>
#include <fstream>
#include <set>
#include <thread>

namespace fs = std::filesystem;
using nlohmann::json;
using nemokit::test::run_cli;
using nemokit::test::read_file;

namespace {

// A user config on top of the shipped `tiny`: a smaller model and a quarter of the Bible.
fs::path write_config(const fs::path& dir) {
  const fs::path text = nemokit::test::write_bible_slice(dir);
  fs::path cfg = dir / "small.toml";
  std::ofstream(cfg) << "defaults = [\"tiny\"]\n"
                        "[model]\nhidden_size = 64\nmamba_num_heads = 4\nmamba_head_dim = 32\nssm_state_size = 16\n"
                        "chunk_size = 16\nnum_attention_heads = 4\nnum_key_value_heads = 2\nhead_dim = 16\n"
                        "intermediate_size = 128\nn_routed_experts = 4\nnum_experts_per_tok = 2\n"
                        "moe_intermediate_size = 64\nmoe_shared_expert_intermediate_size = 64\nvocab_size = 512\n"
                        "[train]\nseq_length = 32\nmicro_batch_size = 4\nglobal_batch_size = 8\nmax_steps = 8\n"
                        "warmup_steps = 2\neval_interval = 4\neval_steps = 2\nsave_interval = 2\nlog_interval = 1\n"
                        "sample_prompt = \"In the beginning\"\nsample_tokens = 8\n"
                        "[data]\ninputs = [\"" + text.string() + "\"]\n"
                        "train_tokenizer = { vocab_size = 512, min_frequency = 2, special_tokens = [\"<|endoftext|>\"] }\n"
                        "seq_length = 32\noutput = \"" + (dir / "data").string() + "\"\n"
                        "[checkpoint]\ndir = \"" + (dir / "ckpt").string() + "\"\n";
  return cfg;
}

std::vector<json> metrics_of(const fs::path& jobs_root) {
  std::vector<json> out;
  std::vector<fs::path> jobs;
  for (const auto& e : fs::directory_iterator(jobs_root)) jobs.push_back(e.path());
  std::sort(jobs.begin(), jobs.end());
  for (const auto& j : jobs) {
    std::ifstream in(j / "metrics.jsonl");
    for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  }
  return out;
}

// step -> the exact text of its training loss, as metrics.jsonl recorded it.
std::map<int64_t, std::string> losses(const std::vector<json>& metrics) {
  std::map<int64_t, std::string> out;
  for (const auto& m : metrics)
    if (m.contains("loss")) out[m["step"].get<int64_t>()] = m["loss"].dump();
  return out;
}

class PretrainStage : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(nemokit::test::kjv_bible()))
      GTEST_FAIL() << nemokit::test::kjv_bible() << " missing: run scripts/setup.sh (it extracts the corpus)";
  }
};

}  // namespace

TEST_F(PretrainStage, DataPrepWritesMegatronShardsBlendAndArtifact) {
  fs::path dir = nemokit::test::temp_folder("pt-prep");
  fs::path cfg = write_config(dir);
  auto r = run_cli("data prep nano3 pretrain -c " + cfg.string(), "NEMOKIT_JOB_ROOT=" + (dir / "jobs").string());
  ASSERT_EQ(r.rc, 0) << r.err;
  auto blend = json::parse(read_file(dir / "data" / "blend.json"));
  for (const char* split : {"train", "valid", "test"}) ASSERT_GE(blend[split].size(), 2u) << split;
  auto meta = json::parse(read_file(dir / "data" / "metadata.json"));
  EXPECT_EQ(meta["type"], "PretrainBlendsArtifact");
  EXPECT_GT(meta["total_tokens"].get<int64_t>(), 100000);
  EXPECT_TRUE(fs::exists(dir / "data" / "tokenizer.json"));
  fs::remove_all(dir);
}

TEST_F(PretrainStage, TrainsWritesMetricsAndResumesExactlyAfterSigkill) {
  fs::path dir = nemokit::test::temp_folder("pt-train");
  fs::path cfg = write_config(dir);
  // Reference: one uninterrupted run of 8 steps.
  auto full = run_cli("run nano3 pretrain -c " + cfg.string() + " checkpoint.dir=" + (dir / "ckpt-full").string(),
                      "NEMOKIT_JOB_ROOT=" + (dir / "jobs-full").string());
  ASSERT_EQ(full.rc, 0) << full.err;
  auto ref = metrics_of(dir / "jobs-full");
  auto ref_loss = losses(ref);
  ASSERT_EQ(ref_loss.size(), 8u);
  int val = 0;
  for (const auto& m : ref) {
    if (m.contains("val_loss")) ++val;
    if (m.contains("loss")) {
      for (const char* k : {"lr", "grad_norm", "tokens_per_s", "expert_imbalance"}) EXPECT_TRUE(m.contains(k)) << k;
    }
  }
  EXPECT_EQ(val, 2);  // steps 4 and 8
  EXPECT_NE(full.out.find("sample: In the beginning"), std::string::npos) << full.out;
  EXPECT_TRUE(fs::exists(dir / "ckpt-full" / "step_0000008" / "model.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "ckpt-full" / "step_0000008" / "config.json"));

  // Interrupted: start the same run, SIGKILL it once the step-4 checkpoint is in place, rerun.
  nemokit::test::Process killed(nemokit::test::nemokit_argv({"run", "nano3", "pretrain", "-c", cfg.string(), "train.max_steps=8"}),
                                {{}, {{"NEMOKIT_JOB_ROOT", (dir / "jobs-killed").string()}}, ""});
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline && read_file(dir / "ckpt" / "latest") != "step_0000004\n")
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(killed.pid(), SIGKILL);
  ASSERT_EQ(killed.wait(60).exit_code, 128 + SIGKILL) << "the run finished before it could be killed";
  auto again = run_cli("run nano3 pretrain -c " + cfg.string(), "NEMOKIT_JOB_ROOT=" + (dir / "jobs-killed").string());
  ASSERT_EQ(again.rc, 0) << again.err;
  EXPECT_NE(again.out.find("resumed from"), std::string::npos) << again.out;
  auto resumed = losses(metrics_of(dir / "jobs-killed"));
  for (int64_t step = 1; step <= 8; ++step) EXPECT_EQ(resumed[step], ref_loss[step]) << "step " << step;

  // Once more: complete, and it says where the model is.
  auto done = run_cli("run nano3 pretrain -c " + cfg.string(), "NEMOKIT_JOB_ROOT=" + (dir / "jobs-killed").string());
  ASSERT_EQ(done.rc, 0) << done.err;
  EXPECT_NE(done.out.find("training is already complete at step 8: the model is in " + (dir / "ckpt" / "step_0000008").string()),
            std::string::npos) << done.out;
  fs::remove_all(dir);
}

TEST_F(PretrainStage, SigtermCheckpointsAndExitsResumable) {
  fs::path dir = nemokit::test::temp_folder("pt-term");
  fs::path cfg = write_config(dir);
  nemokit::test::Process run(
      nemokit::test::nemokit_argv({"run", "nano3", "pretrain", "-c", cfg.string(), "train.max_steps=1000", "train.save_interval=1000"}),
      {{}, {{"NEMOKIT_JOB_ROOT", (dir / "jobs").string()}}, ""});
  // Wait for training to start (the first metrics line), then ask it to stop.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(dir / "jobs") && !metrics_of(dir / "jobs").empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(run.pid(), SIGTERM);
  nemokit::test::RunResult r = run.wait(300);
  EXPECT_EQ(r.exit_code, 75) << r.err;
  std::string latest = read_file(dir / "ckpt" / "latest");
  EXPECT_TRUE(latest.starts_with("step_")) << latest;
  fs::remove_all(dir);
}

TEST_F(PretrainStage, BadTrainKeyIsNamed) {
  fs::path dir = nemokit::test::temp_folder("pt-bad");
  fs::path cfg = write_config(dir);
  auto r = run_cli("run nano3 pretrain -c " + cfg.string() + " +train.warmup=3", "NEMOKIT_JOB_ROOT=" + (dir / "jobs").string());
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("train.warmup: unknown key"), std::string::npos) << r.err;
  // A misspelt [model] key is refused before any data is prepared, not trained with the default.
  r = run_cli("run nano3 pretrain -c " + cfg.string() + " +model.hiden_size=32", "NEMOKIT_JOB_ROOT=" + (dir / "jobs").string());
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("key 'hiden_size': unknown key"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "data" / "metadata.json"));
  fs::remove_all(dir);
}

// train.device picks where the steps run; a word that is no device, and cuda where no GPU is
// visible, fail before any data is prepared, naming the key. (With a GPU, bench/gpu/check.sh
// trains on it.)
TEST_F(PretrainStage, TrainDeviceIsCheckedUpFront) {
  fs::path dir = nemokit::test::temp_folder("pt-device");
  fs::path cfg = write_config(dir);
  const std::string env = "NEMOKIT_JOB_ROOT=" + (dir / "jobs").string();
  auto r = run_cli("run nano3 pretrain -c " + cfg.string() + " +train.device=tpu", env);
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("train.device: \"tpu\" is not a device (\"cpu\" or \"cuda\")"), std::string::npos) << r.err;
  if (!fs::exists("/dev/nvidia0")) {
    r = run_cli("run nano3 pretrain -c " + cfg.string() + " +train.device=cuda", env);
    EXPECT_NE(r.rc, 0);
    EXPECT_NE(r.err.find("train.device = \"cuda\": "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("no CUDA device is visible"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(fs::exists(dir / "data" / "metadata.json"));
  fs::remove_all(dir);
}

// train.device = "cuda" end to end: the loop, the GPU trainer, checkpoints and resume, with the
// CUDA module built over the kernel emulator (tests/gpu: the real kernels run on the CPU). The
// losses follow the CPU run's (bf16 activations: within 3%), and a resumed run continues the
// uninterrupted one bit for bit (the emulator is deterministic, and a checkpoint holds the fp32
// masters and moments the device had).
TEST_F(PretrainStage, TrainsOnTheCudaPathAndResumesExactly) {
  fs::path dir = nemokit::test::temp_folder("pt-cuda");
  fs::path cfg = write_config(dir);
  const std::string cuda = "NEMOKIT_CUDA_MODULE=" NEMOKIT_EMULATED_CUDA_MODULE " ";
  auto cpu = run_cli("run nano3 pretrain -c " + cfg.string() + " train.max_steps=6 train.sample_tokens=0 checkpoint.dir=" +
                         (dir / "ckpt-cpu").string(),
                     "NEMOKIT_JOB_ROOT=" + (dir / "jobs-cpu").string());
  ASSERT_EQ(cpu.rc, 0) << cpu.err;
  auto whole = run_cli("run nano3 pretrain -c " + cfg.string() + " +train.device=cuda train.max_steps=6 checkpoint.dir=" +
                           (dir / "ckpt-whole").string(),
                       cuda + "NEMOKIT_JOB_ROOT=" + (dir / "jobs-whole").string());
  ASSERT_EQ(whole.rc, 0) << whole.err;
  EXPECT_NE(whole.out.find(" on cuda;"), std::string::npos) << whole.out;
  EXPECT_NE(whole.out.find("sample: In the beginning"), std::string::npos) << whole.out;
  const auto cpu_loss = losses(metrics_of(dir / "jobs-cpu"));
  const auto gpu_loss = losses(metrics_of(dir / "jobs-whole"));
  ASSERT_EQ(gpu_loss.size(), 6u);
  for (int64_t step = 1; step <= 6; ++step) {
    const double c = std::stod(cpu_loss.at(step)), g = std::stod(gpu_loss.at(step));
    EXPECT_NEAR(g, c, 0.03 * c) << "step " << step;
  }
  EXPECT_LT(std::stod(gpu_loss.at(6)), std::stod(gpu_loss.at(1)));
  EXPECT_TRUE(fs::exists(dir / "ckpt-whole" / "step_0000006" / "model.safetensors"));

  auto part = run_cli("run nano3 pretrain -c " + cfg.string() + " +train.device=cuda train.max_steps=4 checkpoint.dir=" +
                          (dir / "ckpt-part").string(),
                      cuda + "NEMOKIT_JOB_ROOT=" + (dir / "jobs-part").string());
  ASSERT_EQ(part.rc, 0) << part.err;
  auto rest = run_cli("run nano3 pretrain -c " + cfg.string() + " +train.device=cuda train.max_steps=6 checkpoint.dir=" +
                          (dir / "ckpt-part").string(),
                      cuda + "NEMOKIT_JOB_ROOT=" + (dir / "jobs-part").string());
  ASSERT_EQ(rest.rc, 0) << rest.err;
  EXPECT_NE(rest.out.find("resumed from"), std::string::npos) << rest.out;
  const auto resumed = losses(metrics_of(dir / "jobs-part"));
  for (int64_t step = 1; step <= 6; ++step) EXPECT_EQ(resumed.at(step), gpu_loss.at(step)) << "step " << step;
  fs::remove_all(dir);
}

// super3's tiny recipe trains Nemotron 3 Super's layers: LatentMoE and one MTP layer, whose
// weights the checkpoint keeps under the public names; the training loss (MTP loss included)
// falls.
TEST_F(PretrainStage, Super3TrainsLatentMoeAndMtp) {
  fs::path dir = nemokit::test::temp_folder("pt-super3");
  fs::path cfg = write_config(dir);  // defaults = ["tiny"]: super3's tiny under `run super3`
  auto r = run_cli("run super3 pretrain -c " + cfg.string() + " model.moe_latent_size=16 train.sample_tokens=0",
                   "NEMOKIT_JOB_ROOT=" + (dir / "jobs").string());
  ASSERT_EQ(r.rc, 0) << r.err;
  auto loss = metrics_of(dir / "jobs");
  std::vector<double> train;
  for (const auto& m : loss)
    if (m.contains("loss")) {
      train.push_back(m["loss"].get<double>());
      EXPECT_GT(m.value("mtp_loss", 0.0), 0.0) << m.dump();  // the MTP layer's part of the loss
    }
  ASSERT_EQ(train.size(), 8u);
  EXPECT_LT(train.back(), train.front() - 0.2) << "loss did not fall: " << train.front() << " -> " << train.back();
  auto weights = nemokit::rt::SafetensorsFile::open((dir / "ckpt" / "step_0000008" / "model.safetensors").string());
  std::set<std::string> names;
  for (const auto& e : weights.entries()) names.insert(e.name);
  for (const char* name : {"backbone.layers.1.mixer.fc1_latent_proj.weight", "backbone.layers.1.mixer.fc2_latent_proj.weight",
                           "mtp.layers.0.eh_proj.weight", "mtp.layers.1.mixer.fc1_latent_proj.weight",
                           "mtp.layers.1.final_layernorm.weight"})
    EXPECT_TRUE(names.count(name)) << name;
  auto config = json::parse(read_file(dir / "ckpt" / "step_0000008" / "config.json"));
  EXPECT_EQ(config["moe_latent_size"], 16);
  EXPECT_EQ(config["num_nextn_predict_layers"], 1);
  fs::remove_all(dir);
}

// --dry-run checks the model a recipe defines: super3's default passes; a bad value is refused,
// naming the key, before any job folder exists.
TEST(PretrainStageConfig, DryRunValidatesTheModel) {
  fs::path dir = nemokit::test::temp_folder("pt-dry");
  const std::string env = "NEMOKIT_JOB_ROOT=" + (dir / "jobs").string();
  auto ok = run_cli("run super3 pretrain --dry-run", env);
  ASSERT_EQ(ok.rc, 0) << ok.err;
  EXPECT_NE(ok.out.find("moe_latent_size = 1024"), std::string::npos) << ok.out;
  auto bad = run_cli("run super3 pretrain --dry-run model.mtp_hybrid_override_pattern=M*", env);
  EXPECT_NE(bad.rc, 0);
  EXPECT_NE(bad.err.find("[model]: key 'mtp_hybrid_override_pattern': unknown MTP layer letter 'M'"), std::string::npos)
      << bad.err;
  bad = run_cli("run super3 pretrain model.moe_latent_size=-2", env);
  EXPECT_NE(bad.rc, 0);
  EXPECT_NE(bad.err.find("key 'moe_latent_size'"), std::string::npos) << bad.err;
  // The default model (120B) does not fit this machine: a run here is refused before its job
  // folder exists, naming the largest part; the dry run above (a plan, perhaps for a cluster) is not.
  bad = run_cli("run super3 pretrain", env);
  EXPECT_NE(bad.rc, 0);
  EXPECT_NE(bad.err.find("memory"), std::string::npos) << bad.err;
  EXPECT_FALSE(fs::exists(dir / "jobs"));
  fs::remove_all(dir);
}

namespace {

// The bytes after `label` in a memory plan line ("; total 12.3 MB": three significant figures).
double plan_figure(const std::string& text, const std::string& label) {
  const size_t at = text.find(label);
  if (at == std::string::npos) return 0;
  std::istringstream in(text.substr(at + label.size()));
  double value = 0;
  std::string unit;
  in >> value >> unit;
  unit = unit.substr(0, unit.find_first_of(",;("));  // "6.2 MB, gradients ..."
  const std::string units[] = {"B", "KB", "MB", "GB", "TB"};
  for (int i = 0; i < 5; ++i)
    if (unit == units[i]) return value * std::pow(1000.0, i);
  return 0;
}

double plan_total(const std::string& text) { return plan_figure(text, "; total "); }

}  // namespace

// The memory plan: --dry-run prints what each rank holds for the layout asked for, and a layout
// that needs more than one GPU has (gpu_memory) is refused with the figures, before any job
// folder exists; ZeRO-1 is named as the way out when sharding the optimizer state would fit.
TEST(PretrainStageConfig, DryRunPrintsTheMemoryPlanAndRefusesWhatDoesNotFit) {
  fs::path dir = nemokit::test::temp_folder("pt-memory");
  const std::string env = "NEMOKIT_JOB_ROOT=" + (dir / "jobs").string();
  auto one = run_cli("run nano3 pretrain -c tiny --dry-run", env);
  ASSERT_EQ(one.rc, 0) << one.err;
  EXPECT_NE(one.out.find("# memory per rank (fp32, 1 rank): weights "), std::string::npos) << one.out;
  EXPECT_NE(one.out.find("optimizer state "), std::string::npos) << one.out;
  EXPECT_NE(one.out.find(" (whole), activations "), std::string::npos) << one.out;
  EXPECT_NE(one.out.find("(micro batch 8 x 128 tokens)"), std::string::npos) << one.out;
  // On cuda: bf16 weights (half the fp32 plan's), fp32 masters and moments (12 bytes a value
  // against the CPU's 8), no double sums.
  auto gpu = run_cli("run nano3 pretrain -c tiny --dry-run +train.device=cuda", env);
  ASSERT_EQ(gpu.rc, 0) << gpu.err;
  EXPECT_NE(gpu.out.find("# memory per rank (cuda: bf16 weights and activations, 1 rank): weights "), std::string::npos)
      << gpu.out;
  EXPECT_NE(gpu.out.find(" (fp32 masters and moments) (whole)"), std::string::npos) << gpu.out;
  EXPECT_EQ(gpu.out.find("double sums"), std::string::npos) << gpu.out;
  const double weights = plan_figure(one.out, "): weights "), moments = plan_figure(one.out, ", optimizer state ");
  ASSERT_GT(weights, 0) << one.out;
  EXPECT_NEAR(plan_figure(gpu.out, "): weights "), weights / 2, 0.02 * weights) << gpu.out;
  EXPECT_NEAR(plan_figure(gpu.out, ", optimizer state "), moments * 1.5, 0.02 * moments) << gpu.out;

  // One sequence per micro-batch, so that the optimizer state is a visible share of the total.
  const std::string two = "run nano3 pretrain -c tiny --dry-run +run.nproc_per_node=2 train.micro_batch_size=1";
  auto whole = run_cli(two, env);
  auto sharded = run_cli(two + " +parallel.zero=1", env);
  ASSERT_EQ(whole.rc, 0) << whole.err;
  ASSERT_EQ(sharded.rc, 0) << sharded.err;
  EXPECT_NE(whole.out.find("# memory per rank (fp32, 2 data-parallel ranks)"), std::string::npos) << whole.out;
  EXPECT_NE(sharded.out.find("(ZeRO-1, 1/2)"), std::string::npos) << sharded.out;
  const double whole_total = plan_total(whole.out), sharded_total = plan_total(sharded.out);
  ASSERT_GT(sharded_total, 0) << sharded.out;
  ASSERT_GT(whole_total, sharded_total * 1.05) << whole.out << sharded.out;

  // A GPU with room for the sharded layout only: the whole one is refused, naming ZeRO-1.
  const std::string between = std::to_string(int64_t((whole_total + sharded_total) / 2 / 1024)) + "K";
  auto refused = run_cli(two + " +run.gpu_memory=" + between, env);
  EXPECT_NE(refused.rc, 0);
  EXPECT_NE(refused.err.find("the job does not fit in memory: a rank needs"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("(gpu_memory = " + between + ", one GPU per rank)"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("shard the optimizer state (parallel.zero = 1"), std::string::npos) << refused.err;
  auto fits = run_cli(two + " +parallel.zero=1 +run.gpu_memory=" + between, env);
  EXPECT_EQ(fits.rc, 0) << fits.err;
  EXPECT_NE(fits.out.find(" (gpu_memory = " + between + ", one GPU per rank)"), std::string::npos) << fits.out;

  // A real run is refused the same way, before its job folder exists.
  auto run = run_cli("run nano3 pretrain -c tiny +run.gpu_memory=1M", env);
  EXPECT_NE(run.rc, 0);
  EXPECT_NE(run.err.find("the job does not fit in memory"), std::string::npos) << run.err;
  EXPECT_FALSE(fs::exists(dir / "jobs"));
  auto bad = run_cli("run nano3 pretrain -c tiny --dry-run +run.gpu_memory=lots", env);
  EXPECT_NE(bad.rc, 0);
  EXPECT_NE(bad.err.find("gpu_memory = \"lots\": not a memory size"), std::string::npos) << bad.err;
}
