// Optimization: AdamW with decoupled weight decay (matrices only), global gradient-norm
// clipping and learning-rate schedules.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nemokit/runtime/model.hpp"
#include "nemokit/runtime/safetensors.hpp"

namespace nemokit::rt {

struct AdamWConfig {
  float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f;
  float weight_decay = 0.1f;
};

// L2 norm over the gradients of trainable parameters (double accumulation, fixed order).
double global_grad_norm(const std::vector<Parameter*>& params);
// Scales gradients so their global norm is at most max_norm; returns the norm before clipping.
double clip_grad_norm(const std::vector<Parameter*>& params, double max_norm);

class AdamW {
 public:
  AdamW(std::vector<Parameter*> params, AdamWConfig config);
  // One update at learning rate lr; frozen parameters and buffers are skipped.
  void step(float lr);
  int64_t steps() const { return step_; }
  const AdamWConfig& config() const { return config_; }

  // Moments as named tensors ("<param>.exp_avg", "<param>.exp_avg_sq") for checkpoints;
  // parameters that were never trained (frozen) have none.
  std::vector<NamedTensor> state_tensors() const;
  void load_state(const SafetensorsFile& file, int64_t steps);

 private:
  std::vector<Parameter*> params_;
  AdamWConfig config_;
  std::vector<Tensor> m_, v_;
  int64_t step_ = 0;
};

struct LrSchedule {
  enum class Kind { constant, cosine, wsd };
  Kind kind = Kind::cosine;
  float max_lr = 3e-4f, min_lr = 3e-5f;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  int64_t decay_steps = 0;  // wsd: length of the final decay phase (linear to min_lr)
  // Learning rate for update number `step` (0-based): linear warmup from max_lr/warmup, then
  // cosine to min_lr at total_steps (cosine), or constant then linear decay (wsd).
  float lr(int64_t step) const;
  static Kind parse_kind(const std::string& name);  // "constant", "cosine", "wsd"
};

}  // namespace nemokit::rt
