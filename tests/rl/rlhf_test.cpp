// The reward model: the Bradley-Terry loss against hand-computed values, its gradient through
// the scalar head and the backbone against finite differences, the preference pairs built from
// tasks, the checkpoint round trip, and training that ranks unseen pairs well above chance.
#include "rlhf/bradley_terry.hpp"
#include "rlhf/preference_pairs.hpp"
#include "rlhf/reward_model.hpp"
#include "rlhf/reward_model_training.hpp"

#include "grad_check.hpp"
#include "nemokit/runtime/checkpoint.hpp"
#include "tiny_model.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <unistd.h>

namespace fs = std::filesystem;
using nlohmann::json;
using namespace nemokit::rl;
using namespace nemokit::rt;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("nemokit-rlhf-test-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// A tiny causal LM saved as a checkpoint, then turned into a reward model.
RewardModel tiny_reward_model(const std::string& name, uint64_t seed, const char* pattern = "M*E-M") {
  NemotronH lm(nemokit::rt::testing::tiny_config(pattern));
  lm.init_weights(seed);
  const fs::path dir = temp_dir(name) / "lm";
  save_pretrained(lm, dir.string());
  return RewardModel::from_language_model(dir, seed + 1);
}

// For tests without a tokenizer: the task's "ids" then the response's ids ("3 17 4").
std::vector<int32_t> ids_of(const json& task, const std::string& response) {
  std::vector<int32_t> ids = task.at("ids").get<std::vector<int32_t>>();
  std::istringstream in(response);
  for (int32_t t; in >> t;) ids.push_back(t);
  return ids;
}

}  // namespace

TEST(rl_rlhf, BradleyTerryMatchesHandComputedValues) {
  // margin 1.5: loss = log(1 + e^-1.5) = 0.2014133, sigmoid(-1.5) = 0.1824255
  PairLoss p = bradley_terry(2.0, 0.5);
  EXPECT_NEAR(p.loss, 0.2014133, 1e-7);
  EXPECT_NEAR(p.d_chosen, -0.1824255, 1e-7);
  EXPECT_NEAR(p.d_rejected, 0.1824255, 1e-7);
  // a tie: log 2, gradients -/+ 1/2
  p = bradley_terry(0.3, 0.3);
  EXPECT_NEAR(p.loss, 0.6931472, 1e-7);
  EXPECT_DOUBLE_EQ(p.d_chosen, -0.5);
  // margin -100 (badly wrong): loss 100 + log(1 + e^-100) = 100, gradient -1; no overflow
  p = bradley_terry(-50.0, 50.0);
  EXPECT_DOUBLE_EQ(p.loss, 100.0);
  EXPECT_DOUBLE_EQ(p.d_chosen, -1.0);
  // margin +100: loss e^-100 (tiny but not 0 or negative)
  p = bradley_terry(50.0, -50.0);
  EXPECT_GT(p.loss, 0.0);
  EXPECT_NEAR(p.loss, std::exp(-100.0), 1e-50);
  // the gradient is the loss's derivative
  const double h = 1e-6;
  EXPECT_NEAR(bradley_terry(0.7, -0.2).d_chosen,
              (bradley_terry(0.7 + h, -0.2).loss - bradley_terry(0.7 - h, -0.2).loss) / (2 * h), 1e-8);
}

TEST(rl_rlhf, PairLossGradientMatchesFiniteDifferencesThroughHeadAndBackbone) {
  RewardModel rm = tiny_reward_model("grad", 7);
  for (Parameter* p : rm.backbone().parameters())  // time steps near 0.7: A_log/dt_bias gradients above rounding
    if (p->name.find("dt_bias") != std::string::npos)
      for (int64_t i = 0; i < p->value.numel(); ++i) p->value.f32()[i] = 0.1f * float(i);
  // Two pairs of different lengths: padding must not leak into the scores.
  const std::vector<std::vector<int32_t>> rows = {{1, 5, 9, 2}, {1, 5, 9, 3, 3, 7}, {4, 4, 8}, {4, 4, 8, 30, 12}};
  auto objective = [&] {
    const std::vector<double> r = rm.forward(rows, false);
    return bradley_terry(r[0], r[1]).loss + bradley_terry(r[2], r[3]).loss;
  };
  for (Parameter* p : rm.parameters())
    if (p->grad.defined()) p->grad.zero();
  const std::vector<double> r = rm.forward(rows, true);
  const PairLoss a = bradley_terry(r[0], r[1]), b = bradley_terry(r[2], r[3]);
  rm.add_gradient({a.d_chosen, a.d_rejected, b.d_chosen, b.d_rejected});
  int checked = 0;
  for (Parameter* p : rm.parameters()) {
    if (p->buffer || p->name.find("lm_head") != std::string::npos) continue;
    std::vector<float> analytic(p->grad.f32(), p->grad.f32() + p->grad.numel());
    const bool log_scale = p->name.find("A_log") != std::string::npos || p->name.find("dt_bias") != std::string::npos;
    // The embedding: the rows of tokens the rows use (4 and 9), where the gradient lives.
    const int64_t d = rm.backbone().config().hidden_size;
    const bool embedding = p->name == "backbone.embeddings.weight";
    for (int64_t row : embedding ? std::vector<int64_t>{4, 9} : std::vector<int64_t>{-1}) {
      const int64_t at = row < 0 ? 0 : row * d, n = row < 0 ? p->value.numel() : d;
      nemokit::rt::testing::expect_grad_matches(p->name, p->value.f32() + at, size_t(n), analytic.data() + at, objective,
                                                log_scale ? 1e-2f : 2e-3f, 3e-2, 8);
    }
    ++checked;
  }
  EXPECT_GT(checked, 30);
  // Each score reads its own row's last real token: scoring a row alone gives the same value.
  EXPECT_NEAR(rm.forward({rows[2]}, false)[0], r[2], 1e-5);
}

TEST(rl_rlhf, PairsComeFromTheTasksRightAndWrongAnswers) {
  std::vector<json> tasks = {
      {{"prompt", "capital?"}, {"expected_answer", "C"}, {"environment", "multiple_choice"}, {"task", "capitals"},
       {"choices", {"Lome", "Riga", "Kabul", "Cairo"}}},
      {{"prompt", "What is 7 + 5?"}, {"expected_answer", "12"}, {"environment", "arithmetic"}},
      {{"prompt", "unscramble"}, {"expected_answer", "judge"}, {"environment", "unscramble"}, {"letters", "edguj"}},
      {{"prompt", "patch"}, {"expected_answer", "x"}, {"environment", "code_execution"}},  // no wrong answers to make
  };
  std::vector<PreferencePair> pairs = preference_pairs(tasks, 3, nullptr, "t.jsonl");
  std::vector<std::string> mc, arith, words;
  for (const auto& p : pairs) {
    EXPECT_EQ(p.chosen, p.task->at("expected_answer").get<std::string>());
    if (p.kind == "capitals") mc.push_back(p.rejected);
    if (p.kind == "arithmetic") arith.push_back(p.rejected);
    if (p.kind == "unscramble") words.push_back(p.rejected);
  }
  std::sort(mc.begin(), mc.end());
  EXPECT_EQ(mc, (std::vector<std::string>{"A", "B", "D"}));
  ASSERT_EQ(arith.size(), 3u);  // 3 of 13, 11, 14, 22
  for (const auto& w : arith) EXPECT_TRUE(w == "13" || w == "11" || w == "14" || w == "22") << w;
  std::sort(words.begin(), words.end());
  EXPECT_EQ(words, (std::vector<std::string>{"edguj", "egduj"}));
  EXPECT_EQ(pairs.size(), 8u);
  // A checker that rewards "B" as well (say, a second right letter) drops that pair.
  auto check = [](const json& t, const std::string& r) { return r == t["expected_answer"] || r == "B" ? 1.0 : 0.0; };
  EXPECT_EQ(preference_pairs(tasks, 3, check, "t.jsonl").size(), 7u);
  // A record the builder cannot read names its file and line.
  std::vector<json> bad = {tasks[1], {{"prompt", "x"}, {"expected_answer", "twelve"}, {"environment", "arithmetic"}}};
  try {
    preference_pairs(bad, 3, nullptr, "bad.jsonl");
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("expected_answer"), std::string::npos) << e.what();
  }
}

TEST(rl_rlhf, CheckpointHasTheHeadAndScoresTheSameAfterLoading) {
  RewardModel rm = tiny_reward_model("save", 3);
  const fs::path dir = temp_dir("save") / "rm";
  rm.save(dir);
  json c = json::parse(std::ifstream(dir / "config.json"));
  EXPECT_EQ(c["architectures"], json::array({"NemotronHForSequenceClassification"}));
  EXPECT_EQ(c["num_labels"], 1);
  SafetensorsFile f = SafetensorsFile::open((dir / "model.safetensors").string());
  ASSERT_NE(f.find("score.weight"), nullptr);
  EXPECT_EQ(f.find("score.weight")->shape, (std::vector<int64_t>{1, 16}));
  EXPECT_TRUE(RewardModel::is_reward_model(dir));
  RewardModel back = RewardModel::load(dir);
  const std::vector<std::vector<int32_t>> rows = {{3, 1, 4, 1, 5}, {9, 2, 6}};
  // Equal bit for bit in the same batches; in a batch of another shape (2 rows, padded) a BLAS may
  // round differently (OpenBLAS's Haswell kernels do), so there within float rounding.
  const auto a = rm.score(rows, 1), a2 = rm.score(rows, 2), b = back.score(rows, 1), b2 = back.score(rows, 2);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a2, b2);
  for (size_t i = 0; i < 2; ++i) EXPECT_NEAR(a[i], a2[i], 1e-5 * std::abs(a[i])) << i;
  // A causal LM's folder is not a reward model: the error names its config.
  try {
    RewardModel::load(temp_dir("save") / "lm");
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos) << e.what();
  }
}

TEST(rl_rlhf, TrainingRanksUnseenPairsWellAboveChance) {
  // Preferences with a rule to find: the response token that is the prompt's last token plus
  // one (mod 32) is preferred over any other. Held-out pairs use prompts never trained on.
  std::mt19937 gen(11);
  std::uniform_int_distribution<int32_t> tok(0, 31);
  auto make = [&](size_t n) {
    std::vector<json> tasks;
    for (size_t i = 0; i < n; ++i) {
      std::vector<int32_t> ids = {tok(gen), tok(gen), tok(gen)};
      const int32_t right = (ids.back() + 1) % 32;
      int32_t wrong = tok(gen);
      if (wrong == right) wrong = (wrong + 7) % 32;
      tasks.push_back({{"ids", ids}, {"right", std::to_string(right)}, {"wrong", std::to_string(wrong)}});
    }
    return tasks;
  };
  const std::vector<json> train_tasks = make(400), test_tasks = make(120);
  auto pairs_of = [](const std::vector<json>& tasks) {
    std::vector<PreferencePair> p;
    for (const json& t : tasks) p.push_back({&t, t["right"].get<std::string>(), t["wrong"].get<std::string>(), "rule"});
    return p;
  };
  const auto train = pairs_of(train_tasks), test = pairs_of(test_tasks);
  RewardModel rm = tiny_reward_model("train", 5, "*-");
  const PairAccuracy before = pair_accuracy(rm, test, ids_of, 32);
  RewardTrainOptions o;
  o.steps = 300;
  o.batch_pairs = 16;
  o.lr = 3e-3;
  o.eval_interval = 0;
  std::vector<double> losses;
  const PairAccuracy after = train_reward_model(rm, train, test, ids_of, o, [&](int64_t, double loss, const PairAccuracy*) {
    losses.push_back(loss);
  });
  ASSERT_EQ(losses.size(), 300u);
  double first = 0, last = 0;
  for (int i = 0; i < 30; ++i) first += losses[size_t(i)] / 30, last += losses[losses.size() - 1 - size_t(i)] / 30;
  EXPECT_LT(last, 0.5 * first) << "train loss " << first << " -> " << last;
  EXPECT_EQ(after.pairs, 120);
  EXPECT_GE(after.accuracy, 0.8) << "held-out accuracy " << before.accuracy << " -> " << after.accuracy;
  EXPECT_GT(after.accuracy, before.accuracy + 0.2);
}
