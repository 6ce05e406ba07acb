// The GPU trainer (src/cuda/model/gpu_trainer.cpp) against rt::train_step on the CPU: the same
// tiny hybrid (bf16-rounded weights both sides), the same optimizer settings and batches, and
// the loss of every step compared. The data is learnable (each row walks a fixed permutation of
// the vocabulary from a random start), so the loss falls fast and the optimizer's steps, the
// clipping (the early gradients exceed the norm) and the weight decay all show in the curve.
//
// Both sides' losses drift apart as the GPU's bf16 activations and working weights make its
// updates slightly different; measured over seeds 0-9: at most 1.6% relative per step over
// 30 steps, allowed 4%. Then sync_to_host: the CPU model with the device's masters must give the
// GPU's own loss on a fresh batch (the masters came back whole), and sync_from_host after
// disturbing the CPU copy must restore what the GPU had.
#include <cmath>
#include <string>
#include <vector>

#include "gpu_model.hpp"
#include "gpu_trainer.hpp"
#include "matmul.cuh"
#include "nemokit/runtime/optim.hpp"
#include "nemokit/runtime/run/memory_plan.hpp"
#include "nemokit/runtime/trainer.hpp"
#include "op_check.hpp"
#include "tiny_model.hpp"

namespace rt = nemokit::rt;
namespace gpu = nemokit::rt::cuda;
using namespace nemokit::gpucheck;

namespace {

rt::Batch walk_batch(Checker& c, int64_t B, int64_t T, int64_t V) {
  rt::Batch b;
  b.batch = B, b.seq = T;
  const std::vector<int32_t> starts = c.ints(B, 0, int32_t(V));
  for (int64_t r = 0; r < B; ++r) {
    int32_t t = starts[size_t(r)];
    for (int64_t i = 0; i <= T; ++i) {
      if (i < T) b.input_ids.push_back(t);
      if (i > 0) b.targets.push_back(t);
      t = int32_t((int64_t(t) * 5 + 3) % V);
    }
  }
  return b;
}

// The same tiny hybrid twice, bf16-rounded: the CPU reference's copy and the device trainer's.
struct Twins {
  rt::NemotronH cpu, dev;
  explicit Twins(uint64_t seed) : cpu(tiny_hybrid("M*-E")), dev(tiny_hybrid("M*-E")) {
    cpu.init_weights(seed), dev.init_weights(seed);
    round_parameters_to_bf16(cpu), round_parameters_to_bf16(dev);
  }
};

}  // namespace

GPU_OP_CASE(trainer_follows_cpu_loss_curve) {
  const int64_t B = 2, T = 24, steps = 30;
  Twins twins(5);
  rt::NemotronH &cpu = twins.cpu, &dev = twins.dev;
  const int64_t V = cpu.config().vocab_size;
  rt::AdamWConfig ac;
  ac.weight_decay = 0.1f;
  rt::AdamW cpu_opt(cpu.parameters(), ac), dev_opt(dev.parameters(), ac);
  rt::TrainOptions to;
  to.max_grad_norm = 1.0;
  to.expert_bias_rate = 1e-3f;
  gpu::GpuTrainer trainer(dev, dev_opt, to);

  std::vector<float> cpu_loss, dev_loss;
  for (int64_t s = 0; s < steps; ++s) {
    const std::vector<rt::Batch> micro = {walk_batch(c, B, T, V), walk_batch(c, B, T, V)};
    const float lr = 3e-3f;
    cpu_loss.push_back(rt::train_step(cpu, cpu_opt, lr, micro, to).loss);
    const rt::TrainStepStats d = trainer.step(lr, micro);
    dev_loss.push_back(d.loss);
    if (d.tokens != 2 * B * T) c.fail("step " + std::to_string(s) + " counted " + std::to_string(d.tokens) + " tokens");
  }
  c.expect_close("loss per step", dev_loss, cpu_loss, Tolerance{0, 4e-2});
  if (!(cpu_loss.back() < 0.7f * cpu_loss.front()))
    c.fail("the CPU loss fell only from " + std::to_string(cpu_loss.front()) + " to " + std::to_string(cpu_loss.back()) +
           ": the check needs a curve that moves");
  if (dev_opt.steps() != steps) c.fail("the optimizer counts " + std::to_string(dev_opt.steps()) + " steps");

  // The masters come back whole: the CPU model with them scores a batch as the GPU does.
  trainer.sync_to_host();
  const rt::Batch probe = walk_batch(c, B, T, V);
  const float on_cpu = dev.forward_backward(probe, rt::LossOptions{}, false).loss;
  const float on_gpu = trainer.gpu_model().forward_backward(probe, rt::LossOptions{}, false).loss;
  c.expect_close("loss of the synced weights", std::vector<float>{on_cpu}, std::vector<float>{on_gpu}, Tolerance{0, 1e-2});

  // sync_from_host restores what the CPU side holds: disturb the device by uploading other
  // weights, then bring the synced ones back.
  rt::Parameter* emb = dev.find("backbone.embeddings.weight");
  const std::vector<float> kept(emb->value.f32(), emb->value.f32() + emb->value.numel());
  for (int64_t i = 0; i < emb->value.numel(); ++i) emb->value.f32()[i] = 0;
  trainer.sync_from_host();
  const float zeroed = trainer.gpu_model().forward_backward(probe, rt::LossOptions{}, false).loss;
  if (std::fabs(zeroed - on_gpu) < 1e-3f) c.fail("sync_from_host did not reach the device");
  std::copy(kept.begin(), kept.end(), emb->value.f32());
  trainer.sync_from_host();
  const float restored = trainer.gpu_model().forward_backward(probe, rt::LossOptions{}, false).loss;
  c.expect_close("loss after sync_from_host", std::vector<float>{restored}, std::vector<float>{on_gpu}, Tolerance{0, 1e-5});
}

// What the GPU path does not support is refused, naming the setting.
GPU_OP_CASE(trainer_refuses_zero1_and_aux_loss) {
  rt::NemotronH model(tiny_hybrid("M-"));
  model.init_weights(1);
  auto comm = rt::single_rank_communicator();
  rt::AdamW sharded(model.parameters(), rt::AdamWConfig{}, *comm);
  try {
    gpu::GpuTrainer t(model, sharded, rt::TrainOptions{});
    c.fail("a ZeRO-1 optimizer was accepted");
  } catch (const std::invalid_argument& e) {
    if (std::string(e.what()).find("parallel.zero") == std::string::npos) c.fail(std::string("not named: ") + e.what());
  }
  rt::AdamW whole(model.parameters(), rt::AdamWConfig{});
  rt::TrainOptions to;
  to.moe_aux_loss_coeff = 1e-2f;
  gpu::GpuTrainer t(model, whole, to);
  try {
    t.step(1e-3f, {walk_batch(c, 1, 8, model.config().vocab_size)});
    c.fail("moe_aux_loss_coeff > 0 was accepted");
  } catch (const std::invalid_argument& e) {
    if (std::string(e.what()).find("moe_aux_loss_coeff") == std::string::npos) c.fail(std::string("not named: ") + e.what());
  }
}

// RL's use of the trainer's parts (plugins/stage_rl/src/grpo/policy.cpp): micro-batches with
// per-token weights of either sign (the clipped surrogate's) through zero_grad, accumulate and
// apply_gradients, against NemotronH::forward_backward and rt::apply_gradients on the CPU. Each
// update's norm before clipping is compared (measured over seeds 1-12: at most 1.6% apart,
// allowed 5%), then token_losses of a fresh batch after the updates (the policy's
// log-probabilities for the next update's ratio; at most 0.074 apart on values near 4.5).
GPU_OP_CASE(trainer_parts_follow_cpu_weighted_updates) {
  const int64_t B = 2, T = 24, updates = 12;
  Twins twins(8);
  rt::NemotronH &cpu = twins.cpu, &dev = twins.dev;
  const int64_t V = cpu.config().vocab_size;
  rt::AdamW cpu_opt(cpu.parameters(), rt::AdamWConfig{}), dev_opt(dev.parameters(), rt::AdamWConfig{});
  rt::TrainOptions to;
  to.max_grad_norm = 0.5;
  to.expert_bias_rate = 1e-3f;
  gpu::GpuTrainer trainer(dev, dev_opt, to);
  auto weighted = [&](rt::Batch b) {
    b.loss_weights = c.uniform(size_t(B * T), -0.05f, 0.05f, false);
    return b;
  };
  std::vector<float> cpu_norm, dev_norm;
  for (int64_t u = 0; u < updates; ++u) {
    const std::vector<rt::Batch> micro = {weighted(walk_batch(c, B, T, V)), weighted(walk_batch(c, B, T, V))};
    cpu.zero_grad();
    trainer.zero_grad();
    for (const rt::Batch& b : micro) {
      cpu.forward_backward(b, rt::LossOptions{}, true);
      trainer.accumulate(b, rt::LossOptions{});
    }
    cpu_norm.push_back(float(rt::apply_gradients(cpu, cpu_opt, 1e-3f, nullptr, to)));
    dev_norm.push_back(float(trainer.apply_gradients(1e-3f)));
  }
  c.expect_close("norm before clipping per update", dev_norm, cpu_norm, Tolerance{0, 5e-2});
  if (dev_opt.steps() != updates) c.fail("the optimizer counts " + std::to_string(dev_opt.steps()) + " updates");

  const rt::Batch probe = walk_batch(c, B, T, V);
  cpu.forward_backward(probe, rt::LossOptions{}, false);
  std::vector<float> entropy;
  c.expect_close("token cross-entropy after the updates", trainer.token_losses(probe, &entropy), cpu.token_losses(),
                 Tolerance{5e-2, 3e-2});
  if (entropy.size() != size_t(B * T)) c.fail("token_losses gave " + std::to_string(entropy.size()) + " entropies");
}

// The memory plan of train.device = "cuda" (nemokit/runtime/run/memory_plan.hpp, what `--dry-run`
// prints and the job's memory check reads) against what the trainer holds on the device, read
// from cudaMemGetInfo: once built (bf16 weights, fp32 gradients, masters and moments, cuBLASLt's
// workspace) and what a training step adds (the activations, the loss's scratch), for a Mamba-,
// an attention-, an MoE-heavy and a mixed stack. Measured over the emulated kernels: the state
// to the byte but for 8 KB (a GPU's cuBLAS handles take a little more), a step within 5%.
GPU_OP_CASE(trainer_memory_matches_the_plan) {
  auto device_free = [] {
    size_t free = 0, total = 0;
    cuda_or_throw(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    cuda_or_throw(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
    return double(free);
  };
  const double workspace = double(gpu::BlasLt::kDefaultWorkspaceBytes);  // the plan counts it with the activations
  for (const char* pattern : {"MM-MM", "*-*", "E-E", "M*-E"}) {
    rt::NemotronHConfig cfg = tiny_hybrid(pattern);
    cfg.vocab_size = 512;
    const int64_t B = 4, T = 256;
    rt::NemotronH model(cfg);
    model.init_weights(2);
    rt::AdamW optimizer(model.parameters(), rt::AdamWConfig{});
    const double before = device_free();
    gpu::GpuTrainer trainer(model, optimizer, rt::TrainOptions{});
    const double built = device_free();
    trainer.step(1e-3f, {walk_batch(c, B, T, cfg.vocab_size)});
    const double stepped = device_free();

    rt::MemoryLayout layout;
    layout.cuda = true, layout.micro_batch_size = B, layout.seq_length = T;
    const rt::MemoryPlan plan = rt::plan_memory(cfg, layout);
    const std::string p = std::string(" of ") + pattern;
    c.expect_close("device state" + p, std::vector<float>{float(before - built)},
                   std::vector<float>{float(double(plan.weights + plan.gradients + plan.optimizer) + workspace)},
                   Tolerance{0, 0.1});
    c.expect_close("device memory a step adds" + p, std::vector<float>{float(built - stepped)},
                   std::vector<float>{float(double(plan.activations) - workspace)}, Tolerance{0, 0.1});
  }
}
