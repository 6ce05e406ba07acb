// RMSNorm forward and backward (plain, fused with the residual add, and Mamba's gated form).
//
// Layout of the work: a block owns one group of one row (forward) or one group of a strided set
// of rows (backward). Thread t of T holds the features {(j*T + t)*V + k : j < NV, k < V} of the
// group: each of its loads is V bf16 (one 16-byte load when V = 8), consecutive threads read
// consecutive 16-byte words (coalesced), and the NV*V values stay in registers between the sum
// of squares and the scaling, so x is read from memory once. The per-group sums are block
// reductions in fp32 (warp butterflies, then the warps' partials in a fixed order).
// Group sizes up to 16384 (NV*V*T with T <= 512); not a multiple of 8 (or an unaligned
// pointer) takes the V = 1 path.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "cuda_check.cuh"
#include "norm.cuh"
#include "norm_device.cuh"

namespace nemokit::rt::cuda {
namespace {

using namespace norm_detail;

constexpr int kMaxThreads = 512;
constexpr int64_t kMaxGroup = 16384;

enum class Mode { kPlain, kResidual, kGated };

struct FwdArgs {
  __nv_bfloat16* y;
  float* rstd;
  const __nv_bfloat16* x;      // plain, gated: x; residual: h
  const __nv_bfloat16* other;  // residual: delta (may be null); gated: z
  int64_t other_stride;        // gated: z's row stride
  __nv_bfloat16* h_out;        // residual (may alias x)
  const __nv_bfloat16* w;
  int64_t C, group;
  float eps;
};

// grid (rows, groups); no __restrict__: h_out may be h.
template <Mode M, int V, int NV>
__global__ void __launch_bounds__(kMaxThreads) rmsnorm_forward_kernel(FwdArgs a) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x, g = blockIdx.y, groups = gridDim.y;
  const int64_t off = row * a.C + g * a.group;
  float v[NV][V];
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < NV; ++j) {
    const int64_t c = (int64_t(j) * blockDim.x + threadIdx.x) * V;
    if (c < a.group) {  // V = 8: group % 8 == 0, so c < group means c + 8 <= group
      load_bf16<V>(a.x + off + c, v[j]);
      if constexpr (M == Mode::kResidual) {
        if (a.other) {
          float d[V];
          load_bf16<V>(a.other + off + c, d);
          // The norm reads the residual stream as stored (bf16), as a separate norm kernel would.
#pragma unroll
          for (int k = 0; k < V; ++k) v[j][k] = round_bf16(v[j][k] + d[k]);
        }
        if (a.other || a.h_out != a.x) store_bf16<V>(a.h_out + off + c, v[j]);
      } else if constexpr (M == Mode::kGated) {
        float z[V];
        load_bf16<V>(a.other + row * a.other_stride + g * a.group + c, z);
#pragma unroll
        for (int k = 0; k < V; ++k) v[j][k] *= silu(z[k]);
      }
#pragma unroll
      for (int k = 0; k < V; ++k) ss += v[j][k] * v[j][k];
    } else {
#pragma unroll
      for (int k = 0; k < V; ++k) v[j][k] = 0.0f;
    }
  }
  ss = block_sum(ss, scratch);
  const float s = 1.0f / sqrtf(ss / float(a.group) + a.eps);  // IEEE sqrt and division, as the CPU
  if (threadIdx.x == 0) a.rstd[row * groups + g] = s;
#pragma unroll
  for (int j = 0; j < NV; ++j) {
    const int64_t c = (int64_t(j) * blockDim.x + threadIdx.x) * V;
    if (c < a.group) {
      float wv[V];
      load_bf16<V>(a.w + g * a.group + c, wv);
#pragma unroll
      for (int k = 0; k < V; ++k) wv[k] = wv[k] * (v[j][k] * s);
      store_bf16<V>(a.y + off + c, wv);
    }
  }
}

struct BwdArgs {
  __nv_bfloat16* dx;  // may be null
  __nv_bfloat16* dz;  // gated, may be null
  int64_t dz_stride;
  float* partials;  // [gridDim.x, C], null when dw is not wanted
  const __nv_bfloat16* dy;
  const __nv_bfloat16* x;
  const __nv_bfloat16* z;  // gated
  int64_t z_stride;
  const __nv_bfloat16* w;
  const float* rstd;
  int64_t rows, C, group;
};

// grid (chunks, groups): block (b, g) takes rows b, b + chunks, ... of group g and keeps its
// partial dw for the group's features in registers (thread-owned features, so no atomics and a
// fixed order); at the end it writes them to partials[b]. Two passes per row: the dot product
// (a block sum), then dx and dw; the second pass reloads dy, x, w, which the first just brought
// into L1, rather than holding 3*NV*V more registers.
// With g = x (plain) or x*silu(z) (gated), n = g*rstd:
//   dg = rstd * (dy*w - n * mean(dy*w*n));  dx += dg (plain) | dg*silu(z) (gated);
//   dz += dg*x*silu'(z);  dw += sum_rows dy*n.
template <Mode M, int V, int NV>
__global__ void __launch_bounds__(kMaxThreads) rmsnorm_backward_kernel(BwdArgs a) {
  __shared__ float scratch[32];
  const int64_t g = blockIdx.y, groups = gridDim.y;
  float dw[NV][V];
#pragma unroll
  for (int j = 0; j < NV; ++j)
#pragma unroll
    for (int k = 0; k < V; ++k) dw[j][k] = 0.0f;

  // Loads one vector of dy, w and the normalized input's pre-image (x, or x*silu(z) with x and
  // silu(z) kept for the gate's gradients).
  auto load = [&](int64_t row, int64_t c, float* dyv, float* wv, float* xv, float* gv, float* zv) {
    const int64_t off = row * a.C + g * a.group + c;
    load_bf16<V>(a.dy + off, dyv);
    load_bf16<V>(a.w + g * a.group + c, wv);
    load_bf16<V>(a.x + off, xv);
    if constexpr (M == Mode::kGated) {
      load_bf16<V>(a.z + row * a.z_stride + g * a.group + c, zv);
#pragma unroll
      for (int k = 0; k < V; ++k) gv[k] = xv[k] * silu(zv[k]);
    } else {
#pragma unroll
      for (int k = 0; k < V; ++k) gv[k] = xv[k];
    }
  };

  for (int64_t row = blockIdx.x; row < a.rows; row += gridDim.x) {  // uniform across the block
    const float s = a.rstd[row * groups + g];
    float dot = 0.0f;
#pragma unroll
    for (int j = 0; j < NV; ++j) {
      const int64_t c = (int64_t(j) * blockDim.x + threadIdx.x) * V;
      if (c < a.group) {
        float dyv[V], wv[V], xv[V], gv[V], zv[V];
        load(row, c, dyv, wv, xv, gv, zv);
#pragma unroll
        for (int k = 0; k < V; ++k) dot += dyv[k] * wv[k] * (gv[k] * s);
      }
    }
    const float mean = block_sum(dot, scratch) / float(a.group);
#pragma unroll
    for (int j = 0; j < NV; ++j) {
      const int64_t c = (int64_t(j) * blockDim.x + threadIdx.x) * V;
      if (c < a.group) {
        float dyv[V], wv[V], xv[V], gv[V], zv[V], dxv[V], dzv[V];
        load(row, c, dyv, wv, xv, gv, zv);
#pragma unroll
        for (int k = 0; k < V; ++k) {
          const float n = gv[k] * s;
          const float dg = s * (dyv[k] * wv[k] - n * mean);
          dw[j][k] += dyv[k] * n;
          if constexpr (M == Mode::kGated) {
            dxv[k] = dg * silu(zv[k]);
            dzv[k] = dg * xv[k] * silu_grad(zv[k]);
          } else {
            dxv[k] = dg;
          }
        }
        const int64_t off = row * a.C + g * a.group + c;
        if (a.dx) {
          float old[V];
          load_bf16<V>(a.dx + off, old);
#pragma unroll
          for (int k = 0; k < V; ++k) old[k] += dxv[k];
          store_bf16<V>(a.dx + off, old);
        }
        if constexpr (M == Mode::kGated) {
          if (a.dz) {
            __nv_bfloat16* p = a.dz + row * a.dz_stride + g * a.group + c;
            float old[V];
            load_bf16<V>(p, old);
#pragma unroll
            for (int k = 0; k < V; ++k) old[k] += dzv[k];
            store_bf16<V>(p, old);
          }
        }
      }
    }
  }
  if (a.partials) {
    float* out = a.partials + int64_t(blockIdx.x) * a.C + g * a.group;
#pragma unroll
    for (int j = 0; j < NV; ++j) {
      const int64_t c = (int64_t(j) * blockDim.x + threadIdx.x) * V;
      if (c < a.group)
#pragma unroll
        for (int k = 0; k < V; ++k) out[c + k] = dw[j][k];
    }
  }
}

// dw[c] += sum over chunks of partials[chunk, c], in chunk order (the same bits every run).
__global__ void reduce_partials_kernel(float* dw, const float* partials, int64_t chunks, int64_t C) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float sum = 0.0f;
  for (int64_t b = 0; b < chunks; ++b) sum += partials[b * C + c];
  dw[c] += sum;
}

// ---- launch plans ----

struct Plan {
  int V, NV, threads;
};

// The fewest values per thread that keep the block within kMaxThreads threads.
Plan plan_for(int64_t group, bool vec) {
  static constexpr int kVecNv[3] = {1, 2, 4}, kScalarNv[3] = {1, 4, 32};
  const int V = vec ? 8 : 1;
  const int* nvs = vec ? kVecNv : kScalarNv;
  for (int i = 0; i < 3; ++i) {
    const int nv = nvs[i];
    const int64_t t = (group + int64_t(V) * nv - 1) / (int64_t(V) * nv);
    if (t <= kMaxThreads) return {V, nv, int((t + 31) / 32 * 32)};
  }
  throw std::logic_error("rmsnorm: no plan for group " + std::to_string(group));  // checked before
}

template <Mode M>
void (*forward_kernel(const Plan& p))(FwdArgs) {
  if (p.V == 8) {
    if (p.NV == 1) return rmsnorm_forward_kernel<M, 8, 1>;
    if (p.NV == 2) return rmsnorm_forward_kernel<M, 8, 2>;
    if (p.NV == 4) return rmsnorm_forward_kernel<M, 8, 4>;
  } else {
    if (p.NV == 1) return rmsnorm_forward_kernel<M, 1, 1>;
    if (p.NV == 4) return rmsnorm_forward_kernel<M, 1, 4>;
    if (p.NV == 32) return rmsnorm_forward_kernel<M, 1, 32>;
  }
  throw std::logic_error("rmsnorm: no forward kernel for the plan");
}

template <Mode M>
void (*backward_kernel(const Plan& p))(BwdArgs) {
  if (p.V == 8) {
    if (p.NV == 1) return rmsnorm_backward_kernel<M, 8, 1>;
    if (p.NV == 2) return rmsnorm_backward_kernel<M, 8, 2>;
    if (p.NV == 4) return rmsnorm_backward_kernel<M, 8, 4>;
  } else {
    if (p.NV == 1) return rmsnorm_backward_kernel<M, 1, 1>;
    if (p.NV == 4) return rmsnorm_backward_kernel<M, 1, 4>;
    if (p.NV == 32) return rmsnorm_backward_kernel<M, 1, 32>;
  }
  throw std::logic_error("rmsnorm: no backward kernel for the plan");
}

void check_shape(const char* op, int64_t rows, int64_t C, int64_t group) {
  if (rows < 0 || rows > int64_t(INT32_MAX) || group <= 0 || C <= 0 || C % group != 0 || group > kMaxGroup ||
      C / group > 65535)
    throw std::invalid_argument(std::string(op) + ": rows " + std::to_string(rows) + ", C " + std::to_string(C) +
                                ", group " + std::to_string(group) +
                                ": need C a multiple of group, group <= 16384, C/group <= 65535, rows < 2^31");
}

// The backward's number of row chunks: one wave of blocks on the device (the occupancy of the
// vector kernel, which the workspace size must not depend on pointers to know), split over the
// groups; never more chunks than rows.
template <Mode M>
int64_t backward_chunks(int64_t rows, int64_t C, int64_t group) {
  const Plan p = plan_for(group, true);
  int per_sm = 0, device = 0, sms = 0;
  NEMOKIT_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, backward_kernel<M>(p), p.threads, 0));
  NEMOKIT_CUDA_CHECK(cudaGetDevice(&device));
  NEMOKIT_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int64_t blocks = int64_t(sms) * std::max(per_sm, 1);
  return std::clamp<int64_t>(blocks / (C / group), 1, std::max<int64_t>(rows, 1));
}

template <Mode M>
void launch_forward(const FwdArgs& a, int64_t rows, bool vec, cudaStream_t stream) {
  const Plan p = plan_for(a.group, vec);
  const dim3 grid(unsigned(rows), unsigned(a.C / a.group));
  NEMOKIT_LAUNCH(grid, p.threads, 0, stream, forward_kernel<M>(p))(a);
  NEMOKIT_CUDA_LAUNCHED("rmsnorm_forward_kernel");
}

template <Mode M>
void launch_backward(BwdArgs a, float* dw, bool vec, void* workspace, cudaStream_t stream) {
  const Plan p = plan_for(a.group, vec);
  const int64_t chunks = backward_chunks<M>(a.rows, a.C, a.group);
  void* owned = nullptr;
  if (dw && !workspace) {
    NEMOKIT_CUDA_CHECK(cudaMallocAsync(&owned, size_t(chunks * a.C) * sizeof(float), stream));
    workspace = owned;
  }
  a.partials = dw ? static_cast<float*>(workspace) : nullptr;
  const dim3 grid(unsigned(chunks), unsigned(a.C / a.group));
  NEMOKIT_LAUNCH(grid, p.threads, 0, stream, backward_kernel<M>(p))(a);
  NEMOKIT_CUDA_LAUNCHED("rmsnorm_backward_kernel");
  if (dw) {
    NEMOKIT_LAUNCH(unsigned((a.C + 255) / 256), 256, 0, stream, reduce_partials_kernel)(dw, a.partials, chunks, a.C);
    NEMOKIT_CUDA_LAUNCHED("reduce_partials_kernel");
  }
  if (owned) NEMOKIT_CUDA_CHECK(cudaFreeAsync(owned, stream));
}

}  // namespace

void rmsnorm_forward(__nv_bfloat16* y, float* rstd, const __nv_bfloat16* x, const __nv_bfloat16* w, int64_t rows,
                     int64_t C, int64_t group, float eps, cudaStream_t stream) {
  check_shape("rmsnorm_forward", rows, C, group);
  if (rows == 0) return;
  const bool vec = group % 8 == 0 && aligned16(y) && aligned16(x) && aligned16(w);
  launch_forward<Mode::kPlain>(FwdArgs{y, rstd, x, nullptr, 0, nullptr, w, C, group, eps}, rows, vec, stream);
}

size_t rmsnorm_backward_workspace_bytes(int64_t rows, int64_t C, int64_t group) {
  check_shape("rmsnorm_backward", rows, C, group);
  return size_t(backward_chunks<Mode::kPlain>(rows, C, group) * C) * sizeof(float);
}

void rmsnorm_backward(__nv_bfloat16* dx, float* dw, const __nv_bfloat16* dy, const __nv_bfloat16* x,
                      const __nv_bfloat16* w, const float* rstd, int64_t rows, int64_t C, int64_t group,
                      void* workspace, cudaStream_t stream) {
  check_shape("rmsnorm_backward", rows, C, group);
  if (rows == 0 || (!dx && !dw)) return;
  const bool vec = group % 8 == 0 && aligned16(dx) && aligned16(dy) && aligned16(x) && aligned16(w);
  BwdArgs a{dx, nullptr, 0, nullptr, dy, x, nullptr, 0, w, rstd, rows, C, group};
  launch_backward<Mode::kPlain>(a, dw, vec, workspace, stream);
}

void residual_rmsnorm_forward(__nv_bfloat16* h_out, __nv_bfloat16* y, float* rstd, const __nv_bfloat16* h,
                              const __nv_bfloat16* delta, const __nv_bfloat16* w, int64_t rows, int64_t C,
                              int64_t group, float eps, cudaStream_t stream) {
  check_shape("residual_rmsnorm_forward", rows, C, group);
  if (!h_out) throw std::invalid_argument("residual_rmsnorm_forward: h_out is null");
  if (rows == 0) return;
  const bool vec =
      group % 8 == 0 && aligned16(h_out) && aligned16(y) && aligned16(h) && aligned16(delta) && aligned16(w);
  launch_forward<Mode::kResidual>(FwdArgs{y, rstd, h, delta, 0, h_out, w, C, group, eps}, rows, vec, stream);
}

void gated_rmsnorm_forward(__nv_bfloat16* y, float* rstd, const __nv_bfloat16* x, const __nv_bfloat16* z,
                           int64_t z_stride, const __nv_bfloat16* w, int64_t rows, int64_t C, int64_t group, float eps,
                           cudaStream_t stream) {
  check_shape("gated_rmsnorm_forward", rows, C, group);
  if (z_stride < C) throw std::invalid_argument("gated_rmsnorm_forward: z_stride below C");
  if (rows == 0) return;
  const bool vec =
      group % 8 == 0 && z_stride % 8 == 0 && aligned16(y) && aligned16(x) && aligned16(z) && aligned16(w);
  launch_forward<Mode::kGated>(FwdArgs{y, rstd, x, z, z_stride, nullptr, w, C, group, eps}, rows, vec, stream);
}

size_t gated_rmsnorm_backward_workspace_bytes(int64_t rows, int64_t C, int64_t group) {
  check_shape("gated_rmsnorm_backward", rows, C, group);
  return size_t(backward_chunks<Mode::kGated>(rows, C, group) * C) * sizeof(float);
}

void gated_rmsnorm_backward(__nv_bfloat16* dx, __nv_bfloat16* dz, int64_t dz_stride, float* dw,
                            const __nv_bfloat16* dy, const __nv_bfloat16* x, const __nv_bfloat16* z, int64_t z_stride,
                            const __nv_bfloat16* w, const float* rstd, int64_t rows, int64_t C, int64_t group,
                            void* workspace, cudaStream_t stream) {
  check_shape("gated_rmsnorm_backward", rows, C, group);
  if (z_stride < C || (dz && dz_stride < C))
    throw std::invalid_argument("gated_rmsnorm_backward: z_stride or dz_stride below C");
  if (rows == 0 || (!dx && !dz && !dw)) return;
  const bool vec = group % 8 == 0 && z_stride % 8 == 0 && (!dz || dz_stride % 8 == 0) && aligned16(dx) &&
                   aligned16(dz) && aligned16(dy) && aligned16(x) && aligned16(z) && aligned16(w);
  BwdArgs a{dx, dz, dz_stride, nullptr, dy, x, z, z_stride, w, rstd, rows, C, group};
  launch_backward<Mode::kGated>(a, dw, vec, workspace, stream);
}

}  // namespace nemokit::rt::cuda
