// Generation: greedy decoding agrees with the full forward pass, sampling is reproducible
// and independent of batching, stop tokens end a sequence; the model CLI drives it.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "nemokit/runtime/checkpoint.hpp"
#include "nemokit/runtime/generate.hpp"
#include "nemokit/runtime/model_cli.hpp"
#include "nemokit/runtime/tokenizer.hpp"
#include "scratch_path.hpp"
#include "tiny_model.hpp"

using namespace nemokit::rt;
using namespace nemokit::rt::testing;
namespace fs = std::filesystem;

namespace {
std::string scratch(const std::string& name) { return scratch_path("runtime_generate_test", name); }
}  // namespace

TEST(runtime_generate, GreedyDecodingFollowsFullForwardArgmax) {
  NemotronH model(tiny_config("M*E-M"));
  model.init_weights(12);
  std::vector<int32_t> prompt = {3, 17, 5, 9, 30};
  SamplingOptions o;
  o.temperature = 0, o.max_new_tokens = 10;
  auto out = generate(model, {prompt}, o)[0];
  ASSERT_EQ(out.size(), 10u);
  std::vector<int32_t> seq = prompt;
  for (int32_t tok : out) {
    Batch b;
    b.batch = 1, b.seq = int64_t(seq.size()), b.input_ids = seq;
    const Tensor& logits = model.forward(b);
    const float* last = logits.f32() + (b.seq - 1) * 32;
    EXPECT_EQ(tok, int32_t(std::max_element(last, last + 32) - last));
    seq.push_back(tok);
  }
}

TEST(runtime_generate, SamplingIsSeededAndIndependentOfTheBatch) {
  NemotronH model(tiny_config("M*E-M"));
  model.init_weights(13);
  std::vector<std::vector<int32_t>> prompts = {{1, 2, 3, 4, 5, 6, 7}, {8, 9}, {10, 11, 12, 13}};
  SamplingOptions o;
  o.temperature = 0.9f, o.top_k = 8, o.top_p = 0.95f, o.seed = 42, o.max_new_tokens = 12;
  auto batched = generate(model, prompts, o);
  for (size_t i = 0; i < prompts.size(); ++i) {
    // Same slot, different company: the other prompts change, sequence i must not.
    std::vector<std::vector<int32_t>> other = {{20, 21}, {22, 23, 24, 25, 26, 27, 28, 29, 30}, {31}};
    other[i] = prompts[i];
    EXPECT_EQ(generate(model, other, o)[i], batched[i]) << "prompt " << i;
  }
  EXPECT_EQ(generate(model, prompts, o), batched);
  o.seed = 43;
  EXPECT_NE(generate(model, prompts, o), batched);
}

TEST(runtime_generate, StopTokenEndsTheSequence) {
  NemotronH model(tiny_config("M*"));
  model.init_weights(14);
  SamplingOptions o;
  o.temperature = 0, o.max_new_tokens = 12;
  auto free_run = generate(model, {{4, 5, 6}}, o)[0];
  int32_t stop = free_run[3];
  o.stop_tokens = {stop};
  auto stopped = generate(model, {{4, 5, 6}}, o)[0];
  size_t first = size_t(std::find(free_run.begin(), free_run.end(), stop) - free_run.begin());
  ASSERT_EQ(stopped.size(), first + 1);
  EXPECT_EQ(stopped.back(), stop);
}

TEST(runtime_generate, TopKAndTopPRestrictTheDraw) {
  std::vector<float> logits = {0.0f, 3.0f, 1.0f, 2.9f, -1.0f, 0.5f};
  Rng rng(1);
  SamplingOptions o;
  o.temperature = 1.0f, o.top_k = 2;
  std::vector<int> seen(6, 0);
  for (int i = 0; i < 2000; ++i) ++seen[sample_token(logits.data(), 6, o, rng)];
  EXPECT_EQ(seen[0] + seen[2] + seen[4] + seen[5], 0);
  // p(1) / p(3) = e^0.1 within sampling noise
  EXPECT_NEAR(double(seen[1]) / seen[3], std::exp(0.1), 0.12);
  o.top_k = 0, o.top_p = 0.3f;  // the top token alone holds more than 30%
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sample_token(logits.data(), 6, o, rng), 1);
  o.top_p = 1.0f, o.temperature = 0;
  EXPECT_EQ(sample_token(logits.data(), 6, o, rng), 1);
}

TEST(runtime_generate, ModelCliInitAndGenerate) {
  std::string cfg = scratch("config.json"), dir = scratch("cli_model");
  std::ofstream(cfg) << tiny_config("M*E-").to_json().dump();
  ::testing::internal::CaptureStdout();
  ASSERT_EQ(model_command({"init", "--config", cfg, "--out", dir, "--seed", "7"}), 0);
  ::testing::internal::GetCapturedStdout();
  ASSERT_TRUE(fs::exists(dir + "/model.safetensors"));

  ::testing::internal::CaptureStdout();
  int rc = model_command({"generate", dir, "--prompt-ids", "1 2 3", "--max-new-tokens", "6", "--temperature", "0",
                          "--stop-ids", "31"});
  std::string printed = ::testing::internal::GetCapturedStdout();
  ASSERT_EQ(rc, 0);
  auto model = load_pretrained(dir);
  SamplingOptions o;
  o.temperature = 0, o.max_new_tokens = 6, o.stop_tokens = {31};
  auto expect = generate(*model, {{1, 2, 3}}, o)[0];
  std::string line;
  for (size_t i = 0; i < expect.size(); ++i) line += (i ? " " : "") + std::to_string(expect[i]);
  EXPECT_EQ(printed, line + "\n");

  ::testing::internal::CaptureStderr();
  EXPECT_EQ(model_command({"generate", dir, "--prompt-ids", "1 x"}), 2);
  EXPECT_NE(::testing::internal::GetCapturedStderr().find("'x' is not a token id"), std::string::npos);
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(model_command({"init", "--config", scratch("missing.json"), "--out", dir}), 1);
  EXPECT_NE(::testing::internal::GetCapturedStderr().find("missing.json"), std::string::npos);
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(model_command({"train"}), 2);
  EXPECT_NE(::testing::internal::GetCapturedStderr().find("unknown subcommand train (expected: generate, init, export"),
            std::string::npos);
}

TEST(runtime_generate, ModelCliGeneratesTextThroughATokenizer) {
  std::string text = scratch("corpus.txt");
  {
    std::ofstream out(text);
    for (int i = 0; i < 50; ++i) out << "the quick brown fox jumps over the lazy dog " << i << "\n";
  }
  BpeTrainOptions bo;
  bo.vocab_size = 300;
  Tokenizer tok = train_bpe({text}, bo);
  std::string tok_path = scratch("tokenizer.json");
  tok.save(tok_path);
  NemotronHConfig c = tiny_config("M*");
  c.vocab_size = tok.vocab_size();
  std::string cfg = scratch("config_tok.json"), dir = scratch("cli_model_tok");
  std::ofstream(cfg) << c.to_json().dump();
  ::testing::internal::CaptureStdout();
  ASSERT_EQ(model_command({"init", "--config", cfg, "--out", dir}), 0);
  ::testing::internal::GetCapturedStdout();

  ::testing::internal::CaptureStdout();
  int rc = model_command({"generate", dir, "--prompt", "the quick brown", "--tokenizer", tok_path, "--temperature", "0",
                          "--max-new-tokens", "5", "--stop-ids", "0"});
  std::string printed = ::testing::internal::GetCapturedStdout();
  ASSERT_EQ(rc, 0);
  auto model = load_pretrained(dir);
  SamplingOptions o;
  o.temperature = 0, o.max_new_tokens = 5, o.stop_tokens = {0};
  auto ids = generate(*model, {tok.encode("the quick brown")}, o)[0];
  EXPECT_EQ(printed, tok.decode(ids) + "\n");
}
