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
  std::unique_ptr<GpuMixer> mixer;
};

struct GpuNemotronH::Impl {
  Impl(NemotronH& model, cudaStream_t stream);
  ~Impl();

  // Embedding, the blocks and the final norm: final_normed_ holds the LM head's input after it.
  void backbone(const int32_t* tokens, int64_t batch, int64_t seq, const int32_t* doc);
  void check_token_ids();  // synchronizes

  NemotronH& model;
  NemotronHConfig config;
  cudaStream_t stream;
  BlasLt lt;
  cublasHandle_t cublas = nullptr;
  ParamStore params;
  const bf16 *embedding = nullptr, *norm_f = nullptr, *lm_head = nullptr;
  std::vector<GpuBlock> blocks;

  // Activations of the last forward, as the CPU model keeps them for its backward: the residual
  // stream at each block's input (and after the last), each block's normed input and rstd.
  int64_t rows = 0;
  std::vector<DeviceBuffer<bf16>> residual, normed;
  std::vector<DeviceBuffer<float>> rstd;
  DeviceBuffer<bf16> mixed, final_normed;
  DeviceBuffer<float> final_rstd, logits, row_loss, loss_sum;
  DeviceBuffer<double> loss_totals;
  DeviceBuffer<unsigned char> loss_scratch;
  DeviceBuffer<int32_t> bad_id;
};

// Refuses what the GPU model does not implement yet, naming the setting (see gpu_model.hpp).
void check_supported(NemotronH& model);
// The device copies of every parameter and one GPU mixer per layer, from the CPU model.
void build_layers(GpuNemotronH::Impl& m);

}  // namespace nemokit::rt::cuda
