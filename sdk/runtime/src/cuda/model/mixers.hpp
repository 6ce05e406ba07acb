// Internal: the GPU counterparts of src/model/mixers.hpp's four block mixers, forward and
// backward. Each holds device pointers to its bf16 weights and fp32 weight gradients (owned by
// the model's ParamStore; a null gradient: frozen, or not training) and owns its activation
// buffers, sized by the rows of the last forward: what its backward reads, as the CPU mixers keep
// theirs. Kept free of the runtime's headers, so the .cu files compile under nvcc without the CPU
// model's dependencies.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "device_buffer.hpp"
#include "matmul.cuh"

struct cublasContext;

namespace nemokit::rt::cuda {

using bf16 = __nv_bfloat16;

// What every mixer's forward runs with: the model's cuBLAS handles and stream, and the batch.
struct MixerRun {
  BlasLt* lt = nullptr;
  cublasContext* cublas = nullptr;  // the MoE experts' grouped GEMMs
  cudaStream_t stream = nullptr;
  int64_t batch = 0, seq = 0, rows = 0;
  const int32_t* doc = nullptr;  // device [rows] or null: one document per row
  // Training forwards count the routers' choices for the bias update, except at pad positions.
  bool training = false;
  const uint8_t* pad = nullptr;  // device [rows] or null
};

class GpuMixer {
 public:
  virtual ~GpuMixer() = default;
  // y [rows, hidden] is overwritten from x [rows, hidden].
  virtual void forward(const MixerRun& run, const bf16* x, bf16* y) = 0;
  // After forward with the same run and x: dx [rows, hidden] += d/dx from dy; the weight
  // gradients += theirs (fp32), as the CPU mixers' backward.
  virtual void backward(const MixerRun& run, const bf16* x, const bf16* dy, bf16* dx) = 0;
  // MoE: the router's choices per expert (device int32 [E]) counted by training forwards since
  // the caller last zeroed them; null for other mixers.
  virtual int32_t* router_counts() { return nullptr; }
};

// A LoRA adapter on one projection (NemotronH::add_lora, lora.hpp): y += scale * (x A^T) B^T
// with A [rank, in] and B [out, rank] in bf16 and fp32 gradients (null where frozen). rank 0:
// the projection has none.
struct LoraWeights {
  const bf16 *A = nullptr, *B = nullptr;
  float *dA = nullptr, *dB = nullptr;
  int64_t rank = 0;
  float scale = 0;
};

// An adapter's part of one projection's passes, beside the base product the mixer makes itself;
// nothing without an adapter. Keeps u = scale * x A^T of the last forward for the backward, as
// the CPU's Linear does.
class LoraPath {
 public:
  LoraPath() = default;
  explicit LoraPath(const LoraWeights& w) : w_(w) {}
  // y [rows, out] += u B^T, u = scale * x A^T (x [rows, in]).
  void forward(const MixerRun& run, bf16* y, const bf16* x, int64_t in, int64_t out);
  // After forward on the same x: dB += dy^T u; with du = scale * dy B, dA += du^T x and
  // dx += du A (dx may be null).
  void backward(const MixerRun& run, bf16* dx, const bf16* dy, const bf16* x, int64_t in, int64_t out);

 private:
  LoraWeights w_;
  DeviceBuffer<bf16> u_, du_;
};

struct Mamba2Dims {
  int64_t hidden, heads, head_dim, groups, state, conv_kernel, chunk;
  float eps, dt_min;
  int64_t d_inner() const { return heads * head_dim; }
  int64_t conv_dim() const { return d_inner() + 2 * groups * state; }
  int64_t in_proj_dim() const { return d_inner() + conv_dim() + heads; }
};
struct Mamba2Weights {
  const bf16 *in_proj, *conv_w, *conv_b /* may be null */, *A_log, *D, *dt_bias, *norm, *out_proj;
  LoraWeights lora_in_proj, lora_out_proj;
};
struct Mamba2Grads {
  float *in_proj, *conv_w, *conv_b, *A_log, *D, *dt_bias, *norm, *out_proj;
};
std::unique_ptr<GpuMixer> make_gpu_mamba2(const Mamba2Dims& dims, const Mamba2Weights& w, const Mamba2Grads& g);

struct AttentionDims {
  int64_t hidden, heads, kv_heads, head_dim;
};
struct AttentionWeights {
  const bf16 *q, *k, *v, *o;
  LoraWeights lora_q, lora_k, lora_v, lora_o;
};
struct AttentionGrads {
  float *q, *k, *v, *o;
};
std::unique_ptr<GpuMixer> make_gpu_attention(const AttentionDims& dims, const AttentionWeights& w,
                                             const AttentionGrads& g);

struct MlpWeights {
  const bf16 *up, *down;  // [inner, hidden], [hidden, inner]
  LoraWeights lora_up, lora_down;
};
struct MlpGrads {
  float *up, *down;
};
std::unique_ptr<GpuMixer> make_gpu_mlp(int64_t hidden, int64_t inner, const MlpWeights& w, const MlpGrads& g);

struct MoeDims {
  int64_t hidden, experts, top_k, inner, shared_inner /* 0: no shared expert */;
  float routed_scaling_factor;
  bool norm_topk_prob;
};
struct MoeWeights {
  const bf16* gate;           // [E, hidden]
  const float* score_bias;    // [E] fp32: e_score_correction_bias (see ParamStore)
  const bf16 *up, *down;      // stacked [E, inner, hidden], [E, hidden, inner]
  MlpWeights shared;          // null pointers without a shared expert
};
struct MoeGrads {
  float *gate, *up, *down;  // up and down: the stacked blocks' gradients
  MlpGrads shared;
};
std::unique_ptr<GpuMixer> make_gpu_moe(const MoeDims& dims, const MoeWeights& w, const MoeGrads& g);

}  // namespace nemokit::rt::cuda
