// The last checkpoint of a pretraining run with the shipped `tiny` model (its [model] table as
// it is: tied embeddings) loads in transformers as a new user loads it, AutoModelForCausalLM
// and AutoTokenizer, with no missing key, and gives the validation loss nemokit logged on the
// same windows. The run is short (4 steps on a slice of the Bible, the tiny config's own
// 4096-id tokenizer trained on it) so the test stays quick.
#include "bible_slice.hpp"
#include "run_cli.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "nemokit/runtime/checkpoint.hpp"
#include "nemokit/runtime/data/gpt_dataset.hpp"
#include "nemokit/runtime/safetensors.hpp"
#include "nemokit/runtime/tokenizer.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using nemokit::test::run_cli;
using nemokit::test::read_file;
namespace rt = nemokit::rt;

namespace {

constexpr int64_t kSeq = 128, kRows = 8, kEvalSteps = 2, kSteps = 4;  // the tiny config's windows
constexpr uint64_t kSeed = 1234;

fs::path write_config(const fs::path& dir) {
  const fs::path text = nemokit::test::write_bible_slice(dir);
  fs::path cfg = dir / "tiny-short.toml";
  std::ofstream(cfg) << "defaults = [\"tiny\"]\n"
                        "[train]\nmax_steps = " << kSteps << "\neval_interval = " << kSteps << "\neval_steps = " << kEvalSteps
                     << "\nsave_interval = " << kSteps << "\nseed = " << kSeed << "\nsample_tokens = 4\n"
                        "[data]\ninputs = [\"" << text.string() << "\"]\n"
                        "output = \"" << (dir / "data").string() << "\"\n"
                        "[checkpoint]\ndir = \"" << (dir / "ckpt").string() << "\"\n";
  return cfg;
}

double logged_val_loss(const fs::path& jobs_root) {
  for (const auto& job : fs::directory_iterator(jobs_root)) {
    std::ifstream in(job.path() / "metrics.jsonl");
    for (std::string line; std::getline(in, line);)
      if (json m = json::parse(line); m.contains("val_loss") && m["step"] == kSteps) return m["val_loss"].get<double>();
  }
  return -1;
}

rt::Tensor ids_tensor(const std::vector<int32_t>& ids, std::vector<int64_t> shape) {
  rt::Tensor t = rt::Tensor::empty(std::move(shape), rt::DType::i64);
  for (size_t i = 0; i < ids.size(); ++i) t.data<int64_t>()[i] = ids[i];
  return t;
}

}  // namespace

TEST(PretrainTransformers, TinyRunsLastCheckpointGivesTheValidationLossInTransformers) {
  if (!fs::exists(nemokit::test::kjv_bible()))
    GTEST_FAIL() << nemokit::test::kjv_bible() << " missing: run scripts/setup.sh (it extracts the corpus)";
  fs::path dir = nemokit::test::temp_folder("pt-transformers");
  auto r = run_cli("run nano3 pretrain -c " + write_config(dir).string(), "NEMOKIT_JOB_ROOT=" + (dir / "jobs").string());
  ASSERT_EQ(r.rc, 0) << r.err;
  const double logged = logged_val_loss(dir / "jobs");
  ASSERT_GT(logged, 0) << "no val_loss at step " << kSteps;

  const fs::path ckpt = dir / "ckpt" / "step_0000004";
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"})
    EXPECT_TRUE(fs::exists(ckpt / f)) << f;
  auto model = rt::load_pretrained(ckpt.string());
  ASSERT_TRUE(model->config().tie_word_embeddings) << "the tiny config ties its head";

  // The validation windows of the run, as the stage draws them, and nemokit's loss on them.
  auto sampler = rt::open_blended_sampler(rt::read_blend_split(dir / "data" / "blend.json", "valid"), kSeq, kSeed ^ 0x5eed);
  std::vector<int32_t> inputs, targets;
  double loss_sum = 0;
  int64_t tokens = 0;
  for (int64_t s = 0; s < kEvalSteps; ++s) {
    std::vector<int32_t> windows = sampler.next_batch(size_t(kRows));
    rt::Batch b;
    b.batch = kRows, b.seq = kSeq;
    for (int64_t row = 0; row < kRows; ++row) {
      const int32_t* w = windows.data() + row * (kSeq + 1);
      b.input_ids.insert(b.input_ids.end(), w, w + kSeq);
      b.targets.insert(b.targets.end(), w + 1, w + kSeq + 1);
    }
    rt::StepResult res = model->forward_backward(b, rt::LossOptions{}, /*backward=*/false);
    loss_sum += res.loss_sum;
    tokens += res.tokens;
    inputs.insert(inputs.end(), b.input_ids.begin(), b.input_ids.end());
    targets.insert(targets.end(), b.targets.begin(), b.targets.end());
  }
  const double loss = loss_sum / double(tokens);
  EXPECT_NEAR(loss, logged, 1e-9 * logged) << "these are not the windows the run validated on";
  std::printf("nemokit validation loss %.9f over %lld tokens (logged %.9f)\n", loss, (long long)tokens, logged);

  const std::string sample = "In the beginning God created the heaven and the earth.<|endoftext|>";
  const std::vector<int32_t> sample_ids = rt::Tokenizer::load(ckpt / "tokenizer.json").encode(sample);
  rt::Tensor loss_t = rt::Tensor::empty({1});
  loss_t.f32()[0] = float(loss);
  const fs::path reference = dir / "reference.safetensors";
  rt::write_safetensors(reference.string(),
                        {{"input_ids", ids_tensor(inputs, {kEvalSteps * kRows, kSeq})},
                         {"targets", ids_tensor(targets, {kEvalSteps * kRows, kSeq})},
                         {"loss", loss_t},
                         {"sample_text", ids_tensor(std::vector<int32_t>(sample.begin(), sample.end()), {int64_t(sample.size())})},
                         {"sample_ids", ids_tensor(sample_ids, {int64_t(sample_ids.size())})}});

  // transformers' side: make_nemotronh_fixture.py --check (77: torch or transformers missing).
  if (std::string(NEMOKIT_PYTHON).empty()) GTEST_SKIP() << "no python3 was found when configuring: the transformers side cannot run";
  const fs::path log = dir / "check.txt";
  const std::string cmd = "'" NEMOKIT_PYTHON "' '" NEMOKIT_SOURCE_DIR "/tests/runtime/make_nemotronh_fixture.py' --check '" +
                          ckpt.string() + "' --reference '" + reference.string() + "' >'" + log.string() + "' 2>&1";
  const int st = std::system(cmd.c_str());
  const int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  const std::string out = read_file(log);
  if (rc == 77) GTEST_SKIP() << out;
  EXPECT_EQ(rc, 0) << out;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);)  // the measured agreement, for the log
    if (line.rfind("transformers loss", 0) == 0 || line.rfind("AutoTokenizer", 0) == 0) std::cout << line << "\n";
  if (rc == 0) fs::remove_all(dir);
}
