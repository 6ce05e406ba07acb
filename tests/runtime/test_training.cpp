// Optimizer, schedules, accumulation, router bias and exact resume from a checkpoint.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "nemokit/runtime/checkpoint.hpp"
#include "nemokit/runtime/optim.hpp"
#include "nemokit/runtime/parallel.hpp"
#include "nemokit/runtime/rng.hpp"
#include "nemokit/runtime/trainer.hpp"
#include "tiny_model.hpp"

using namespace nemokit::rt;
using namespace nemokit::rt::testing;

TEST(runtime_training, AdamWStepMatchesTheFormula) {
  Parameter w, n;
  w.name = "w", n.name = "n";
  w.value = Tensor::empty({2, 2}), w.grad = Tensor::empty({2, 2});
  n.value = Tensor::empty({2}), n.grad = Tensor::empty({2});
  n.decay = false;
  for (int i = 0; i < 4; ++i) w.value.f32()[i] = 1.0f + i, w.grad.f32()[i] = 0.5f - i;
  for (int i = 0; i < 2; ++i) n.value.f32()[i] = 2.0f, n.grad.f32()[i] = 1.0f;
  AdamWConfig cfg;
  cfg.weight_decay = 0.1f;
  AdamW opt({&w, &n}, cfg);
  opt.step(0.01f);
  for (int i = 0; i < 4; ++i) {
    float p = 1.0f + i, g = 0.5f - i;
    float m = 0.1f * g, v = 0.05f * g * g;
    float expect = p * (1 - 0.01f * 0.1f) - 0.01f * (m / 0.1f) / (std::sqrt(v / 0.05f) + 1e-8f);
    EXPECT_NEAR(w.value.f32()[i], expect, 1e-6);
  }
  EXPECT_NEAR(n.value.f32()[0], 2.0f - 0.01f, 1e-6);  // no decay on 1-D parameters
  n.trainable = false;
  opt.step(0.01f);
  EXPECT_NEAR(n.value.f32()[0], 2.0f - 0.01f, 1e-6);  // frozen: untouched
}

TEST(runtime_training, ScheduleAndClipping) {
  LrSchedule s;
  s.kind = LrSchedule::Kind::cosine, s.max_lr = 1.0f, s.min_lr = 0.1f, s.warmup_steps = 4, s.total_steps = 14;
  EXPECT_FLOAT_EQ(s.lr(0), 0.25f);
  EXPECT_FLOAT_EQ(s.lr(3), 1.0f);
  EXPECT_FLOAT_EQ(s.lr(4), 1.0f);
  EXPECT_NEAR(s.lr(9), 0.55f, 1e-6);
  EXPECT_NEAR(s.lr(14), 0.1f, 1e-6);
  s.kind = LrSchedule::parse_kind("wsd"), s.decay_steps = 4;
  EXPECT_FLOAT_EQ(s.lr(9), 1.0f);
  EXPECT_NEAR(s.lr(12), 0.55f, 1e-6);
  EXPECT_NEAR(s.lr(14), 0.1f, 1e-6);
  EXPECT_THROW(LrSchedule::parse_kind("linear-ish"), std::invalid_argument);

  Parameter p;
  p.value = Tensor::zeros({2}), p.grad = Tensor::empty({2});
  p.grad.f32()[0] = 3, p.grad.f32()[1] = 4;
  std::vector<Parameter*> ps = {&p};
  EXPECT_NEAR(clip_grad_norm(ps, 1.0), 5.0, 1e-9);
  EXPECT_NEAR(global_grad_norm(ps), 1.0, 1e-5);
}

TEST(runtime_training, AccumulatedMicroBatchesEqualOneBatch) {
  NemotronH model(tiny_config());
  model.init_weights(4);
  Batch full = random_batch(2, 8, 32, 3);
  Batch a = full, b = full;
  a.batch = b.batch = 1;
  a.input_ids.assign(full.input_ids.begin(), full.input_ids.begin() + 8);
  a.targets.assign(full.targets.begin(), full.targets.begin() + 8);
  b.input_ids.assign(full.input_ids.begin() + 8, full.input_ids.end());
  b.targets.assign(full.targets.begin() + 8, full.targets.end());
  model.zero_grad();
  model.forward_backward(full, LossOptions{}, true);
  std::vector<std::vector<float>> ref;
  for (Parameter* p : model.parameters())
    if (!p->buffer) ref.emplace_back(p->grad.f32(), p->grad.f32() + p->grad.numel());
  model.zero_grad();
  LossOptions half;
  half.grad_scale = 0.5f;
  model.forward_backward(a, half, true);
  model.forward_backward(b, half, true);
  size_t k = 0;
  for (Parameter* p : model.parameters()) {
    if (p->buffer) continue;
    for (int64_t i = 0; i < p->grad.numel(); ++i)
      ASSERT_NEAR(p->grad.f32()[i], ref[k][i], 1e-5 * (1 + std::fabs(ref[k][i]))) << p->name;
    ++k;
  }
}

TEST(runtime_training, ExpertBiasMovesTowardUnderusedExperts) {
  NemotronH model(tiny_config("E"));
  model.init_weights(2);
  Batch batch = random_batch(1, 16, 32, 1);
  batch.pad.assign(16, 0);
  batch.pad[15] = 1;  // padding is not counted
  model.zero_grad();
  model.forward_backward(batch, LossOptions{}, true);
  auto load = model.expert_load()[0];
  int64_t total = 0;
  for (auto c : load) total += c;
  EXPECT_EQ(total, 15 * 2);
  model.update_expert_bias(0.01f);
  const float* bias = model.find("backbone.layers.0.mixer.gate.e_score_correction_bias")->value.f32();
  double mean = total / 4.0;
  for (int e = 0; e < 4; ++e) {
    float expect = load[e] < mean ? 0.01f : (load[e] > mean ? -0.01f : 0.0f);
    EXPECT_FLOAT_EQ(bias[e], expect) << "expert " << e;
  }
  EXPECT_EQ(model.expert_load()[0], std::vector<int64_t>(4, 0));
}

namespace {

// A run whose data comes from the run's Rng, so the RNG state is the data position.
struct TrainingRun {
  NemotronH model;
  AdamW opt;
  Rng rng;
  int64_t step = 0;
  LrSchedule sched;
  explicit TrainingRun(uint64_t seed)
      : model(tiny_config()), opt((model.init_weights(seed), model.parameters()), AdamWConfig{}), rng(seed) {
    sched.max_lr = 1e-2f, sched.min_lr = 1e-3f, sched.warmup_steps = 2, sched.total_steps = 8;
  }
  float train_one() {
    std::vector<Batch> micro;
    for (int m = 0; m < 2; ++m) micro.push_back(random_batch(1, 9, 32, uint32_t(rng.next_u64())));
    TrainOptions o;
    o.max_grad_norm = 0.5;
    float loss = train_step(model, opt, sched.lr(step), micro, o).loss;
    ++step;
    return loss;
  }
};

}  // namespace

TEST(runtime_training, ResumedRunRepeatsLossesBitForBit) {
  std::string dir = std::string(NEMOKIT_BINARY_DIR) + "/runtime_resume_ckpt";
  TrainingRun first(5);
  for (int i = 0; i < 3; ++i) first.train_one();
  TrainerState st;
  st.step = first.step;
  st.rng_state = first.rng.state();
  st.data_position = {{"epoch", 0}, {"sample", first.step * 2}};
  save_training_checkpoint(dir, first.model, first.opt, st);
  std::vector<float> expected;
  for (int i = 0; i < 4; ++i) expected.push_back(first.train_one());

  TrainingRun resumed(6);  // different weights and data until the checkpoint is loaded
  TrainerState back = load_training_checkpoint(dir, resumed.model, resumed.opt);
  EXPECT_EQ(back.step, 3);
  EXPECT_EQ(back.data_position["sample"], 6);
  resumed.step = back.step;
  resumed.rng.set_state(back.rng_state);
  for (int i = 0; i < 4; ++i) {
    float loss = resumed.train_one();
    EXPECT_EQ(loss, expected[i]) << "step " << i;  // bitwise equal
  }
  EXPECT_LT(expected.back(), expected.front() + 1.0f);
  EXPECT_FALSE(std::filesystem::exists(dir + ".tmp"));
  // Saving again over an existing checkpoint replaces it in one step.
  save_training_checkpoint(dir, resumed.model, resumed.opt, back);
  EXPECT_TRUE(std::filesystem::exists(dir + "/optimizer.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(dir + ".tmp"));
}

TEST(runtime_training, RepeatedStepsAreBitwiseIdenticalForOneThreadCount) {
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    std::vector<std::vector<float>> grads[2];
    for (int run = 0; run < 2; ++run) {
      NemotronH model(tiny_config());
      model.init_weights(31);
      model.zero_grad();
      model.forward_backward(random_batch(2, 13, 32, 8), LossOptions{}, true);
      for (Parameter* p : model.parameters())
        if (!p->buffer) grads[run].emplace_back(p->grad.f32(), p->grad.f32() + p->grad.numel());
    }
    EXPECT_EQ(grads[0], grads[1]) << threads << " threads";
  }
  set_num_threads(2);
}

TEST(runtime_training, FrozenGroupsKeepTheirWeights) {
  NemotronH model(tiny_config());
  model.init_weights(9);
  model.set_frozen("backbone.layers.0.", true);
  model.set_frozen("backbone.embeddings.", true);
  Parameter* frozen = model.find("backbone.layers.0.mixer.in_proj.weight");
  Parameter* live = model.find("backbone.layers.1.mixer.q_proj.weight");
  std::vector<float> before_frozen(frozen->value.f32(), frozen->value.f32() + frozen->value.numel());
  std::vector<float> before_live(live->value.f32(), live->value.f32() + live->value.numel());
  AdamW opt(model.parameters(), AdamWConfig{});
  train_step(model, opt, 1e-2f, {random_batch(1, 8, 32, 2)}, TrainOptions{});
  EXPECT_EQ(std::vector<float>(frozen->value.f32(), frozen->value.f32() + frozen->value.numel()), before_frozen);
  EXPECT_NE(std::vector<float>(live->value.f32(), live->value.f32() + live->value.numel()), before_live);
  // Unfrozen layers still receive gradients.
  EXPECT_GT(global_grad_norm({model.find("backbone.layers.1.norm.weight")}), 0.0);
}

// ZeRO-1 on one rank: the sharded step (reduce-scatter, local update, all-gather) is the whole
// step to the bit, frozen layers included; its moments exist for a checkpoint only once gathered,
// and loaded back they continue the run exactly.
TEST(runtime_training, ShardedOptimizerOnOneRankStepsAsTheWholeOne) {
  auto comm = single_rank_communicator();
  NemotronH whole(tiny_config()), sharded(tiny_config());
  for (NemotronH* m : {&whole, &sharded}) {
    m->init_weights(12);
    m->set_frozen("backbone.layers.0.", true);
  }
  AdamW opt_whole(whole.parameters(), AdamWConfig{});
  AdamW opt_sharded(sharded.parameters(), AdamWConfig{}, *comm);
  EXPECT_TRUE(opt_sharded.sharded());
  EXPECT_EQ(opt_sharded.state_bytes(), opt_whole.state_bytes());
  TrainOptions o;
  o.max_grad_norm = 0.05;  // small enough to clip
  o.comm = comm.get();
  auto same_weights = [&] {
    for (Parameter* p : whole.parameters()) {
      Parameter* q = sharded.find(p->name);
      ASSERT_NE(q, nullptr) << p->name;
      ASSERT_EQ(std::vector<float>(p->value.f32(), p->value.f32() + p->value.numel()),
                std::vector<float>(q->value.f32(), q->value.f32() + q->value.numel()))
          << p->name;
    }
  };
  for (uint32_t step = 0; step < 3; ++step) {
    std::vector<Batch> micro = {random_batch(1, 9, 32, 40 + step), random_batch(1, 9, 32, 50 + step)};
    TrainStepStats a = train_step(whole, opt_whole, 1e-2f, micro, o);
    TrainStepStats b = train_step(sharded, opt_sharded, 1e-2f, micro, o);
    EXPECT_EQ(a.loss, b.loss);
    EXPECT_EQ(a.grad_norm, b.grad_norm);
  }
  same_weights();
  EXPECT_THROW(opt_sharded.state_tensors(), std::logic_error);
  opt_sharded.gather_state();
  auto ws = opt_whole.state_tensors(), ss = opt_sharded.state_tensors();
  ASSERT_EQ(ws.size(), ss.size());
  for (size_t i = 0; i < ws.size(); ++i) {
    EXPECT_EQ(ws[i].first, ss[i].first);
    const Tensor &x = ws[i].second, &y = ss[i].second;
    EXPECT_EQ(std::vector<float>(x.f32(), x.f32() + x.numel()), std::vector<float>(y.f32(), y.f32() + y.numel())) << ws[i].first;
  }
  // Through a checkpoint: a fresh sharded optimizer takes its block back and steps on as before.
  std::string dir = std::string(NEMOKIT_BINARY_DIR) + "/runtime_zero1_ckpt";
  TrainerState st;
  st.step = opt_sharded.steps();
  save_training_checkpoint(dir, sharded, opt_sharded, st);
  NemotronH reloaded(tiny_config());
  reloaded.set_frozen("backbone.layers.0.", true);
  AdamW opt_reloaded(reloaded.parameters(), AdamWConfig{}, *comm);
  load_training_checkpoint(dir, reloaded, opt_reloaded);
  EXPECT_EQ(opt_reloaded.steps(), 3);
  std::vector<Batch> micro = {random_batch(1, 9, 32, 60)};
  train_step(whole, opt_whole, 1e-2f, micro, o);
  train_step(reloaded, opt_reloaded, 1e-2f, micro, o);
  for (Parameter* p : whole.parameters()) {
    Parameter* q = reloaded.find(p->name);
    EXPECT_EQ(std::vector<float>(p->value.f32(), p->value.f32() + p->value.numel()),
              std::vector<float>(q->value.f32(), q->value.f32() + q->value.numel()))
        << p->name << " after reloading";
  }
  std::filesystem::remove_all(dir);
}
