// DeviceTrainer on one CUDA device: rt::train_step with the model's passes on the GPU
// (GpuNemotronH), its fp32 gradients summed over the ranks, the global norm and clipping on the
// device, and AdamW over fp32 master weights that writes the bf16 working copy in the same pass
// (norm.cuh adamw_step), one launch per parameter block (a stacked expert block is one).
//
// Data parallel: each gradient block is summed over options.comm through host memory (the
// Communicator's collectives take host buffers; the NCCL backend stages them on the device
// again). The ranks' float sums are exact for two ranks in either order, as on the CPU path.
// Refused, naming the setting: a ZeRO-1 optimizer (parallel.zero1), and what GpuNemotronH
// refuses.
#pragma once
#include <cuda_runtime.h>

#include <vector>

#include "device_buffer.hpp"
#include "gpu_model.hpp"
#include "nemokit/runtime/trainer.hpp"

namespace nemokit::rt::cuda {

class GpuTrainer : public DeviceTrainer {
 public:
  GpuTrainer(NemotronH& model, AdamW& optimizer, const TrainOptions& options);
  ~GpuTrainer() override;

  TrainStepStats step(float lr, const std::vector<Batch>& micro_batches) override;
  void zero_grad() override;
  StepResult accumulate(const Batch& micro_batch, const LossOptions& opts) override;
  double apply_gradients(float lr) override;
  std::vector<float> token_losses(const Batch& batch, std::vector<float>* entropy) override;
  void sync_to_host() override;
  void sync_from_host() override;

  GpuNemotronH& gpu_model() { return gpu_; }

 private:
  // Per parameter block with a gradient: the fp32 masters and AdamW's moments.
  struct BlockState {
    DeviceBuffer<float> master, m, v;
  };
  void sum_gradients_over_ranks();
  void count_router_choices();
  double clip_gradients();  // returns the norm before clipping
  void update(float lr);

  NemotronH& model_;
  AdamW& optimizer_;
  TrainOptions options_;
  GpuNemotronH gpu_;
  std::vector<BlockState> state_;  // in ParamStore::blocks() order (empty for untrained blocks)
  DeviceBuffer<double> partials_, sumsq_;
  DeviceBuffer<float> clip_scale_;
  std::vector<float> staging_;
};

}  // namespace nemokit::rt::cuda
