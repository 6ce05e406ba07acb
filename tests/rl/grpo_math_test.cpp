// GRPO's arithmetic against values worked out by hand, and the surrogate's gradient (one
// weighted backward through the runtime) against finite differences of the true objective on a
// tiny model.
#include "grpo/grpo_math.hpp"
#include "grpo/policy.hpp"

#include "tiny_model.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace {
using namespace nemokit::rl;
namespace rt = nemokit::rt;

TEST(GrpoAdvantages, GroupMeanOverSampleStd) {
  // group 1: mean 0.5, sample std sqrt(1/3); group 2: all equal -> 0
  auto a = group_advantages({1, 0, 0, 1, 1, 1, 1, 1}, 4, AdvantageOptions{});
  const double s = 0.5 / std::sqrt(1.0 / 3.0);  // 0.8660254
  ASSERT_EQ(a.size(), 8u);
  EXPECT_NEAR(a[0], s, 1e-5);
  EXPECT_NEAR(a[1], -s, 1e-5);
  EXPECT_NEAR(a[2], -s, 1e-5);
  EXPECT_NEAR(a[3], s, 1e-5);
  for (int i = 4; i < 8; ++i) EXPECT_EQ(a[i], 0.0);
}

TEST(GrpoAdvantages, LeaveOneOutBaseline) {
  AdvantageOptions o;
  o.baseline = Baseline::LeaveOneOut;
  o.scale_by_std = false;
  auto a = group_advantages({1, 0, 0}, 3, o);  // baselines 0, 0.5, 0.5
  EXPECT_DOUBLE_EQ(a[0], 1.0);
  EXPECT_DOUBLE_EQ(a[1], -0.5);
  EXPECT_DOUBLE_EQ(a[2], -0.5);
  o.scale_by_std = true;  // divided by the group's std sqrt(1/3)
  a = group_advantages({1, 0, 0}, 3, o);
  EXPECT_NEAR(a[0], 1.0 / std::sqrt(1.0 / 3.0), 1e-5);
  EXPECT_NEAR(a[1], -0.5 / std::sqrt(1.0 / 3.0), 1e-5);
}

TEST(GrpoAdvantages, OneSampleGroupsAndBadSizes) {
  EXPECT_EQ(group_advantages({1, 0}, 1, AdvantageOptions{}), std::vector<double>({0, 0}));
  EXPECT_THROW(group_advantages({1, 0, 1}, 2, AdvantageOptions{}), std::invalid_argument);
}

TEST(GrpoSurrogate, ClipLowAndHighAreSeparate) {
  SurrogateOptions o;  // clip 0.2 / 0.28, no KL
  // r = 1: the plain policy gradient, weight A r
  TokenTerm t = token_term(-1.0, -1.0, kNoReference, 1.0, o);
  EXPECT_DOUBLE_EQ(t.loss, -1.0);
  EXPECT_DOUBLE_EQ(t.grad_weight, 1.0);
  EXPECT_FALSE(t.clipped);
  // A > 0, r = 1.5 > 1.28: held at 1.28, no gradient
  t = token_term(std::log(1.5), 0.0, kNoReference, 1.0, o);
  EXPECT_NEAR(t.loss, -1.28, 1e-12);
  EXPECT_EQ(t.grad_weight, 0.0);
  EXPECT_TRUE(t.clipped);
  // A > 0, r = 1.25 < 1.28: inside the high clip (it would be clipped by a symmetric 0.2)
  t = token_term(std::log(1.25), 0.0, kNoReference, 1.0, o);
  EXPECT_NEAR(t.loss, -1.25, 1e-12);
  EXPECT_NEAR(t.grad_weight, 1.25, 1e-12);
  // A < 0, r = 1.5: min(-1.5, -1.28) is the unclipped branch, which keeps its gradient
  t = token_term(std::log(1.5), 0.0, kNoReference, -1.0, o);
  EXPECT_NEAR(t.loss, 1.5, 1e-12);
  EXPECT_NEAR(t.grad_weight, -1.5, 1e-12);
  EXPECT_FALSE(t.clipped);
  // A < 0, r = 0.5 < 0.8: held at 0.8
  t = token_term(std::log(0.5), 0.0, kNoReference, -1.0, o);
  EXPECT_NEAR(t.loss, 0.8, 1e-12);
  EXPECT_EQ(t.grad_weight, 0.0);
  EXPECT_TRUE(t.clipped);
  // A > 0, r = 0.5: min(0.5, 0.8) is unclipped
  t = token_term(std::log(0.5), 0.0, kNoReference, 2.0, o);
  EXPECT_NEAR(t.loss, -1.0, 1e-12);
  EXPECT_NEAR(t.grad_weight, 1.0, 1e-12);
}

TEST(GrpoSurrogate, KlK3AndItsGradient) {
  SurrogateOptions o;
  o.kl_beta = 0.1;
  // lp = -1, ref = -2: k3 = e^-1 - (-1) - 1 = e^-1; d/dCE = beta (e^(ref-lp) - 1)
  TokenTerm t = token_term(-1.0, -1.0, -2.0, 0.0, o);
  EXPECT_NEAR(t.kl, std::exp(-1.0), 1e-12);
  EXPECT_NEAR(t.loss, 0.1 * std::exp(-1.0), 1e-12);
  EXPECT_NEAR(t.grad_weight, 0.1 * (std::exp(-1.0) - 1.0), 1e-12);
  // no reference: no KL whatever beta says
  t = token_term(-1.0, -1.0, kNoReference, 0.0, o);
  EXPECT_EQ(t.kl, 0.0);
  EXPECT_EQ(t.grad_weight, 0.0);
  // equal policies: k3 = 0 and no pull
  t = token_term(-3.0, -3.0, -3.0, 0.0, o);
  EXPECT_EQ(t.kl, 0.0);
  EXPECT_EQ(t.grad_weight, 0.0);
}

TEST(GrpoSurrogate, ClampedLogRatioStopsTheGradient) {
  SurrogateOptions o;
  o.max_log_ratio = 20;
  TokenTerm t = token_term(30.0, 0.0, kNoReference, -1.0, o);
  EXPECT_NEAR(t.ratio, std::exp(20.0), 1e-3 * std::exp(20.0));
  EXPECT_EQ(t.grad_weight, 0.0);
}

TEST(GrpoNormalization, TokenAndSequence) {
  auto t = sequence_scales({2, 0, 3}, LossNormalization::Token);
  EXPECT_DOUBLE_EQ(t[0], 0.2);
  EXPECT_DOUBLE_EQ(t[1], 0.0);
  EXPECT_DOUBLE_EQ(t[2], 0.2);
  auto s = sequence_scales({2, 0, 3}, LossNormalization::Sequence);
  EXPECT_DOUBLE_EQ(s[0], 1.0 / 4.0);  // 1 / (2 tokens * 2 responses)
  EXPECT_DOUBLE_EQ(s[1], 0.0);
  EXPECT_DOUBLE_EQ(s[2], 1.0 / 6.0);
}

TEST(GrpoBatch, TargetsCoverOnlyTheResponse) {
  Sample a, b;
  a.prompt = {1, 2, 3};
  a.response = {4, 5};
  b.prompt = {6};
  b.response = {7};
  rt::Batch batch = make_sample_batch({&a, &b});
  ASSERT_EQ(batch.seq, 4);
  EXPECT_EQ(batch.input_ids, std::vector<int32_t>({1, 2, 3, 4, 6, 0, 0, 0}));
  EXPECT_EQ(batch.targets, std::vector<int32_t>({-1, -1, 4, 5, 7, -1, -1, -1}));
  EXPECT_EQ(batch.pad, std::vector<uint8_t>({0, 0, 0, 0, 0, 1, 1, 1}));
}

// The true objective: sum over tokens of scale * (-min(rA, clip(r)A) + beta k3), from a forward.
double objective(rt::NemotronH& m, const std::vector<const Sample*>& samples, const UpdateOptions& o) {
  TokenScores cur = score_samples(m, samples, 8, false);
  std::vector<int64_t> lengths;
  for (const Sample* s : samples) lengths.push_back(int64_t(s->response.size()));
  auto scale = sequence_scales(lengths, o.normalization);
  double j = 0;
  for (size_t i = 0; i < samples.size(); ++i)
    for (size_t k = 0; k < samples[i]->response.size(); ++k)
      j += scale[i] * token_term(cur.lp[i][k], samples[i]->old_lp[k], samples[i]->ref_lp[k], samples[i]->advantage, o.surrogate).loss;
  return j;
}

class GrpoGradient : public ::testing::TestWithParam<LossNormalization> {};

TEST_P(GrpoGradient, WeightedBackwardMatchesFiniteDifferences) {
  // No routed experts: top-k routing would make the objective jump under a small step.
  rt::NemotronH model(rt::testing::tiny_config("M*-M"));
  model.init_weights(7);
  std::vector<Sample> samples(4);
  const std::vector<std::vector<int32_t>> prompts = {{1, 5, 9}, {2, 6}, {3, 7, 11, 13}, {4}};
  const std::vector<std::vector<int32_t>> responses = {{10, 12, 14}, {20, 21}, {8, 9, 30, 31}, {17}};
  const double adv[4] = {1.3, -0.7, 0.9, -1.6};
  for (size_t i = 0; i < 4; ++i) samples[i].prompt = prompts[i], samples[i].response = responses[i], samples[i].advantage = adv[i];
  std::vector<const Sample*> ptrs;
  for (auto& s : samples) ptrs.push_back(&s);
  // Old and reference log-probs away from the current ones by fixed offsets: +-0.5 puts a token
  // well outside the clip range (r = e^-+0.5), +-0.05 inside it, so no token sits on a kink.
  TokenScores now = score_samples(model, ptrs, 8, false);
  const double offsets[5] = {0.5, -0.05, -0.5, 0.05, 0.0};
  int n = 0, clipped = 0;
  for (size_t i = 0; i < 4; ++i)
    for (size_t k = 0; k < samples[i].response.size(); ++k, ++n) {
      samples[i].old_lp.push_back(float(now.lp[i][k] - offsets[n % 5]));
      samples[i].ref_lp.push_back(float(now.lp[i][k] + 0.3 * ((n % 3) - 1)));
      TokenTerm t = token_term(now.lp[i][k], samples[i].old_lp[k], samples[i].ref_lp[k], adv[i], SurrogateOptions{});
      clipped += t.clipped;
    }
  ASSERT_GT(clipped, 0);       // both branches are exercised
  ASSERT_LT(clipped, n);
  UpdateOptions o;
  o.surrogate.kl_beta = 0.1;
  o.normalization = GetParam();
  o.micro_batch_size = 3;  // two micro-batches: the normalization spans the whole update
  UpdateStats st = accumulate_gradient(model, ptrs, o, /*fresh=*/false);
  EXPECT_NEAR(st.loss, objective(model, ptrs, o), 1e-5);

  // Directional derivative along the (unit) gradient: J(theta + h v) - J(theta - h v) / 2h = |g|.
  auto params = model.parameters();
  double norm2 = 0;
  for (rt::Parameter* p : params)
    if (!p->buffer)
      for (int64_t i = 0; i < p->value.numel(); ++i) norm2 += double(p->grad.f32()[i]) * p->grad.f32()[i];
  const double gnorm = std::sqrt(norm2);
  ASSERT_GT(gnorm, 1e-3);
  auto shift = [&](double h) {
    for (rt::Parameter* p : params)
      if (!p->buffer)
        for (int64_t i = 0; i < p->value.numel(); ++i) p->value.f32()[i] += float(h * p->grad.f32()[i] / gnorm);
  };
  const double h = 1e-3;
  shift(h);
  const double jp = objective(model, ptrs, o);
  shift(-2 * h);
  const double jm = objective(model, ptrs, o);
  shift(h);
  EXPECT_NEAR((jp - jm) / (2 * h), gnorm, 0.02 * gnorm);

  // And along a fixed other direction: one coordinate of the head/embedding.
  rt::Parameter* emb = model.find("backbone.embeddings.weight");
  ASSERT_NE(emb, nullptr);
  const int64_t idx = 10 * emb->value.shape()[1] + 3;  // token 10's row, a response token
  const double g = emb->grad.f32()[idx];
  const float keep = emb->value.f32()[idx];
  emb->value.f32()[idx] = keep + 1e-2f;
  const double jp2 = objective(model, ptrs, o);
  emb->value.f32()[idx] = keep - 1e-2f;
  const double jm2 = objective(model, ptrs, o);
  emb->value.f32()[idx] = keep;
  EXPECT_NEAR((jp2 - jm2) / 2e-2, g, 0.02 * std::abs(g) + 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Normalizations, GrpoGradient,
                         ::testing::Values(LossNormalization::Token, LossNormalization::Sequence));

TEST(GrpoGradient, FreshSkipsTheExtraForwardWithTheSameResult) {
  rt::NemotronH model(rt::testing::tiny_config("M*-"));
  model.init_weights(3);
  Sample s;
  s.prompt = {1, 2};
  s.response = {3, 4, 5};
  s.advantage = 0.8;
  s.old_lp = score_samples(model, {&s}, 1, false).lp[0];
  UpdateOptions o;
  accumulate_gradient(model, {&s}, o, true);
  auto grads = [&] {
    std::vector<float> g;
    for (rt::Parameter* p : model.parameters())
      if (!p->buffer) g.insert(g.end(), p->grad.f32(), p->grad.f32() + p->grad.numel());
    return g;
  };
  std::vector<float> a = grads();
  accumulate_gradient(model, {&s}, o, false);
  std::vector<float> b = grads();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-6f) << i;
}

}  // namespace
