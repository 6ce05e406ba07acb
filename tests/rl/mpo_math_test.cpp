// MPO's arithmetic against values worked out by hand, its gradient against central finite
// differences, and BCO's running reward mean over batches and through a JSON round trip.
#include "mpo/mpo_math.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>

namespace {
using namespace nemokit::rl;

// beta 0.1: D_c = -10 - (-12) = 2, D_r = -15 - (-13) = -2, h = 4, beta h = 0.4.
PreferencePair pair_a() { return PreferencePair{-10, -15, -12, -13, 5}; }

MpoOptions only(double sigmoid, double bco, double sft) {
  MpoOptions o;
  o.sigmoid_weight = sigmoid, o.bco_weight = bco, o.sft_weight = sft;
  return o;
}

TEST(MpoTerms, SigmoidByHand) {
  MpoTerms t = mpo_pair(pair_a(), only(1, 0, 0), 0.0);
  // -log s(0.4) = ln(1 + e^-0.4) = ln(1.6703200460) = 0.5130152524
  EXPECT_NEAR(t.sigmoid_loss, 0.5130152524, 1e-10);
  EXPECT_NEAR(t.loss, 0.5130152524, 1e-10);
  // rewards beta D: 0.2 and -0.2; margin 0.4
  EXPECT_NEAR(t.chosen_reward, 0.2, 1e-15);
  EXPECT_NEAR(t.rejected_reward, -0.2, 1e-15);
  EXPECT_NEAR(t.margin, 0.4, 1e-15);
  EXPECT_EQ(t.accuracy, 1.0);
  // dL/dlp_c = -beta s(-0.4) = -0.1 * 1 / (1 + e^0.4) = -0.1 * 0.4013123399; dL/dlp_r the opposite
  EXPECT_NEAR(t.grad_chosen, -0.04013123399, 1e-11);
  EXPECT_NEAR(t.grad_rejected, 0.04013123399, 1e-11);
}

TEST(MpoTerms, BcoPairByHand) {
  MpoTerms t = mpo_pair(pair_a(), only(0, 1, 0), 0.05);
  // u = beta D_c - delta = 0.2 - 0.05 = 0.15, v = beta D_r - delta = -0.2 - 0.05 = -0.25
  // -log s(0.15) = ln(1 + e^-0.15) = ln(1.8607079764) = 0.6209570478
  // -log s(-v) = -log s(0.25) = ln(1 + e^-0.25) = ln(1.7788007831) = 0.5759394199
  EXPECT_NEAR(t.bco_loss, 0.6209570478 + 0.5759394199, 1e-10);
  EXPECT_NEAR(t.loss, 1.1968964677, 1e-10);
  // dL/dlp_c = -beta s(-u) = -0.1 * 0.4625701547; dL/dlp_r = beta s(v) = 0.1 * s(-0.25) = 0.1 * 0.4378234991
  EXPECT_NEAR(t.grad_chosen, -0.04625701547, 1e-11);
  EXPECT_NEAR(t.grad_rejected, 0.04378234991, 1e-11);
  // The reward shift moves the loss: with delta 0 it is 2 ln(1 + e^-0.2) = 2 ln(1.8187307531) = 2 * 0.5981388694
  EXPECT_NEAR(mpo_pair(pair_a(), only(0, 1, 0), 0.0).bco_loss, 2 * 0.5981388694, 1e-9);
}

TEST(MpoTerms, SftIsTheChosenMeanTokenNll) {
  MpoTerms t = mpo_pair(pair_a(), only(0, 0, 1), 0.0);
  EXPECT_DOUBLE_EQ(t.sft_loss, 2.0);  // -(-10) / 5 tokens
  EXPECT_DOUBLE_EQ(t.grad_chosen, -0.2);  // -1 / n_c
  EXPECT_EQ(t.grad_rejected, 0.0);
}

TEST(MpoTerms, TotalWithInternVlDefaults) {
  MpoOptions o;  // beta 0.1, weights 0.8 / 0.2 / 1.0
  MpoTerms t = mpo_pair(pair_a(), o, 0.05);
  // 0.8 * 0.5130152524 + 0.2 * 1.1968964677 + 1.0 * 2 = 0.4104122019 + 0.2393792935 + 2 = 2.6497914955
  EXPECT_NEAR(t.loss, 2.6497914955, 1e-10);
  EXPECT_NEAR(t.sigmoid_loss, 0.5130152524, 1e-10);
  EXPECT_NEAR(t.bco_loss, 1.1968964677, 1e-10);
  EXPECT_DOUBLE_EQ(t.sft_loss, 2.0);
  // dL/dlp_c = 0.8 * -0.04013123399 + 0.2 * -0.04625701547 - 0.2 = -0.03210498719 - 0.00925140309 - 0.2
  EXPECT_NEAR(t.grad_chosen, -0.2413563903, 1e-10);
  // dL/dlp_r = 0.8 * 0.04013123399 + 0.2 * 0.04378234991 = 0.03210498719 + 0.00875646998
  EXPECT_NEAR(t.grad_rejected, 0.04086145717, 1e-10);
}

TEST(MpoTerms, LabelSmoothing) {
  MpoOptions o = only(1, 0, 0);
  o.label_smoothing = 0.1;
  MpoTerms t = mpo_pair(pair_a(), o, 0.0);
  // 0.9 (-log s(0.4)) + 0.1 (-log s(-0.4)); -log s(-x) = -log s(x) + x, so
  // 0.9 * 0.5130152524 + 0.1 * 0.9130152524 = 0.5130152524 + 0.04 = 0.5530152524
  EXPECT_NEAR(t.sigmoid_loss, 0.5530152524, 1e-10);
  // dL/dlp_c = beta (-0.9 s(-0.4) + 0.1 s(0.4)) = 0.1 (-0.9 * 0.4013123399 + 0.1 * 0.5986876601)
  //          = 0.1 (-0.3611811059 + 0.0598687660) = -0.03013123399
  EXPECT_NEAR(t.grad_chosen, -0.03013123399, 1e-11);
  EXPECT_NEAR(t.grad_rejected, 0.03013123399, 1e-11);
  // 0.5 makes the pair's order irrelevant: the loss is even in the margin
  o.label_smoothing = 0.5;
  PreferencePair s = pair_a();
  std::swap(s.lp_c, s.lp_r), std::swap(s.ref_c, s.ref_r);
  EXPECT_NEAR(mpo_pair(pair_a(), o, 0).sigmoid_loss, mpo_pair(s, o, 0).sigmoid_loss, 1e-14);
}

TEST(MpoTerms, SwappingChosenAndRejectedFlipsTheMargin) {
  MpoOptions o = only(1, 0, 0);
  PreferencePair p{-3.7, -2.9, -4.1, -2.2, 7}, s = p;
  std::swap(s.lp_c, s.lp_r), std::swap(s.ref_c, s.ref_r);
  MpoTerms a = mpo_pair(p, o, 0), b = mpo_pair(s, o, 0);
  // D_c = 0.4, D_r = -0.7: margin 0.1 * 1.1 = 0.11
  EXPECT_NEAR(a.margin, 0.11, 1e-14);
  EXPECT_NEAR(b.margin, -0.11, 1e-14);
  EXPECT_EQ(a.accuracy, 1.0);
  EXPECT_EQ(b.accuracy, 0.0);
  EXPECT_DOUBLE_EQ(a.chosen_reward, b.rejected_reward);
  EXPECT_DOUBLE_EQ(a.rejected_reward, b.chosen_reward);
  // -log s(-x) = -log s(x) + x: the swapped pair costs exactly the margin more
  EXPECT_NEAR(b.sigmoid_loss - a.sigmoid_loss, 0.11, 1e-14);
  // DPO only sees lp_c - lp_r: equal and opposite pulls, and s(x) + s(-x) = 1 across the swap
  EXPECT_DOUBLE_EQ(a.grad_chosen, -a.grad_rejected);
  EXPECT_NEAR(a.grad_chosen + b.grad_chosen, -0.1, 1e-15);
}

TEST(MpoGradient, MatchesCentralFiniteDifferences) {
  std::mt19937_64 rng(1234);
  std::uniform_real_distribution<double> lp(-60.0, -1.0), shift(-3.0, 3.0), w(0.0, 1.5), eps(0.0, 0.5),
      beta(0.01, 1.0), delta(-0.5, 0.5);
  std::uniform_int_distribution<int64_t> len(1, 40);
  for (int trial = 0; trial < 200; ++trial) {
    MpoOptions o;
    o.beta = beta(rng), o.label_smoothing = eps(rng);
    o.sigmoid_weight = w(rng), o.bco_weight = w(rng), o.sft_weight = w(rng);
    PreferencePair p;
    p.ref_c = lp(rng), p.ref_r = lp(rng);
    p.lp_c = p.ref_c + shift(rng), p.lp_r = p.ref_r + shift(rng);
    p.n_c = len(rng);
    const double d = delta(rng);
    MpoTerms t = mpo_pair(p, o, d);
    const double h = 1e-5;
    auto fd = [&](double PreferencePair::*field) {
      PreferencePair up = p, down = p;
      up.*field += h, down.*field -= h;
      return (mpo_pair(up, o, d).loss - mpo_pair(down, o, d).loss) / (2 * h);
    };
    EXPECT_NEAR(t.grad_chosen, fd(&PreferencePair::lp_c), 1e-7) << "trial " << trial;
    EXPECT_NEAR(t.grad_rejected, fd(&PreferencePair::lp_r), 1e-7) << "trial " << trial;
  }
}

TEST(MpoBatchMean, MeansAndGradientsOverPairs) {
  MpoOptions o;
  // pair_a has margin 0.4; the second pair prefers the rejected one: D_c = -1, D_r = 1, margin -0.2
  const std::vector<PreferencePair> pairs = {pair_a(), PreferencePair{-21, -8, -20, -9, 3}};
  MpoBatch b = mpo_batch(pairs, o, 0.05);
  MpoTerms a = mpo_pair(pairs[0], o, 0.05), c = mpo_pair(pairs[1], o, 0.05);
  EXPECT_EQ(b.delta, 0.05);
  EXPECT_NEAR(b.mean.loss, (a.loss + c.loss) / 2, 1e-14);
  EXPECT_NEAR(b.mean.sigmoid_loss, (a.sigmoid_loss + c.sigmoid_loss) / 2, 1e-14);
  EXPECT_NEAR(b.mean.bco_loss, (a.bco_loss + c.bco_loss) / 2, 1e-14);
  EXPECT_NEAR(b.mean.sft_loss, (2.0 + 7.0) / 2, 1e-14);  // 10 / 5 and 21 / 3
  EXPECT_NEAR(b.mean.margin, (0.4 - 0.2) / 2, 1e-14);
  EXPECT_NEAR(b.mean.chosen_reward, (0.2 - 0.1) / 2, 1e-14);
  EXPECT_NEAR(b.mean.rejected_reward, (-0.2 + 0.1) / 2, 1e-14);
  EXPECT_DOUBLE_EQ(b.mean.accuracy, 0.5);
  ASSERT_EQ(b.grad_chosen.size(), 2u);
  EXPECT_DOUBLE_EQ(b.grad_chosen[0], a.grad_chosen / 2);
  EXPECT_DOUBLE_EQ(b.grad_rejected[1], c.grad_rejected / 2);
  // and each is the derivative of the batch's mean loss
  const double h = 1e-5;
  std::vector<PreferencePair> up = pairs, down = pairs;
  up[1].lp_c += h, down[1].lp_c -= h;
  EXPECT_NEAR(b.grad_chosen[1], (mpo_batch(up, o, 0.05).mean.loss - mpo_batch(down, o, 0.05).mean.loss) / (2 * h), 1e-8);
  EXPECT_THROW(mpo_batch({}, o, 0.0), std::invalid_argument);
}

TEST(MpoRunningMean, MeanOfTheBatchMeansAndTrlOrder) {
  MpoOptions o = only(0, 1, 0);
  RunningRewardMean r;
  EXPECT_EQ(r.mean(), 0.0);
  // batch 1: rewards 0.2, -0.2 (pair_a) and 0.4, 0 (D_c = 4, D_r = 0): mean 0.4 / 4 = 0.1
  std::vector<PreferencePair> b1 = {pair_a(), PreferencePair{-6, -9, -10, -9, 2}};
  EXPECT_NEAR(batch_mean_reward(b1, 0.1), 0.1, 1e-15);
  MpoBatch m1 = mpo_batch(b1, o, r);
  EXPECT_NEAR(r.mean(), 0.1, 1e-15);
  EXPECT_EQ(r.count(), 1);
  EXPECT_NEAR(m1.delta, 0.1, 1e-15);  // the batch's own reward is in its delta (TRL updates first)
  // batch 2: one pair D_c = 6, D_r = 2: rewards 0.6, 0.2, mean 0.4; running (0.1 + 0.4) / 2 = 0.25
  MpoBatch m2 = mpo_batch({PreferencePair{-4, -8, -10, -10, 1}}, o, r);
  EXPECT_NEAR(r.mean(), 0.25, 1e-15);
  EXPECT_NEAR(m2.delta, 0.25, 1e-15);
  // its loss: u = 0.6 - 0.25 = 0.35, v = 0.2 - 0.25 = -0.05:
  // ln(1 + e^-0.35) + ln(1 + e^-0.05) = ln(1.7046880897) + ln(1.9512294245) = 0.5333821554 + 0.6684596480
  EXPECT_NEAR(m2.mean.bco_loss, 0.5333821554 + 0.6684596480, 1e-9);
  // batch 3: D_c = -1, D_r = -3: rewards -0.1, -0.3, mean -0.2; running (0.1 + 0.4 - 0.2) / 3 = 0.1
  mpo_batch({PreferencePair{-11, -13, -10, -10, 1}}, o, r);
  EXPECT_NEAR(r.mean(), 0.1, 1e-15);
  EXPECT_EQ(r.count(), 3);
  // a bad pair leaves the state untouched
  EXPECT_THROW(mpo_batch({PreferencePair{-1, -1, -1, -1, 0}}, o, r), std::invalid_argument);
  EXPECT_EQ(r.count(), 3);
  EXPECT_THROW(r.update(std::numeric_limits<double>::quiet_NaN()), std::invalid_argument);
  EXPECT_EQ(r.count(), 3);
}

TEST(MpoRunningMean, JsonRoundTripResumesExactly) {
  RunningRewardMean r;
  for (double x : {1.0 / 3.0, -0.1234567890123, 2.0 / 7.0}) r.update(x);
  const std::string saved = r.to_json().dump();
  RunningRewardMean back = RunningRewardMean::from_json(nlohmann::json::parse(saved));
  EXPECT_EQ(back.mean(), r.mean());  // bit-exact
  EXPECT_EQ(back.count(), 3);
  r.update(0.7), back.update(0.7);
  EXPECT_EQ(back.mean(), r.mean());
  EXPECT_EQ(back.count(), r.count());

  auto error = [](const nlohmann::json& j) {
    try {
      RunningRewardMean::from_json(j);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error({{"count", 2}}).find("\"mean\""), std::string::npos);
  EXPECT_NE(error({{"mean", 0.5}, {"count", -1}}).find("\"count\""), std::string::npos);
  EXPECT_NE(error({{"mean", 0.5}, {"count", 1.5}}).find("\"count\""), std::string::npos);
  EXPECT_NE(error(nlohmann::json::array()).find("object"), std::string::npos);
}

std::string option_error(const std::function<void(MpoOptions&)>& change) {
  MpoOptions o;
  change(o);
  try {
    o.validate();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

TEST(MpoOptionsCheck, ErrorsNameTheKey) {
  EXPECT_NO_THROW(MpoOptions{}.validate());
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(option_error([](MpoOptions& o) { o.beta = 0; }).rfind("mpo.beta: must be a positive number, got 0", 0), 0u);
  EXPECT_EQ(option_error([&](MpoOptions& o) { o.beta = nan; }).rfind("mpo.beta:", 0), 0u);
  EXPECT_EQ(option_error([](MpoOptions& o) { o.sigmoid_weight = -0.1; }).rfind("mpo.sigmoid_weight:", 0), 0u);
  EXPECT_EQ(option_error([&](MpoOptions& o) { o.bco_weight = nan; }).rfind("mpo.bco_weight:", 0), 0u);
  EXPECT_EQ(option_error([&](MpoOptions& o) { o.sft_weight = inf; }).rfind("mpo.sft_weight:", 0), 0u);
  EXPECT_EQ(option_error([](MpoOptions& o) { o.label_smoothing = 0.6; }).rfind("mpo.label_smoothing: must be in [0, 0.5]", 0), 0u);
  EXPECT_EQ(option_error([](MpoOptions& o) { o.label_smoothing = -0.01; }).rfind("mpo.label_smoothing:", 0), 0u);
  EXPECT_NE(option_error([](MpoOptions& o) { o.sigmoid_weight = o.bco_weight = o.sft_weight = 0; }).find("all 0"), std::string::npos);
  EXPECT_NO_THROW(only(0, 0, 1).validate());  // SFT alone is allowed
}

TEST(MpoTerms, ChosenAnswerNeedsTokens) {
  PreferencePair p = pair_a();
  p.n_c = 0;
  EXPECT_THROW(mpo_pair(p, MpoOptions{}, 0), std::invalid_argument);
}

TEST(MpoTerms, ExtremeMarginsStayFinite) {
  EXPECT_EQ(neg_log_sigmoid(1000), 0.0);
  EXPECT_EQ(neg_log_sigmoid(-1000), 1000.0);
  EXPECT_EQ(sigmoid(1000), 1.0);
  EXPECT_EQ(sigmoid(-1000), 0.0);
  MpoOptions o;
  o.beta = 1;
  o.label_smoothing = 0.1;
  // h = +-1000 with D_c = -D_r = +-500
  for (double h : {1000.0, -1000.0}) {
    PreferencePair p{-1000 + h / 2, -1000 - h / 2, -1000, -1000, 10};
    MpoTerms t = mpo_pair(p, o, 0);
    for (double v : {t.loss, t.sigmoid_loss, t.bco_loss, t.sft_loss, t.margin, t.grad_chosen, t.grad_rejected})
      EXPECT_TRUE(std::isfinite(v)) << "h " << h;
    // 0.9 (-log s(h)) + 0.1 (-log s(-h)): 0.1 * 1000 when h > 0, 0.9 * 1000 when h < 0
    EXPECT_NEAR(t.sigmoid_loss, h > 0 ? 100.0 : 900.0, 1e-9);
    // bco: -log s(500) - log s(500) = 0, or -log s(-500) - log s(-500) = 1000
    EXPECT_NEAR(t.bco_loss, h > 0 ? 0.0 : 1000.0, 1e-9);
    // dDPO/dlp_c = -0.9 s(-h) + 0.1 s(h): 0.1 or -0.9; dBCO/dlp_c = -s(-500): 0 or -1; SFT -1/10
    EXPECT_NEAR(t.grad_chosen, 0.8 * (h > 0 ? 0.1 : -0.9) + 0.2 * (h > 0 ? 0.0 : -1.0) - 0.1, 1e-12);
  }
}

}  // namespace
