// Grouped-query attention without rotary embedding, flash style: tiled, with an online softmax,
// so no [seq, seq] matrix is ever stored. The forward keeps each row's logsumexp instead of the
// CPU reference's probabilities; the backward recomputes the probabilities from it
// (FlashAttention-2). Masking is the CPU's: a query sees the keys of its own document (`doc`,
// null: the whole sequence is one document), and with `causal` only those at or before it.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace nemokit::rt::cuda {

// The CPU's kernels::AttentionShape (kept here so this header needs no runtime header).
// head_dim: 8, 16, 32, 64 or 128; heads a multiple of kv_heads; scale 1/sqrt(head_dim).
struct AttentionShape {
  int64_t batch, seq, heads, kv_heads, head_dim;
  bool causal = true;  // false: every position sees its whole document (encoders)
};

// q [rows, heads*hd], k/v [rows, kv_heads*hd] (rows = batch*seq, bf16, 16-byte aligned) ->
// WRITES out [rows, heads*hd] (bf16, 16-byte aligned) and lse [batch, heads, seq] (fp32, the
// natural-log logsumexp of each query's scaled scores, what the backward needs).
void attention_forward(const AttentionShape& s, const __nv_bfloat16* q, const __nv_bfloat16* k,
                       const __nv_bfloat16* v, const int32_t* doc, __nv_bfloat16* out, float* lse,
                       cudaStream_t stream);

// Bytes of the scratch attention_backward needs: an fp32 dq accumulator [rows, heads*hd] and
// the rows' D = rowsum(dout * out) [batch, heads, seq].
size_t attention_backward_workspace_bytes(const AttentionShape& s);

// ADDS into dq [rows, heads*hd], dk and dv [rows, kv_heads*hd] (bf16, like the activations
// the projections' backward reads; every sum behind them is fp32). out and lse are the
// forward's; dout as q. workspace: attention_backward_workspace_bytes(s), 4-byte aligned, no
// contents needed, not to be shared with another stream's call while this one runs.
void attention_backward(const AttentionShape& s, const __nv_bfloat16* q, const __nv_bfloat16* k,
                        const __nv_bfloat16* v, const int32_t* doc, const __nv_bfloat16* out, const float* lse,
                        const __nv_bfloat16* dout, __nv_bfloat16* dq, __nv_bfloat16* dk, __nv_bfloat16* dv,
                        void* workspace, cudaStream_t stream);

}  // namespace nemokit::rt::cuda
