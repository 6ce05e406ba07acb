// `nemokit data prep nano3 sft` and `nemokit run nano3|super3 sft` as a user runs them: real chats
// (the ones scripts/setup.sh makes from Debian's packages), a base model made by `nemokit model
// init` with a tokenizer trained by `nemokit tokenizer train`, a few steps each.
#include "run_cli.hpp"
#include "tensor_compare.hpp"
#include "tiny_chat_model.hpp"

#include "nemokit/runtime/safetensors.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <tuple>
#include "support/numpy_python.hpp"
#include "support/setup_data.hpp"

namespace fs = std::filesystem;
using nemokit::test::read_file;
using nemokit::test::run_cli;
using nlohmann::json;

namespace {

fs::path chats_dir() { return nemokit::test::setup_data_dir("NEMOKIT_SFT_CHATS_DIR", "sft-chats"); }

void head(const fs::path& from, const fs::path& to, int lines) {
  std::ifstream in(from);
  std::ofstream out(to);
  std::string line;
  for (int i = 0; i < lines && std::getline(in, line); ++i) out << line << "\n";
}

std::vector<json> metrics_of(const fs::path& job) {
  std::vector<json> out;
  std::ifstream in(job / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

// The newest job folder under root.
fs::path last_job(const fs::path& root) {
  std::vector<fs::path> jobs;
  for (const auto& e : fs::directory_iterator(root)) jobs.push_back(e.path());
  std::sort(jobs.begin(), jobs.end());
  return jobs.empty() ? fs::path() : jobs.back();
}

class SftStage : public ::testing::Test {
 protected:
  static inline fs::path base, model, chats;

  static void SetUpTestSuite() {
    base = nemokit::test::temp_folder("sft-stage");
    chats = base / "chats";
    fs::create_directories(chats);
    ASSERT_TRUE(fs::exists(chats_dir() / "train.jsonl")) << "run scripts/setup.sh: it writes " << chats_dir();
    head(chats_dir() / "train.jsonl", chats / "train.jsonl", 600);
    head(chats_dir() / "val.jsonl", chats / "val.jsonl", 60);
    head(chats_dir() / "eval.jsonl", chats / "eval.jsonl", 400);
    json cfg = {{"hybrid_override_pattern", "ME*-"},
                {"hidden_size", 48},
                {"vocab_size", 600},
                {"mamba_num_heads", 4},
                {"mamba_head_dim", 24},
                {"ssm_state_size", 8},
                {"n_groups", 2},
                {"conv_kernel", 4},
                {"chunk_size", 16},
                {"num_attention_heads", 4},
                {"num_key_value_heads", 2},
                {"head_dim", 16},  // one the GPU's attention kernel takes (TrainsOnTheCudaPathLikeTheCpu)
                {"intermediate_size", 96},
                {"n_routed_experts", 4},
                {"num_experts_per_tok", 2},
                {"moe_intermediate_size", 32},
                {"moe_shared_expert_intermediate_size", 48},
                {"tie_word_embeddings", true}};
    model = base / "base-model";
    // The tokenizer is trained on the chats themselves.
    nemokit::test::make_tiny_chat_model(base, {chats / "train.jsonl"}, cfg, 3, model);
  }

  // A config over the shipped tiny one: this folder's model, chats and outputs, small steps.
  fs::path config(const std::string& name, const std::string& extra = "") {
    fs::path dir = base / name;
    fs::create_directories(dir);
    fs::path cfg = dir / "sft.toml";
    std::ofstream(cfg) << "defaults = [\"tiny\"]\n"
                          "[model]\ninit_from = \""
                       << model.string()
                       << "\"\n"
                          "[data]\ninputs = [\""
                       << (chats / "train.jsonl").string()
                       << "\"]\n"
                          "validation = [\""
                       << (chats / "val.jsonl").string()
                       << "\"]\n"
                          "pack_size = 256\noutput = \""
                       << (dir / "data").string()
                       << "\"\n"
                          "[train]\nmicro_batch_size = 2\nglobal_batch_size = 4\nmax_steps = 4\nwarmup_steps = 1\n"
                          "eval_interval = 2\neval_steps = 2\nsave_interval = 2\nlog_interval = 1\n"
                          "[eval]\nfile = \""
                       << (chats / "eval.jsonl").string()
                       << "\"\nmax_examples = 12\nmax_new_tokens = 12\n"
                          "[checkpoint]\ndir = \""
                       << (dir / "ckpt").string() << "\"\n"
                       << extra;
    return cfg;
  }
  std::string env(const std::string& name) {
    return "NEMOKIT_JOB_ROOT='" + (base / name / "jobs").string() + "' NEMOKIT_NUM_THREADS=2";
  }
  std::map<std::string, fs::path> expect_cuda_follows_cpu(const std::string& name, const std::string& extra);
};

// A checkpoint is resumed only by the run it belongs to: a config that now names other data, or
// another model, is refused with the difference named, and nothing is trained.
TEST_F(SftStage, ResumeRefusesOtherDataOrAnotherModel) {
  fs::path cfg = config("resume-check");
  ASSERT_EQ(run_cli("run nano3 sft -c '" + cfg.string() + "' train.max_steps=2", env("resume-check")).rc, 0);
  const fs::path ckpt = base / "resume-check" / "ckpt" / "step_0000002";
  ASSERT_TRUE(fs::exists(ckpt / "trainer_state.json"));

  const fs::path other = base / "resume-check" / "other-data";
  auto r = run_cli("run nano3 sft -c '" + cfg.string() + "' train.max_steps=4 data.output='" + other.string() + "'",
                   env("resume-check"));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("resuming from " + ckpt.string() + ": it was trained on " + (base / "resume-check" / "data").string() +
                       ", the config names " + other.string()),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("checkpoint.resume = false"), std::string::npos) << r.err;

  // The same tensors under another config (a different norm epsilon): another model all the same.
  const fs::path model2 = base / "resume-check" / "model2";
  fs::copy(model, model2, fs::copy_options::recursive);
  json mc = json::parse(read_file(model2 / "config.json"));
  mc["layer_norm_epsilon"] = 1e-3;
  std::ofstream(model2 / "config.json") << mc.dump(2);
  r = run_cli("run nano3 sft -c '" + cfg.string() + "' train.max_steps=4 model.init_from='" + model2.string() + "'",
              env("resume-check"));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("resuming from " + ckpt.string() +
                       ": the checkpoint holds another model than the config's (layer_norm_epsilon: "),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(" in the checkpoint, 0.00100000"), std::string::npos) << r.err;  // float32, as stored
  EXPECT_FALSE(fs::exists(base / "resume-check" / "ckpt" / "step_0000004"));

  // The run's own config still resumes.
  r = run_cli("run nano3 sft -c '" + cfg.string() + "' train.max_steps=4", env("resume-check"));
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("resumed from " + ckpt.string()), std::string::npos) << r.out;
}

TEST_F(SftStage, DataPrepWritesPackedSplitsThatTheStageReads) {
  fs::path cfg = config("prep");
  auto r = run_cli("data prep nano3 sft -c '" + cfg.string() + "'", env("prep"));
  ASSERT_EQ(r.rc, 0) << r.err;
  fs::path data = base / "prep" / "data";
  json meta = json::parse(read_file(data / "metadata.json"));
  EXPECT_EQ(meta["type"], "SFTDataArtifact");
  EXPECT_EQ(meta["pack_size"], 256);
  EXPECT_EQ(meta["packer"], "first_fit_shuffle");
  EXPECT_EQ(meta["splits"]["train"]["documents"], 600);
  EXPECT_EQ(meta["splits"]["validation"]["documents"], 60);
  EXPECT_GT(meta["splits"]["train"]["packing_efficiency"].get<double>(), 0.9);
  EXPECT_GT(meta["splits"]["train"]["trained_tokens"].get<int64_t>(), 0);
  EXPECT_LT(meta["splits"]["train"]["trained_tokens"].get<int64_t>(), meta["splits"]["train"]["tokens"].get<int64_t>());
  EXPECT_EQ(meta["tokenizer"]["sha256"].get<std::string>().size(), 64u);
  EXPECT_TRUE(fs::exists(data / "train" / "input_ids.npy"));
  EXPECT_FALSE(fs::exists(base / "prep" / "data.tmp"));
}

// numpy, as an independent reader, checks the layout and that every trained position's target
// is an assistant token of the same document. Without numpy the test says so as a skip.
TEST_F(SftStage, NumpyReadsThePackedSplits) {
  if (const std::string why = nemokit::test::numpy_skip_reason(); !why.empty()) GTEST_SKIP() << why;
  fs::path cfg = config("numpy");
  auto r = run_cli("data prep nano3 sft -c '" + cfg.string() + "'", env("numpy"));
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::string py = "'" + nemokit::test::numpy_python() + "' '" + std::string(NEMOKIT_SOURCE_DIR) +
                         "/tests/sft/check_packed_numpy.py' '" + (base / "numpy" / "data").string() + "'";
  const int rc = std::system(py.c_str());
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << py;
}

TEST_F(SftStage, BadRecordsNameTheFileAndLineOrAreCountedWhenSkipped) {
  fs::path dir = base / "bad";
  fs::create_directories(dir);
  fs::path bad = dir / "bad.jsonl";
  {
    std::ifstream in(chats / "train.jsonl");
    std::ofstream out(bad);
    std::string line;
    for (int i = 0; i < 2 && std::getline(in, line); ++i) out << line << "\n";
    out << R"({"messages": [{"role": "narrator", "content": "Once upon a time"}, {"role": "assistant", "content": "..."}]})"
        << "\n";
    out << R"({"messages": [{"role": "user"}, {"role": "assistant", "content": "no question"}]})"
        << "\n";
    for (int i = 0; i < 20 && std::getline(in, line); ++i) out << line << "\n";
  }
  fs::path cfg = config("bad", "");
  std::string over = " data.inputs='[\"" + bad.string() + "\"]'";
  auto r = run_cli("data prep nano3 sft -c '" + cfg.string() + "'" + over, env("bad"));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find(bad.string() + ":3"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("narrator"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(base / "bad" / "data" / "metadata.json"));

  r = run_cli("data prep nano3 sft -c '" + cfg.string() + "'" + over + " data.skip_bad_records=true", env("bad"));
  ASSERT_EQ(r.rc, 0) << r.err;
  json meta = json::parse(read_file(base / "bad" / "data" / "metadata.json"));
  EXPECT_EQ(meta["skipped_records"]["malformed conversation"], 2) << meta["skipped_records"].dump();
  EXPECT_EQ(meta["splits"]["train"]["documents"], 22);

  // A pack smaller than a record.
  r = run_cli("data prep nano3 sft -c '" + cfg.string() + "'" + over + " data.skip_bad_records=true data.pack_size=64",
              env("bad"));
  ASSERT_EQ(r.rc, 0) << r.err;
  meta = json::parse(read_file(base / "bad" / "data" / "metadata.json"));
  EXPECT_GT(meta["skipped_records"]["longer than pack_size"].get<int64_t>(), 0);
  r = run_cli("data prep nano3 sft -c '" + cfg.string() + "' data.pack_size=16", env("bad"));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("train.jsonl:1: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("pack_size"), std::string::npos) << r.err;
}

TEST_F(SftStage, TrainsEvaluatesCheckpointsAndResumesExactly) {
  // Straight through 6 steps, and 4 steps then a second run to 6: the same losses bit for bit
  // (a constant learning rate, so the shorter first run follows the same schedule).
  fs::path straight = config("straight", "");
  auto a = run_cli("run nano3 sft -c '" + straight.string() + "' train.max_steps=6 train.schedule=constant", env("straight"));
  ASSERT_EQ(a.rc, 0) << a.err;
  fs::path split = config("split");
  auto b1 = run_cli("run nano3 sft -c '" + split.string() + "' train.schedule=constant", env("split"));
  ASSERT_EQ(b1.rc, 0) << b1.err;
  EXPECT_TRUE(fs::exists(base / "split" / "ckpt" / "step_0000004" / "trainer_state.json"));
  auto b2 = run_cli("run nano3 sft -c '" + split.string() + "' train.max_steps=6 train.schedule=constant", env("split"));
  ASSERT_EQ(b2.rc, 0) << b2.err;
  EXPECT_NE(b2.out.find("resumed from"), std::string::npos) << b2.out;
  // Once more: nothing to do, and the run says so and where its model is.
  auto b3 = run_cli("run nano3 sft -c '" + split.string() + "' train.max_steps=6 train.schedule=constant", env("split"));
  ASSERT_EQ(b3.rc, 0) << b3.err;
  EXPECT_NE(b3.out.find("training is already complete at step 6: the model is in " +
                        (base / "split" / "ckpt" / "step_0000006").string()),
            std::string::npos)
      << b3.out;

  std::map<int64_t, std::string> straight_loss, split_loss;
  auto m = metrics_of(last_job(base / "straight" / "jobs"));
  for (const auto& l : m)
    if (l.contains("loss")) straight_loss[l["step"]] = l["loss"].dump();
  for (const auto& e : fs::directory_iterator(base / "split" / "jobs"))
    for (const auto& l : metrics_of(e.path()))
      if (l.contains("loss")) split_loss[l["step"]] = l["loss"].dump();
  ASSERT_EQ(straight_loss.size(), 6u);
  EXPECT_EQ(straight_loss, split_loss);

  // Evaluation before training and every eval_interval: validation loss and exact match per kind.
  int evals = 0;
  for (const auto& l : m)
    if (l.contains("val_loss")) {
      ++evals;
      EXPECT_TRUE(l.contains("exact_match")) << l.dump();
      EXPECT_TRUE(l["exact_match"].contains("define")) << l.dump();
      EXPECT_TRUE(l["exact_match"].contains("capital")) << l.dump();
    }
  EXPECT_EQ(evals, 4);  // steps 0, 2, 4, 6
  EXPECT_EQ(m.front()["step"], 0);
  EXPECT_LT(m.back()["val_loss"].get<double>(), m.front()["val_loss"].get<double>());
  EXPECT_TRUE(m.back().contains("samples"));
  EXPECT_NE(a.out.find("full fine-tuning"), std::string::npos) << a.out;
}

// train.device = "cuda" through the CUDA module built over the kernel emulator (tests/gpu): the
// same 4 steps as on the CPU within 3% per step (bf16 activations), and the evaluations, which
// read the CPU model, see the trained weights (the validation loss within 3% as well). `extra`:
// more config (LoRA). Returns the two runs' checkpoint folders after the last step.
std::map<std::string, fs::path> SftStage::expect_cuda_follows_cpu(const std::string& name, const std::string& extra) {
  std::map<std::string, std::vector<json>> runs;
  std::map<std::string, fs::path> ckpts;
  for (std::string device : {"cpu", "cuda"}) {
    const std::string run = name + "-" + device;
    fs::path cfg = config(run, extra);
    auto r = run_cli("run nano3 sft -c '" + cfg.string() + "' train.schedule=constant eval.max_examples=2 +train.device=" + device,
                     "NEMOKIT_CUDA_MODULE='" NEMOKIT_EMULATED_CUDA_MODULE "' " + env(run));
    EXPECT_EQ(r.rc, 0) << r.err;
    if (device == "cuda") EXPECT_NE(r.out.find(" on cuda;"), std::string::npos) << r.out;
    runs[device] = metrics_of(last_job(base / run / "jobs"));
    ckpts[device] = base / run / "ckpt" / "step_0000004";
  }
  auto by_step = [](const std::vector<json>& m, const char* key) {
    std::map<int64_t, double> out;
    for (const auto& l : m)
      if (l.contains(key)) out[l["step"].get<int64_t>()] = l[key].get<double>();
    return out;
  };
  for (const char* key : {"loss", "val_loss"}) {
    const auto cpu = by_step(runs["cpu"], key), gpu = by_step(runs["cuda"], key);
    EXPECT_EQ(cpu.size(), gpu.size()) << key;
    EXPECT_FALSE(cpu.empty()) << key;
    for (const auto& [step, c] : cpu)
      if (gpu.count(step)) EXPECT_NEAR(gpu.at(step), c, 0.03 * c) << key << " at step " << step;
  }
  return ckpts;
}

TEST_F(SftStage, TrainsOnTheCudaPathLikeTheCpu) { expect_cuda_follows_cpu("device", ""); }

// LoRA on the cuda path: the base frozen on the device, the adapters (Mamba's in_proj,
// attention's q and v, the MLP's and the shared expert's up projections; the routed experts have
// none on the GPU) trained there, and the checkpoint's adapters (written from the CPU model after
// the sync) close to the CPU run's: B starts at zero, so its values are all the training made.
TEST_F(SftStage, LoraTrainsOnTheCudaPathLikeTheCpu) {
  const auto ckpts = expect_cuda_follows_cpu(
      "lora-device",
      "[lora]\nenabled = true\nrank = 4\nalpha = 8\n"
      "targets = [\"q_proj\", \"v_proj\", \"in_proj\", \"mixer.up_proj\", \"shared_experts.up_proj\"]\n");
  auto a = nemokit::rt::SafetensorsFile::open((ckpts.at("cpu") / "model.safetensors").string());
  auto b = nemokit::rt::SafetensorsFile::open((ckpts.at("cuda") / "model.safetensors").string());
  int adapters = 0;
  for (const auto& e : a.entries()) {
    if (e.name.find("lora_B") == std::string::npos) continue;
    ++adapters;
    const nemokit::rt::Tensor x = a.load_f32(e.name), y = b.load_f32(e.name);
    double dot = 0, nx = 0, ny = 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double u = x.f32()[i], v = y.f32()[i];
      dot += u * v, nx += u * u, ny += v * v;
    }
    ASSERT_GT(ny, 0.0) << e.name << " is still zero in the cuda run's checkpoint";
    EXPECT_GT(dot / std::sqrt(nx * ny), 0.95) << e.name;
  }
  EXPECT_GT(adapters, 0);
}

// Data parallel: two ranks (under mpirun) with half the packs of each step each give the losses
// of one rank with all of them (the loss weights are counted over the whole global batch before
// the split) and, after 10 steps, the same weights (relative error below 1e-6 per tensor). The
// same for two expert-parallel ranks, each holding two of the four routed experts (the
// end-of-run generation then exchanges tokens between the ranks at every decoded position).
TEST_F(SftStage, TwoDataParallelRanksTrainAsOneRank) {
  const std::string common =
      " train.max_steps=10 train.global_batch_size=4 train.micro_batch_size=1 train.eval_interval=0"
      " train.save_interval=0 eval.max_examples=2";
  fs::path cfg1 = config("dp-one");
  auto one = run_cli("run nano3 sft -c '" + cfg1.string() + "'" + common, env("dp-one") + " NEMOKIT_NUM_THREADS=1");
  ASSERT_EQ(one.rc, 0) << one.err;
  std::map<int64_t, double> loss1;
  for (const auto& l : metrics_of(last_job(base / "dp-one" / "jobs")))
    if (l.contains("loss")) loss1[l["step"]] = l["loss"].get<double>();
  ASSERT_EQ(loss1.size(), 10u);
  for (const auto& [name, extra, banner] :
       {std::tuple<std::string, std::string, std::string>{"dp-two", "", "over 2 data-parallel ranks (mpi)"},
        {"ep-two", " +parallel.ep=2", "experts split over 2 ranks (expert parallel)"}}) {
    fs::path cfg2 = config(name);
    auto two = run_cli("run nano3 sft -c '" + cfg2.string() + "'" + common + " +run.nproc_per_node=2" + extra,
                       env(name) + " NEMOKIT_NUM_THREADS=1 NEMOKIT_COMM_TIMEOUT_S=60");
    ASSERT_EQ(two.rc, 0) << two.out << two.err;
    EXPECT_NE((two.out + two.err).find(banner), std::string::npos) << two.out << two.err;
    std::map<int64_t, double> loss2;
    for (const auto& l : metrics_of(last_job(base / name / "jobs")))
      if (l.contains("loss")) loss2[l["step"]] = l["loss"].get<double>();
    ASSERT_EQ(loss2.size(), 10u) << name << ": metrics.jsonl must hold each step once";
    for (const auto& [step, l] : loss1) EXPECT_NEAR(loss2[step], l, 1e-6 * std::abs(l)) << name << " step " << step;
    auto [worst, tensor] = nemokit::test::worst_tensor_error(base / "dp-one" / "ckpt" / "step_0000010" / "model.safetensors",
                                                             base / name / "ckpt" / "step_0000010" / "model.safetensors");
    EXPECT_LT(worst, 1e-6) << name << ": worst tensor " << tensor;
  }
}

// `--dry-run` plans a rank's memory from the model init_from names (its config.json) and the
// packs, and a job that cannot fit is refused before it starts, naming the keys that shrink it.
TEST_F(SftStage, DryRunPlansTheMemoryOfTheStartingModel) {
  fs::path cfg = config("plan");
  auto r = run_cli("run nano3 sft -c '" + cfg.string() + "' --dry-run", env("plan"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("# memory per rank (fp32, 1 rank): weights "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(micro batch 2 x 256 tokens)"), std::string::npos) << r.out;
  auto ep = run_cli("run nano3 sft -c '" + cfg.string() + "' --dry-run +run.nproc_per_node=2 +parallel.ep=2", env("plan"));
  ASSERT_EQ(ep.rc, 0) << ep.err;
  EXPECT_NE(ep.out.find("routed experts 1/2 per rank"), std::string::npos) << ep.out;
  auto small = run_cli("run nano3 sft -c '" + cfg.string() + "' +run.gpu_memory=1M", env("plan"));
  EXPECT_NE(small.rc, 0);
  EXPECT_NE(small.err.find("the job does not fit in memory"), std::string::npos) << small.err;
  EXPECT_NE(small.err.find("lower train.micro_batch_size or data.pack_size"), std::string::npos) << small.err;
  EXPECT_FALSE(fs::exists(base / "plan" / "jobs")) << "a refused job started";
}

TEST_F(SftStage, LoraTrainsOnlyTheAdaptersAndLeavesTheBaseWeights) {
  fs::path cfg = config(
      "lora", "[lora]\nenabled = true\nrank = 4\nalpha = 8\ntargets = [\"q_proj\", \"v_proj\", \"in_proj\", \"up_proj\"]\n");
  auto r = run_cli("run nano3 sft -c '" + cfg.string() + "' train.lr=0.01", env("lora"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("LoRA fine-tuning"), std::string::npos) << r.out;
  fs::path ckpt = base / "lora" / "ckpt" / "step_0000004";
  ASSERT_TRUE(fs::exists(ckpt / "adapter_config.json")) << r.err;
  auto tuned = nemokit::rt::SafetensorsFile::open((ckpt / "model.safetensors").string());
  auto orig = nemokit::rt::SafetensorsFile::open((model / "model.safetensors").string());
  int adapters = 0, base_tensors = 0;
  for (const auto& e : tuned.entries()) {
    if (e.name.find("lora_") != std::string::npos) {
      ++adapters;
      continue;
    }
    ASSERT_NE(orig.find(e.name), nullptr) << e.name;
    auto x = tuned.load_f32(e.name), y = orig.load_f32(e.name);
    if (e.name.find("e_score_correction_bias") != std::string::npos) continue;  // a buffer the router moves
    for (int64_t i = 0; i < x.numel(); ++i) ASSERT_EQ(x.f32()[i], y.f32()[i]) << e.name;
    ++base_tensors;
  }
  EXPECT_EQ(adapters, 2 * (1 + 1 + 1 + 1 + 4 + 1)) << "q, v, in_proj, the MLP's up, 4 experts' up, the shared expert's up";
  EXPECT_GT(base_tensors, 10);
  // The adapters moved: B starts at zero.
  bool moved = false;
  for (const auto& e : tuned.entries())
    if (e.name.find("lora_B") != std::string::npos) {
      auto t = tuned.load_f32(e.name);
      for (int64_t i = 0; i < t.numel(); ++i) moved |= t.f32()[i] != 0.0f;
    }
  EXPECT_TRUE(moved);
}

TEST_F(SftStage, Super3UsesSampleLevelNormalization) {
  fs::path cfg = config("super3", "");
  auto dry = run_cli("run super3 sft -c tiny --dry-run");
  ASSERT_EQ(dry.rc, 0) << dry.err;
  EXPECT_NE(dry.out.find("loss_normalization = \"sample\""), std::string::npos) << dry.out;
  auto r = run_cli("run super3 sft -c '" + cfg.string() + "' train.loss_normalization=\"sample\"", env("super3"));
  ASSERT_EQ(r.rc, 0) << r.err;
  auto m = metrics_of(last_job(base / "super3" / "jobs"));
  int steps = 0;
  for (const auto& l : m) steps += l.contains("loss");
  EXPECT_EQ(steps, 4);
}

TEST_F(SftStage, ConfigErrorsNameTheKey) {
  fs::path cfg = config("errors");
  auto r =
      run_cli("run nano3 sft -c '" + cfg.string() + "' model.init_from=\"" + (base / "nowhere").string() + "\"", env("errors"));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("model.init_from"), std::string::npos) << r.err;
  r = run_cli("run nano3 sft -c '" + cfg.string() + "' model.init_from=\"stage:nano3/pretrain\"", env("errors"));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("no completed job of nano3/pretrain"), std::string::npos) << r.err;
  r = run_cli("run nano3 sft -c '" + cfg.string() + "' +model.hidden_size=64", env("errors"));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("model.hidden_size: unknown key"), std::string::npos) << r.err;
  r = run_cli("run nano3 sft -c '" + cfg.string() + "' +train.warmup=3", env("errors"));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("train.warmup: unknown key"), std::string::npos) << r.err;
  r = run_cli("run nano3 sft -c '" + cfg.string() + "' data.packer=\"best_fit\"", env("errors"));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("data.packer"), std::string::npos) << r.err;
  // LoRA adapters stay on whole experts: with the experts split over ranks they are refused.
  r = run_cli("run nano3 sft -c '" + cfg.string() + "' +run.nproc_per_node=2 +parallel.ep=2 lora.enabled=true",
              env("errors") + " NEMOKIT_NUM_THREADS=1 NEMOKIT_COMM_TIMEOUT_S=60");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE((r.out + r.err).find("lora.enabled: LoRA adapters on experts split over ranks (parallel.ep = 2)"),
            std::string::npos)
      << r.out << r.err;
}

}  // namespace

namespace {

// `nemokit pipe nano3`: pretraining, then SFT starting from the model pretraining published to the
// artifact store (its checkpoint folder), every output in this test's folders (the tiny configs
// read their folders from the environment); the SFT model's lineage names the pretrained one.
TEST(SftPipe, Nano3PipeFineTunesThePretrainedCheckpoint) {
  fs::path dir = nemokit::test::temp_folder("sft-pipe");
  std::string env = "NEMOKIT_JOB_ROOT='" + (dir / "jobs").string() + "' NEMOKIT_DATA_DIR='" + (dir / "data").string() +
                    "' NEMOKIT_CHECKPOINT_DIR='" + (dir / "ckpt").string() + "' NEMOKIT_ARTIFACTS_ROOT='" +
                    (dir / "store").string() + "' NEMOKIT_NUM_THREADS=2";
  auto r = run_cli("pipe nano3 -c tiny train.max_steps=2", env);
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("# pipe nano3: nano3 pretrain -> nano3 sft\n"), std::string::npos) << r.out;
  const fs::path pretrained = dir / "ckpt" / "nano3-pretrain-tiny" / "step_0000002";
  EXPECT_NE(
      r.err.find("artifact model.init_from = \"nano3-pretrain-model:latest\" -> nano3-pretrain-model:v1: " + pretrained.string()),
      std::string::npos)
      << r.err;
  EXPECT_NE(r.out.find("fine-tuning of " + pretrained.string()), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(pretrained / "model.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "ckpt" / "nano3-sft-tiny" / "step_0000002" / "model.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "data" / "nano3-sft-tiny" / "metadata.json"));
  auto lineage = run_cli("artifacts lineage nano3-sft-model", env);
  ASSERT_EQ(lineage.rc, 0) << lineage.err;
  EXPECT_NE(lineage.out.find("nano3-pretrain-model:v1  ModelArtifact"), std::string::npos) << lineage.out;
}

}  // namespace
