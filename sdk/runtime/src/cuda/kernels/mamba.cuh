// Mamba2 mixer kernels: the causal depthwise conv1d over xBC and the chunked SSD scan, forward
// and backward, with document resets in packed rows (`doc` per row, null: one document per
// sequence). The CUDA counterparts of kernels::conv1d_* and kernels::ssd_* (kernels.hpp), same
// shapes, layouts and "adds into" gradients.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace nemokit::rt::cuda {

// ---- causal depthwise conv1d: y[t,c] = bias[c] + sum_k w[c,k] x[t-K+1+k, c], taps before the
// sequence start or in an earlier document read zero. x: `channels` columns of rows with stride
// x_stride (the xBC columns of in_proj's output); y: [rows, channels]; w: [channels, K];
// bias: [channels] or null. K <= 8.
// w and bias are bf16: the model's working copy of every weight is bf16 (fp32 masters live in the
// optimizer), so the conv reads the same copy the matmuls do; they are 4*channels values, so fp32
// would buy nothing measurable in speed and the bf16 rounding is what the model trains with.
void conv1d_forward(__nv_bfloat16* y, const __nv_bfloat16* x, int64_t x_stride, const __nv_bfloat16* w,
                    const __nv_bfloat16* bias, const int32_t* doc, int64_t batch, int64_t seq, int64_t channels,
                    int64_t K, cudaStream_t stream);
// Bytes of scratch conv1d_backward needs (per row tile partial sums of dw and dbias, reduced in a
// fixed order afterwards so the weight gradients are deterministic: no float atomics).
size_t conv1d_backward_workspace_bytes(int64_t batch, int64_t seq, int64_t channels, int64_t K);
// dx[j] += sum_k w[k] dy[j+K-1-k] (bf16, row stride dx_stride; may be null); dw [channels, K] and
// dbias [channels] are fp32 and added into (either may be null). dy: [rows, channels].
void conv1d_backward(__nv_bfloat16* dx, int64_t dx_stride, float* dw, float* dbias, const __nv_bfloat16* dy,
                     const __nv_bfloat16* x, int64_t x_stride, const __nv_bfloat16* w, const int32_t* doc,
                     int64_t batch, int64_t seq, int64_t channels, int64_t K, void* workspace, cudaStream_t stream);

// ---- Mamba2 SSD scan, per head h with group g = h / (heads / groups):
//   a_t = A_h dt_t;  S_t = exp(a_t) S_{t-1} + (dt_t x_t) (x) B_t;  y_t = C_t . S_t + D_h x_t
// computed chunk by chunk as mamba_ssm's kernels do. The carried state is dropped at a document
// start and positions of different documents never interact.
struct SsdShape {
  int64_t batch, seq, heads, head_dim, groups, state, chunk;  // chunk <= 256
  int64_t num_chunks() const { return (seq + chunk - 1) / chunk; }
};
struct SsdInputs {
  const __nv_bfloat16* x;  // row r, head h: x + r*stride + h*head_dim
  const __nv_bfloat16* B;  // row r, group g: B + r*stride + g*state
  const __nv_bfloat16* C;
  int64_t stride;          // row stride shared by x, B, C (one xBC row)
  const float* dt;         // [rows, heads], already softplus'ed and clamped (> 0)
  const float* A;          // [heads], negative
  const float* D;          // [heads]
  const int32_t* doc;      // [rows] or null
};
// y: [rows, heads*head_dim] bf16 (written); chunk_states: [batch, heads, num_chunks, head_dim,
// state] fp32 (written): the state at each chunk's start, kept for the backward pass.
void ssd_forward(const SsdShape& s, const SsdInputs& in, __nv_bfloat16* y, float* chunk_states,
                 cudaStream_t stream);

// Gradients, all ADDED into. dx/dB/dC are fp32 with the layout and stride of x/B/C (they share
// one xBC gradient row, so they share a type): dB and dC are sums over the heads of a group and
// over every chunk's terms, and keeping the add exact as on the CPU costs only rows*conv_dim*4
// bytes; the elementwise silu backward that follows rounds to bf16 for the conv.
struct SsdGrads {
  float* dx;
  float* dB;
  float* dC;
  float* ddt;  // [rows, heads]
  float* dA;   // [heads]
  float* dD;   // [heads]
};
// Scratch for ssd_backward: the state gradients of every chunk (the size of chunk_states), the
// per-row gradient of the cumsum of A*dt, and per-(batch, chunk, head) partials of dA and dD that
// are reduced in a fixed order (deterministic: no float atomics anywhere in the backward).
size_t ssd_backward_workspace_bytes(const SsdShape& s);
// chunk_states: what ssd_forward wrote; dy: [rows, heads*head_dim] bf16.
void ssd_backward(const SsdShape& s, const SsdInputs& in, const float* chunk_states, const __nv_bfloat16* dy,
                  const SsdGrads& g, void* workspace, cudaStream_t stream);

}  // namespace nemokit::rt::cuda
