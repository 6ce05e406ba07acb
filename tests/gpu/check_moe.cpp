// MoE kernels against the CPU reference: the routed part of src/model/moe_mixer.cpp (route,
// dispatch, experts, weighted sum, and the backward through them to the router logits),
// transcribed from the mixer with the CPU kernels' linears and relu2. One case runs the whole
// chain on the GPU, forward and backward, and checks every output of every kernel. Each stage of
// the reference reads the GPU's upstream outputs once they are checked (h, a, y_perm, dy_perm,
// dh, dx_perm, dweights), as a stage reads its inputs: a bf16 value the two sides round one ulp
// apart at a rounding boundary then costs nothing downstream, and each comparison keeps the
// plain bf16/fp32 tolerances and names its own stage.
// Zero-count experts (the last expert's bias keeps it out of every top-k) and exact ties
// (experts 1, 2 and 4 share a bias and, every third row, a logit) are in every case.
#include <cublas_v2.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "moe.cuh"
#include "nemokit/runtime/kernels.hpp"
#include "op_check.hpp"

namespace cpu = nemokit::rt::kernels;
namespace gpu = nemokit::rt::cuda;
namespace rt = nemokit::rt;
using namespace nemokit::gpucheck;

namespace {

struct Shape {
  int64_t rows;
  int E, k;
  int64_t d, inner;
  bool norm;
  float scale;
  gpu::MoeGemmPath path;
};

// MoeMixer::route: sigmoid scores, top-k by score + bias (ties to the lower id), weights.
void cpu_route(const std::vector<float>& logits, const std::vector<float>& bias, const Shape& s, std::vector<int32_t>& ids,
               std::vector<float>& weights, std::vector<float>& scores) {
  const int64_t E = s.E, k = s.k;
  ids.assign(s.rows * k, 0);
  weights.assign(s.rows * k, 0.0f);
  scores = logits;
  std::vector<int64_t> order(E);
  for (int64_t r = 0; r < s.rows; ++r) {
    float* sc = scores.data() + r * E;
    for (int64_t e = 0; e < E; ++e) sc[e] = 1.0f / (1.0f + std::exp(-sc[e]));
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int64_t a, int64_t b) {
      float va = sc[a] + bias[a], vb = sc[b] + bias[b];
      return va > vb || (va == vb && a < b);
    });
    float denom = 1e-20f;
    for (int64_t j = 0; j < k; ++j) denom += sc[order[j]];
    for (int64_t j = 0; j < k; ++j) {
      ids[r * k + j] = int32_t(order[j]);
      weights[r * k + j] = (s.norm ? sc[order[j]] / denom : sc[order[j]]) * s.scale;
    }
  }
}

// The mixer's dispatch_: per expert, its (row, slot) pairs in token order, experts in order.
void cpu_dispatch(const std::vector<int32_t>& ids, const Shape& s, std::vector<int32_t>& counts, std::vector<int32_t>& offsets,
                  std::vector<int32_t>& src, std::vector<int32_t>& pos) {
  const int64_t n = s.rows * s.k;
  counts.assign(s.E, 0);
  for (int32_t e : ids) ++counts[e];
  offsets.assign(s.E + 1, 0);
  for (int e = 0; e < s.E; ++e) offsets[e + 1] = offsets[e] + counts[e];
  src.clear();
  for (int e = 0; e < s.E; ++e)
    for (int64_t r = 0; r < s.rows; ++r)
      for (int j = 0; j < s.k; ++j)
        if (ids[r * s.k + j] == e) src.push_back(int32_t(r * s.k + j));
  pos.assign(n, -1);
  for (int64_t p = 0; p < n; ++p) pos[src[p]] = int32_t(p);
}

struct Cublas {
  cublasHandle_t h = nullptr;
  Cublas() {
    if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) throw std::runtime_error("cublasCreate failed");
  }
  ~Cublas() { cublasDestroy(h); }
};

std::vector<float> floats(const DeviceArray<__nv_bfloat16>& a) { return to_float(a.download()); }

void run_layer(Checker& c, const Shape& s) {
  const int64_t R = s.rows, E = s.E, K = s.k, D = s.d, I = s.inner, n = R * K;
  // ---- inputs ----
  auto x = c.uniform(R * D);
  auto logits = c.normal(R * E, 1.5f, false);
  auto bias = c.uniform(E, -0.2f, 0.2f, false);
  bias[2] = bias[4] = bias[1];
  bias[E - 1] = -10.0f;  // never chosen: an expert with no rows
  for (int64_t r = 0; r < R; r += 3) logits[r * E + 1] = logits[r * E + 2] = logits[r * E + 4] = 3.0f;
  std::vector<uint8_t> pad(R);
  for (auto& p : pad) p = c.rng().uniform() < 0.2f;
  auto stat0 = c.ints(E, 0, 100);
  auto up = c.normal(E * I * D, 0.3f), down = c.normal(E * D * I, 0.3f);
  auto out0 = c.uniform(R * D), dout = c.uniform(R * D), dx0 = c.uniform(R * D);
  auto dup0 = c.uniform(E * I * D, -1, 1, false), ddown0 = c.uniform(E * D * I, -1, 1, false);
  auto dlogits0 = c.uniform(R * E, -1, 1, false);

  // ---- GPU: the chain forward and backward ----
  DeviceArray<float> logits_d(R * E), bias_d(E), w_d(n), scores_d(R * E), dw_d(n), dlogits_d(R * E);
  DeviceArray<float> dup_d(E * I * D), ddown_d(E * D * I);
  DeviceArray<int32_t> ids_d(n), stat_d(E), counts_d(E), offsets_d(E + 1), src_d(n), pos_d(n);
  DeviceArray<uint8_t> pad_d(R);
  DeviceArray<uint8_t> dscratch(gpu::moe_dispatch_scratch_bytes(R, s.k, s.E)), escratch(gpu::moe_experts_scratch_bytes(s.E));
  DeviceArray<__nv_bfloat16> x_d(R * D), xp_d(n * D), h_d(n * I), a_d(n * I), yp_d(n * D), out_d(R * D);
  DeviceArray<__nv_bfloat16> up_d(E * I * D), down_d(E * D * I), dout_d(R * D), dyp_d(n * D), dh_d(n * I), dxp_d(n * D),
      dx_d(R * D);
  logits_d.upload(logits), bias_d.upload(bias), pad_d.upload(pad), stat_d.upload(stat0);
  x_d.upload(to_bf16(x)), up_d.upload(to_bf16(up)), down_d.upload(to_bf16(down));
  out_d.upload(to_bf16(out0)), dout_d.upload(to_bf16(dout)), dx_d.upload(to_bf16(dx0));
  dup_d.upload(dup0), ddown_d.upload(ddown0), dlogits_d.upload(dlogits0);
  ids_d.poison(), w_d.poison(), scores_d.poison(), counts_d.poison(), offsets_d.poison(), src_d.poison();
  pos_d.poison(), xp_d.poison(), h_d.poison(), a_d.poison(), yp_d.poison(), dyp_d.poison(), dw_d.poison();
  dh_d.poison(), dxp_d.poison();

  Cublas blas;
  cudaStream_t st = nullptr;
  gpu::moe_router_forward(ids_d.get(), w_d.get(), scores_d.get(), stat_d.get(), logits_d.get(), bias_d.get(), pad_d.get(), R, s.E,
                          s.k, s.scale, s.norm, st);
  gpu::moe_dispatch(counts_d.get(), offsets_d.get(), src_d.get(), pos_d.get(), dscratch.get(), ids_d.get(), R, s.k, s.E, st);
  std::vector<int32_t> host_counts(E);
  gpu::moe_expert_counts_to_host(host_counts.data(), counts_d.get(), s.E, st);
  gpu::moe_gather(xp_d.get(), x_d.get(), src_d.get(), R, s.k, D, st);
  gpu::moe_experts_forward(blas.h, escratch.get(), host_counts.data(), s.E, h_d.get(), a_d.get(), yp_d.get(), xp_d.get(),
                           up_d.get(), down_d.get(), D, I, st, s.path);
  gpu::moe_combine(out_d.get(), yp_d.get(), w_d.get(), pos_d.get(), R, s.k, D, st);
  gpu::moe_combine_backward(dyp_d.get(), dw_d.get(), dout_d.get(), yp_d.get(), w_d.get(), pos_d.get(), R, s.k, D, st);
  gpu::moe_experts_backward(blas.h, escratch.get(), host_counts.data(), s.E, dxp_d.get(), dup_d.get(), ddown_d.get(), dh_d.get(),
                            dyp_d.get(), xp_d.get(), h_d.get(), a_d.get(), up_d.get(), down_d.get(), D, I, st, s.path);
  gpu::moe_gather_backward(dx_d.get(), dxp_d.get(), pos_d.get(), R, s.k, D, st);
  gpu::moe_router_backward(dlogits_d.get(), dw_d.get(), ids_d.get(), scores_d.get(), R, s.E, s.k, s.scale, s.norm, st);

  // ---- routing and dispatch: ids, counts and maps exactly ----
  std::vector<int32_t> ids, counts, offsets, src, pos;
  std::vector<float> w, scores;
  cpu_route(logits, bias, s, ids, w, scores);
  auto stat = stat0;
  for (int64_t r = 0; r < R; ++r)
    if (!pad[r])
      for (int64_t j = 0; j < K; ++j) ++stat[ids[r * K + j]];
  cpu_dispatch(ids, s, counts, offsets, src, pos);
  c.expect_equal("topk_ids", ids_d.download(), ids);
  c.expect_close("topk_weights", w_d.download(), w, kF32Out);
  const auto g_scores = scores_d.download();
  c.expect_close("scores", g_scores, scores, kF32Out);
  c.expect_equal("stat_counts", stat_d.download(), stat);
  c.expect_equal("expert_counts", counts_d.download(), counts);
  c.expect_equal("expert_counts (host copy)", host_counts, counts);
  c.expect_equal("expert_offsets", offsets_d.download(), offsets);
  c.expect_equal("perm_src", src_d.download(), src);
  c.expect_equal("perm_pos", pos_d.download(), pos);
  if (!c.ok()) return;  // every later stage is indexed by these

  // ---- gather: a copy, exact ----
  std::vector<float> xp(n * D);
  for (int64_t p = 0; p < n; ++p) std::copy_n(&x[(src[p] / K) * D], D, &xp[p * D]);
  c.expect_close("x_perm", xp_d.download(), xp, Tolerance{0, 0});

  // ---- experts forward, per expert block ----
  struct Blk {
    int64_t e, off, rows;
  };
  std::vector<Blk> blocks;
  for (int64_t e = 0; e < E; ++e)
    if (counts[e]) blocks.push_back({e, offsets[e], counts[e]});
  std::vector<float> h(n * I), a(n * I), yp(n * D);
  for (const Blk& b : blocks) cpu::linear_forward(&h[b.off * I], &xp[b.off * D], &up[b.e * I * D], b.rows, D, I);
  const auto g_h = floats(h_d);
  c.expect_close("h (x_perm up^T)", g_h, h, kBf16Out);
  cpu::relu2_forward(a.data(), g_h.data(), n * I);
  const auto g_a = floats(a_d);
  c.expect_close("a (relu2 h)", g_a, a, kBf16Out);
  for (const Blk& b : blocks) cpu::linear_forward(&yp[b.off * D], &g_a[b.off * I], &down[b.e * D * I], b.rows, I, D);
  const auto g_yp = floats(yp_d);
  c.expect_close("y_perm (a down^T)", g_yp, yp, kBf16Out);

  // ---- combine: out += sum_j w_j y_perm[pos] ----
  std::vector<float> out = out0, z(R * D, 0.0f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t col = 0; col < D; ++col) z[(i / K) * D + col] += w[i] * g_yp[pos[i] * D + col];
  for (int64_t i = 0; i < R * D; ++i) out[i] += z[i];
  c.expect_close("out (combine)", out_d.download(), out, kBf16Out);

  // ---- combine backward: dy_perm = w dout, dweights = dout . y_perm ----
  std::vector<float> dyp(n * D), dw(n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = i / K, p = pos[i];
    float acc = 0;
    for (int64_t col = 0; col < D; ++col) {
      dyp[p * D + col] = w[i] * dout[r * D + col];
      acc += dout[r * D + col] * g_yp[p * D + col];
    }
    dw[i] = acc;
  }
  const auto g_dyp = floats(dyp_d);
  const auto g_dw = dw_d.download();
  c.expect_close("dy_perm", g_dyp, dyp, kBf16Out);
  c.expect_close("dweights", g_dw, dw, kF32Out);

  // ---- experts backward (MlpMixer::backward per expert) ----
  std::vector<float> da(n * I, 0.0f), dh(n * I, 0.0f), dxp(n * D, 0.0f), dup = dup0, ddown = ddown0;
  for (const Blk& b : blocks)
    cpu::linear_backward(&da[b.off * I], &ddown[b.e * D * I], &g_dyp[b.off * D], &g_a[b.off * I], &down[b.e * D * I], b.rows, I,
                         D);
  da = round_bf16(std::move(da));  // the GPU keeps da in bf16 before the relu2 backward
  cpu::relu2_backward(dh.data(), da.data(), g_h.data(), n * I);
  const auto g_dh = floats(dh_d);
  c.expect_close("dh (gradient of h)", g_dh, dh, kBf16Out);
  for (const Blk& b : blocks)
    cpu::linear_backward(&dxp[b.off * D], &dup[b.e * I * D], &g_dh[b.off * I], &xp[b.off * D], &up[b.e * I * D], b.rows, D, I);
  const auto g_dxp = floats(dxp_d);
  c.expect_close("dx_perm", g_dxp, dxp, kBf16Out);
  c.expect_close("d_up", dup_d.download(), dup, kF32Out);
  c.expect_close("d_down", ddown_d.download(), ddown, kF32Out);

  // ---- gather backward: dx += sum_j dx_perm[pos] ----
  std::vector<float> dx = dx0, dxs(R * D, 0.0f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t col = 0; col < D; ++col) dxs[(i / K) * D + col] += g_dxp[pos[i] * D + col];
  for (int64_t i = 0; i < R * D; ++i) dx[i] += dxs[i];
  c.expect_close("dx (gather backward)", dx_d.download(), dx, kBf16Out);

  // ---- router backward: the mixer's normalization and sigmoid backward ----
  std::vector<float> ds(R * E, 0.0f), dlogits = dlogits0;
  for (int64_t r = 0; r < R; ++r) {
    const float* sr = g_scores.data() + r * E;
    float* dsr = ds.data() + r * E;
    const int32_t* id = ids.data() + r * K;
    const float* dwr = g_dw.data() + r * K;
    if (s.norm) {
      double S = 1e-20, dot = 0;
      for (int64_t j = 0; j < K; ++j) S += sr[id[j]];
      for (int64_t j = 0; j < K; ++j) dot += double(dwr[j]) * sr[id[j]];
      for (int64_t j = 0; j < K; ++j) dsr[id[j]] += float(s.scale * (dwr[j] / S - dot / (S * S)));
    } else {
      for (int64_t j = 0; j < K; ++j) dsr[id[j]] += s.scale * dwr[j];
    }
  }
  for (int64_t i = 0; i < R * E; ++i) dlogits[i] += ds[i] * (g_scores[i] * (1.0f - g_scores[i]));
  c.expect_close("dlogits", dlogits_d.download(), dlogits, kF32Out);
}

}  // namespace

// The task's small layer: 37 rows, 6 experts (one never chosen), top 2, width 24, experts of 40.
GPU_OP_CASE(moe_layer_norm_grouped) { run_layer(c, {37, 6, 2, 24, 40, true, 2.5f, gpu::MoeGemmPath::grouped}); }
GPU_OP_CASE(moe_layer_nonorm_loop) { run_layer(c, {37, 6, 2, 24, 40, false, 2.5f, gpu::MoeGemmPath::loop}); }
// 1500 rows x top 6 = 9000 pairs: 36 dispatch chunks of 256 (the scan across chunks); width 20
// and experts of 36 take the scalar (not 8-wide) paths of gather and combine.
GPU_OP_CASE(moe_layer_wide_grouped) { run_layer(c, {1500, 16, 6, 20, 36, true, 2.5f, gpu::MoeGemmPath::grouped}); }
// The 8-wide paths at the same size, per-expert GEMM loop.
GPU_OP_CASE(moe_layer_wide_vec_loop) { run_layer(c, {1500, 16, 6, 64, 48, true, 1.0f, gpu::MoeGemmPath::loop}); }
