// Nemotron-H on the GPU: the CPU NemotronH's forward (src/model/nemotron_h.cpp and the mixers)
// composed from the kernels of src/cuda/kernels/, with bf16 weights and activations and fp32
// statistics, logits and losses. Built from a CPU model, whose parameters it copies to the device.
//
// Supported: Mamba2 (M), attention (*), squared-ReLU MLP (-) and MoE (E, sigmoid top-k router
// with the correction bias, shared expert) layers, packed documents, tied or untied LM head.
// Refused at construction, naming the setting: LoRA adapters, LatentMoE (moe_latent_size),
// multi-token prediction (num_nextn_predict_layers), omni encoders (vision_config,
// audio_config), expert parallel, an MLP activation other than relu2 (mlp_hidden_act), Mamba
// without a state (ssm_state_size 0).
//
// Forward only so far: the backward, the fp32 master weights and the optimizer step come next
// (ParamStore::Entry::master; each mixer already keeps the activations its backward will read).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>

#include "nemokit/runtime/model.hpp"

namespace nemokit::rt::cuda {

class GpuNemotronH {
 public:
  // Copies every parameter of `model` to the current device (bf16). `model` must outlive this
  // object (upload_weights reads it again). Work is queued on `stream`.
  explicit GpuNemotronH(NemotronH& model, cudaStream_t stream = nullptr);
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

  // The loss of NemotronH::forward_backward(batch, opts, backward = false): cross-entropy of the
  // LM head over targets (device int32 [batch*seq], < 0: not counted) in row chunks that never
  // hold all the logits, mean over counted tokens (opts.mean) or sum; with loss_weights (device
  // fp32 [batch*seq], or null) sum_t w_t ce_t. Without training there is no MoE aux loss, as on
  // the CPU. Synchronizes the stream.
  StepResult loss(const int32_t* tokens, const int32_t* targets, int64_t batch, int64_t seq,
                  const int32_t* doc = nullptr, const float* loss_weights = nullptr, const LossOptions& opts = {});

  struct Impl;  // internal (model_impl.hpp)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace nemokit::rt::cuda
