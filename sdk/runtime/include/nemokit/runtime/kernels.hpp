// CPU kernels of the hybrid model, forward and backward, on plain row-major float arrays.
// Conventions: activations are [rows, features] with rows = batch * seq. Every backward
// kernel ADDS into its gradient outputs (dx, dw, ...), so callers zero them once and the
// residual stream and gradient accumulation need no extra copies.
// Packed sequences: `doc` is an int32 per row giving the document id of each position;
// ids are contiguous segments within a sequence, and no kernel mixes positions of
// different documents. A null `doc` means one document per sequence.
#pragma once
#include <cmath>
#include <cstdint>

namespace nemokit::rt::kernels {

// ---- matrix products (OpenBLAS) ----
// y[M,N] = x[M,K] * w[N,K]^T  (overwrites y)
void linear_forward(float* y, const float* x, const float* w, int64_t M, int64_t K, int64_t N);
// dx[M,K] += dy * w ; dw[N,K] += dy^T * x   (either may be null)
void linear_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, int64_t M,
                     int64_t K, int64_t N);

// ---- embedding ----
void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t rows, int64_t vocab,
                       int64_t C);
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t rows, int64_t C);

// ---- RMSNorm: y = w * x / sqrt(mean(x^2) + eps), over groups of `group` features ----
void rmsnorm_forward(float* y, float* rstd, const float* x, const float* w, int64_t rows, int64_t C,
                     int64_t group, float eps);
void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w,
                      const float* rstd, int64_t rows, int64_t C, int64_t group);

// ---- elementwise ----
// exp(x) for float with about 1 ulp error (Cephes' range reduction and polynomial), written
// without branches or library calls so loops over it vectorize. Inputs below -87.3 give
// ~1e-38 instead of 0 (callers mask what must be exactly zero).
inline float exp_fast(float x) {
  x = x < -87.3f ? -87.3f : x;
  x = x > 88.7f ? 88.7f : x;
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.0f;
  const int32_t bits = (int32_t(n) + 127) << 23;
  float scale;
  __builtin_memcpy(&scale, &bits, sizeof scale);
  return e * scale;
}
inline float sigmoid(float x) { return 1.0f / (1.0f + exp_fast(-x)); }
inline float silu(float x) { return x * sigmoid(x); }
inline float silu_grad(float x) {
  const float s = sigmoid(x);
  return s * (1.0f + x * (1.0f - s));
}
// Same threshold as torch.nn.functional.softplus (beta 1, threshold 20).
inline float softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }
void relu2_forward(float* y, const float* x, int64_t n);
void relu2_backward(float* dx, const float* dy, const float* x, int64_t n);

// ---- causal depthwise conv1d over `channels` columns taken from x (row stride x_stride),
//      weight [channels, K], bias [channels]; output [rows, channels] ----
void conv1d_forward(float* y, const float* x, int64_t x_stride, const float* w, const float* bias,
                    const int32_t* doc, int64_t batch, int64_t seq, int64_t channels, int64_t K);
void conv1d_backward(float* dx, int64_t dx_stride, float* dw, float* dbias, const float* dy, const float* x,
                     int64_t x_stride, const float* w, const int32_t* doc, int64_t batch, int64_t seq,
                     int64_t channels, int64_t K);

// ---- Mamba2 SSD scan (chunked), per head h with group g = h / (H / G):
//   a_t = A_h dt_t;  S_t = exp(a_t) S_{t-1} + (dt_t x_t) (x) B_t;  y_t = C_t . S_t + D_h x_t
// computed chunk by chunk (intra-chunk quadratic form + carried chunk states).
struct SsdShape {
  int64_t batch, seq, heads, head_dim, groups, state, chunk;
  int64_t num_chunks() const { return (seq + chunk - 1) / chunk; }
};
struct SsdInputs {
  const float* x;   // row r, head h: x + r*stride + h*head_dim
  const float* B;   // row r, group g: B + r*stride + g*state
  const float* C;
  int64_t stride;   // row stride shared by x, B, C (they live in one xBC row)
  const float* dt;  // [rows, heads], already softplus'ed and clamped
  const float* A;   // [heads], negative
  const float* D;   // [heads]
  const int32_t* doc;
};
// y: [rows, heads*head_dim]; chunk_states: [batch, heads, num_chunks, head_dim, state] (state at
// each chunk start, kept for the backward pass)
void ssd_forward(const SsdShape& s, const SsdInputs& in, float* y, float* chunk_states);
struct SsdGrads {
  float* dx;   // same layout/stride as x
  float* dB;
  float* dC;
  float* ddt;  // [rows, heads]
  float* dA;   // [heads]
  float* dD;   // [heads]
};
void ssd_backward(const SsdShape& s, const SsdInputs& in, const float* chunk_states, const float* dy,
                  const SsdGrads& g);

// ---- grouped-query attention (no rotary), scale = 1/sqrt(head_dim); causal unless told ----
struct AttentionShape {
  int64_t batch, seq, heads, kv_heads, head_dim;
  bool causal = true;  // false: every position sees the whole sequence (encoders)
};
// q [rows, heads*hd], k/v [rows, kv_heads*hd] -> out [rows, heads*hd]; probs [batch, heads, seq, seq]
void attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v,
                       const int32_t* doc, float* out, float* probs);
void attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v,
                        const int32_t* doc, const float* probs, const float* dout, float* dq, float* dk,
                        float* dv);

// ---- cross-entropy over logits [rows, V] with targets (<0 = ignored) ----
// Writes per-row loss (0 for ignored rows) and, when dlogits is non-null, WRITES (the one
// exception to adding) grad_scale * d(loss_row)/d(logits), zero for ignored rows.
// row_weight (optional) multiplies each row's gradient: a weighted loss sum_r w_r loss_r.
// Returns the summed (unweighted) loss (double).
double cross_entropy(const float* logits, const int32_t* targets, int64_t rows, int64_t V, float* row_loss,
                     float* dlogits, float grad_scale, const float* row_weight = nullptr);

}  // namespace nemokit::rt::kernels
