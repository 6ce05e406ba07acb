// Nemotron-H on the GPU: the CPU NemotronH's forward (src/model/nemotron_h.cpp and the mixers)
// composed from the kernels of src/cuda/kernels/, with bf16 weights and activations and fp32
// statistics, logits and losses. Built from a CPU model, whose parameters it copies to the device.
//
// Supported: Mamba2 (M), attention (*), squared-ReLU MLP (-) and MoE (E, sigmoid top-k router
// with the correction bias, shared expert) layers, packed documents, tied or untied LM head.
// LoRA adapters (add_lora) on Mamba's, attention's, the MLP's and the shared expert's projections
// (mixers.hpp LoraPath). Refused at construction, naming the setting: LoRA dropout, adapters on a
// routed expert or a router, LatentMoE (moe_latent_size),
// multi-token prediction (num_nextn_predict_layers), omni encoders (vision_config,
// audio_config), expert parallel, an MLP activation other than relu2 (mlp_hidden_act), Mamba
// without a state (ssm_state_size 0).
//
// Training: forward_backward adds fp32 gradients of every trained parameter on the device
// (download_grads copies them to the CPU model's Parameter::grad); the optimizer step is
// gpu_trainer.hpp's. The MoE aux loss (moe_aux_loss_coeff) is refused there: the GPU routers
// count their choices for the aux-loss-free bias update only.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "nemokit/runtime/model.hpp"

namespace nemokit::rt::cuda {

class GpuNemotronH {
 public:
  // Copies every parameter of `model` to the current device (bf16). `model` must outlive this
  // object (upload_weights reads it again). Work is queued on `stream`. `training`: every
  // trained parameter also gets an fp32 gradient on the device.
  explicit GpuNemotronH(NemotronH& model, cudaStream_t stream = nullptr, bool training = false);
  ~GpuNemotronH();
  GpuNemotronH(const GpuNemotronH&) = delete;
  GpuNemotronH& operator=(const GpuNemotronH&) = delete;

  const NemotronHConfig& config() const;
  // Copies the CPU model's current parameter values to the device again.
  void upload_weights();

  // Logits [batch*seq, vocab] fp32 on the device, valid until the next call. tokens and doc
  // (document id per position, or null: one document per row) are device int32 [batch*seq].
  // Synchronizes the stream (MoE layers take their experts' sizes from the host; a token outside
  // the vocabulary is reported by throwing, as the CPU's Batch::validate does).
  const float* forward(const int32_t* tokens, int64_t batch, int64_t seq, const int32_t* doc = nullptr);

  // NemotronH::forward_backward on the GPU: the batch (host) is checked as Batch::validate does
  // and uploaded; the LM head's cross-entropy runs in row chunks that never hold all the logits
  // (mean over counted tokens, or sum; sum_t w_t ce_t with loss_weights). With `backward` the
  // gradients, scaled by opts.grad_scale, are added into the device gradients (a model built
  // for training) and the MoE routers count their choices (pad positions excepted), as a
  // training forward does on the CPU. Media inputs and opts.moe_aux_loss_coeff are refused.
  // Synchronizes the stream.
  StepResult forward_backward(const Batch& batch, const LossOptions& opts, bool backward = true);

  // Forward only, as NemotronH::forward_backward(batch, {}, false) then token_losses(): per
  // position of the batch the target's cross-entropy (0 where there is none) and, with `entropy`,
  // the entropy in nats of each target position's prediction (0 elsewhere). Synchronous.
  std::vector<float> token_losses(const Batch& batch, std::vector<float>* entropy = nullptr);

  // Training (a model built with training = true):
  void zero_grad();
  // Parameter::grad of the CPU model = the device gradients (synchronous).
  void download_grads();
  // The router counts of every MoE layer since the last call, as NemotronH::expert_load lists
  // them; the device counts restart from zero.
  std::vector<std::vector<int64_t>> take_expert_load();
  // Copies the CPU model's buffers (the routers' correction biases) to the device again.
  void upload_buffers();

  struct Impl;  // internal (model_impl.hpp)
  Impl& internals() { return *impl_; }  // for the trainer (gpu_trainer.cpp): the parameter blocks

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace nemokit::rt::cuda
