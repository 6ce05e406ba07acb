// Optimization: AdamW with decoupled weight decay (matrices only), global gradient-norm
// clipping and learning-rate schedules. AdamW keeps its moments whole on every rank, or, under
// ZeRO-1, sharded over the data-parallel ranks: each rank updates one block of the flattened
// trained parameters and the blocks are gathered back into every rank's weights.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "nemokit/runtime/model.hpp"
#include "nemokit/runtime/safetensors.hpp"

namespace nemokit::rt {

class Communicator;
class GradientSum;

struct AdamWConfig {
  float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f;
  float weight_decay = 0.1f;
};

// L2 norm over the gradients of trainable parameters (double accumulation, fixed order).
double global_grad_norm(const std::vector<Parameter*>& params);
// Scales gradients so their global norm is at most max_norm; returns the norm before clipping.
double clip_grad_norm(const std::vector<Parameter*>& params, double max_norm);
// The same with the norm given (expert parallel: the whole model's, expert_parallel_grad_norm).
void clip_grad_norm_to(const std::vector<Parameter*>& params, double max_norm, double norm);

class AdamW {
 public:
  AdamW(std::vector<Parameter*> params, AdamWConfig config);
  // ZeRO-1 over the ranks of `comm` (which must outlive the optimizer): the trained parameters
  // (those with a gradient at construction, in order: GradientSum's layout) are one flat vector
  // cut into size() equal blocks; this rank holds the moments of its block only. Experts split
  // over the ranks (expert parallel) keep their whole moments where they live: they are a
  // 1/ep share already.
  AdamW(std::vector<Parameter*> params, AdamWConfig config, Communicator& comm);
  bool sharded() const { return comm_ != nullptr; }

  // One update at learning rate lr from Parameter::grad; frozen parameters and buffers are
  // skipped. Not for a sharded optimizer (step_sharded).
  void step(float lr);
  // ZeRO-1's update (every rank calls it): reduce-scatters the summed gradients of `grads` so
  // each rank has the global gradient of its block, clips by the global norm (`max_grad_norm`,
  // 0 = no clipping), updates the block and all-gathers the new weights into every rank's
  // parameters. Returns the gradient norm before clipping. Expert parallel (`expert_parallel`
  // ranks per group): the experts' gradients must already be summed into Parameter::grad
  // (GradientSum::all_reduce_experts, store_experts); their squares count in the first group,
  // and each rank updates its own experts.
  double step_sharded(float lr, GradientSum& grads, double max_grad_norm, int expert_parallel = 1);
  int64_t steps() const { return step_; }
  // A whole-moment optimizer's moments of `p` (zeros before its first update), for a trainer
  // that keeps them elsewhere between checkpoints (the GPU's, trainer.hpp's DeviceTrainer).
  // Throws for a parameter it does not train and on a sharded optimizer.
  std::pair<Tensor*, Tensor*> moments_of(const Parameter* p);
  void set_steps(int64_t steps) { step_ = steps; }
  const AdamWConfig& config() const { return config_; }

  // Moments as named tensors ("<param>.exp_avg", "<param>.exp_avg_sq") for checkpoints;
  // parameters that were never trained (frozen) have none. A sharded optimizer has them only
  // after gather_state() (on every rank), until its next step; before that this throws.
  std::vector<NamedTensor> state_tensors() const;
  // Collective under ZeRO-1: assembles every block's moments on every rank, for a checkpoint.
  // Nothing to do for an unsharded optimizer.
  void gather_state();
  // Loads whole moments (a checkpoint's, whatever layout wrote it); a sharded optimizer keeps
  // its block of them.
  void load_state(const SafetensorsFile& file, int64_t steps);
  // The bytes of moments this rank holds between steps.
  size_t state_bytes() const;

 private:
  void load_whole_moments(const SafetensorsFile& file);
  void keep_own_block();  // ZeRO-1: from whole moments (a checkpoint's) to this rank's block
  void drop_flat_moments();  // ZeRO-1: whole moments of the sharded parameters are stale
  void all_gather_blocks(const std::function<void(size_t at, size_t n, float* out)>& pack_own,
                         const std::function<float*(size_t flat_index)>& param_data);
  std::vector<Parameter*> params_;
  AdamWConfig config_;
  std::vector<Tensor> m_, v_;  // whole moments: unsharded, or gathered for a checkpoint
  int64_t step_ = 0;
  // ZeRO-1: this rank's block [lo_, hi_) of the flat trained parameters, blocks of per_rank_.
  Communicator* comm_ = nullptr;
  std::vector<Parameter*> flat_;       // the trained replicated parameters, in flat order
  std::vector<size_t> experts_;        // params_ indices of trained expert-parallel experts
  std::vector<size_t> flat_to_param_;  // flat_[i] is params_[flat_to_param_[i]]
  std::vector<size_t> offset_;         // flat_[i] starts at offset_[i]; offset_.back() = total
  size_t per_rank_ = 0, lo_ = 0, hi_ = 0;
  std::vector<float> m_block_, v_block_;
  bool gathered_ = false;
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
