// forward_hidden/backward_hidden: the backbone without the LM head, for other heads (a reward
// model's scalar). The objective here is a random linear head on every position's final hidden
// state; its parameter gradients must match finite differences, and the hidden states must be
// what the LM head reads (logits = hidden x lm_head^T).
#include <gtest/gtest.h>

#include <random>

#include "grad_check.hpp"
#include "nemokit/runtime/model.hpp"
#include "tiny_model.hpp"

using namespace nemokit::rt;
using namespace nemokit::rt::testing;

namespace {

// J = sum_t c_t (w . h_t): dJ/dh_t = c_t w.
struct LinearProbe {
  std::vector<float> w, c;
  double value(const std::vector<float>& h, int64_t d) const {
    double j = 0;
    for (size_t t = 0; t < c.size(); ++t)
      for (int64_t i = 0; i < d; ++i) j += double(c[t]) * w[size_t(i)] * h[t * size_t(d) + size_t(i)];
    return j;
  }
  std::vector<float> grad(int64_t d) const {
    std::vector<float> g(c.size() * size_t(d));
    for (size_t t = 0; t < c.size(); ++t)
      for (int64_t i = 0; i < d; ++i) g[t * size_t(d) + size_t(i)] = c[t] * w[size_t(i)];
    return g;
  }
};

}  // namespace

TEST(runtime_hidden_head, BackwardFromHiddenGradientMatchesFiniteDifferences) {
  // No MoE layer: finite steps would switch its top-k routing under this dense objective; the
  // blocks' backward is the one forward_backward runs (runtime_model checks MoE there).
  NemotronH model(tiny_config("M*-M"));
  model.init_weights(21);
  for (Parameter* p : model.parameters())  // time steps near 0.7, as in runtime_model's check
    if (p->name.find("dt_bias") != std::string::npos)
      for (int64_t i = 0; i < p->value.numel(); ++i) p->value.f32()[i] = 0.1f * float(i);
  Batch batch = random_batch(2, 9, 32, 17);
  batch.targets.clear();
  const int64_t d = model.config().hidden_size;
  std::mt19937 gen(3);
  LinearProbe probe{random_vector(size_t(d), gen), random_vector(size_t(batch.batch * batch.seq), gen)};

  model.zero_grad();
  model.forward_hidden(batch, true);
  const std::vector<float> g = probe.grad(d);
  model.backward_hidden(g.data());
  auto objective = [&] { return probe.value(model.forward_hidden(batch, false), d); };
  int checked = 0;
  for (Parameter* p : model.parameters()) {
    if (p->buffer || p->name == "lm_head.weight") continue;  // not on this path (second test)
    std::vector<float> analytic(p->grad.f32(), p->grad.f32() + p->grad.numel());
    const bool log_scale = p->name.find("A_log") != std::string::npos || p->name.find("dt_bias") != std::string::npos;
    expect_grad_matches(p->name, p->value.f32(), size_t(p->value.numel()), analytic.data(), objective,
                        log_scale ? 1e-2f : 2e-3f, 3e-2, 8);
    ++checked;
  }
  EXPECT_GT(checked, 20);
}

TEST(runtime_hidden_head, HiddenStatesAreWhatTheLmHeadReads) {
  NemotronHConfig c = tiny_config("M*");
  c.tie_word_embeddings = false;
  NemotronH model(c);
  model.init_weights(4);
  Batch batch = random_batch(1, 6, 32, 2);
  const std::vector<float> h = model.forward_hidden(batch, false);
  const Tensor& logits = model.forward(batch);
  const float* W = model.find("lm_head.weight")->value.f32();
  for (int64_t t = 0; t < 6; ++t)
    for (int64_t v = 0; v < c.vocab_size; ++v) {
      double z = 0;
      for (int64_t i = 0; i < c.hidden_size; ++i) z += double(h[size_t(t * c.hidden_size + i)]) * W[v * c.hidden_size + i];
      ASSERT_NEAR(logits.f32()[t * c.vocab_size + v], z, 1e-4) << "position " << t << ", token " << v;
    }
  // Untied: a backward from the hidden states leaves the LM head without gradient.
  model.zero_grad();
  model.forward_hidden(batch, true);
  std::vector<float> g(size_t(6 * c.hidden_size), 1.0f);
  model.backward_hidden(g.data());
  const Parameter* head = model.find("lm_head.weight");
  for (int64_t i = 0; i < head->grad.numel(); ++i) ASSERT_EQ(head->grad.f32()[i], 0.0f);
  EXPECT_NE(model.find("backbone.norm_f.weight")->grad.f32()[0], 0.0f);
}
