// Internal: GpuNemotronH's state, shared by its construction (build_layers.cpp) and its passes
// (gpu_model.cpp).
#pragma once
#include <cublas_v2.h>

#include <memory>
#include <vector>

#include "gpu_model.hpp"
#include "mixers.hpp"
#include "param_store.hpp"

namespace nemokit::rt::cuda {

struct GpuBlock {
  const bf16* norm = nullptr;  // the pre-norm's weight
  float* norm_grad = nullptr;
  std::unique_ptr<GpuMixer> mixer;
};

struct GpuNemotronH::Impl {
  Impl(NemotronH& model, cudaStream_t stream, bool training);
  ~Impl();

  // Embedding, the blocks and the final norm: final_normed holds the LM head's input after it.
  void backbone(const int32_t* tokens, int64_t batch, int64_t seq, const int32_t* doc, bool training = false,
                const uint8_t* pad = nullptr);
  // From the gradient of final_normed back through the final norm, the blocks and the embedding.
  void backbone_backward(const bf16* dfinal, const int32_t* tokens);
  void check_token_ids();  // synchronizes
  void upload_batch(const Batch& batch);

  NemotronH& model;
  NemotronHConfig config;
  cudaStream_t stream;
  BlasLt lt;
  cublasHandle_t cublas = nullptr;
  ParamStore params;
  const bf16 *embedding = nullptr, *norm_f = nullptr, *lm_head = nullptr;
  float *embedding_grad = nullptr, *norm_f_grad = nullptr, *lm_head_grad = nullptr;
  std::vector<GpuBlock> blocks;
  MixerRun run;  // the last forward's, which its backward reuses

  // Activations of the last forward, as the CPU model keeps them for its backward: the residual
  // stream at each block's input (and after the last), each block's normed input and rstd.
  int64_t rows = 0;
  std::vector<DeviceBuffer<bf16>> residual, normed;
  std::vector<DeviceBuffer<float>> rstd;
  DeviceBuffer<bf16> mixed, final_normed;
  DeviceBuffer<float> final_rstd, logits, row_loss, row_entropy, loss_sum;
  DeviceBuffer<double> loss_totals;
  DeviceBuffer<unsigned char> loss_scratch;
  DeviceBuffer<int32_t> bad_id;
  // The uploaded batch of forward_backward.
  DeviceBuffer<int32_t> tokens, targets, doc;
  DeviceBuffer<float> loss_weights;
  DeviceBuffer<uint8_t> pad;
  // The backward's gradients of the head's input, the residual stream and a block's normed input.
  DeviceBuffer<bf16> dfinal, dresidual, dnormed;
};

// Refuses what the GPU model does not implement yet, naming the setting (see gpu_model.hpp).
void check_supported(NemotronH& model);
// The device copies of every parameter and one GPU mixer per layer, from the CPU model.
void build_layers(GpuNemotronH::Impl& m);

}  // namespace nemokit::rt::cuda
