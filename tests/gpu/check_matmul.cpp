// cuBLASLt products and the (chunked) cross-entropy against the CPU reference.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "matmul.cuh"
#include "matmul_loss.cuh"
#include "nemokit/runtime/kernels.hpp"
#include "op_check.hpp"

namespace cpu = nemokit::rt::kernels;
namespace gpu = nemokit::rt::cuda;
using namespace nemokit::gpucheck;
using bf16 = __nv_bfloat16;

namespace {

// |gpu - ref| <= bound[i] element by element, for outputs whose error has a known per-element bound
// (below: the GPU rounds dlogits to bf16 before its two backward products, the CPU keeps fp32).
// The passing output is then recorded in the case's summary like any other.
void expect_within(Checker& c, const std::string& what, const std::vector<float>& gpu_out,
                   const std::vector<float>& ref, const std::vector<float>& bound) {
  if (gpu_out.size() != ref.size()) {
    c.fail(what + ": " + std::to_string(gpu_out.size()) + " values against the reference's " +
           std::to_string(ref.size()));
    return;
  }
  for (size_t i = 0; i < ref.size(); ++i) {
    const double err = std::fabs(double(gpu_out[i]) - double(ref[i]));
    if (!(err <= bound[i])) {  // NaN (unwritten or invalid) fails too
      char line[256];
      std::snprintf(line, sizeof line, "%s[%zu] = %.6g, reference %.6g (|err| %.3g > bound %.3g)", what.c_str(), i,
                    gpu_out[i], ref[i], err, bound[i]);
      c.fail(line);
      return;
    }
  }
  c.expect_close(what, gpu_out, ref, Tolerance{1e30, 0});  // for the summary only: the bound above decided
}

std::vector<float> abs_of(std::vector<float> v) {
  for (float& x : v) x = std::fabs(x);
  return v;
}

// y = x w^T (+ bias) in bf16 and fp32, then dx += dy w, dw += dy^T x; both in one call, and again
// with one of them null each time (the two must add the same as one combined call).
void check_linear(Checker& c, int64_t M, int64_t K, int64_t N, bool bias) {
  gpu::BlasLt lt;
  auto x = c.uniform(M * K), w = c.uniform(N * K), b = c.uniform(N), dy = c.uniform(M * N);
  auto dx0 = c.uniform(M * K);
  auto dw0 = c.uniform(N * K, -1.0f, 1.0f, false);
  DeviceArray<bf16> x_d(M * K), w_d(N * K), b_d(N), dy_d(M * N), y_d(M * N), dx_d(M * K), dx2_d(M * K);
  DeviceArray<float> y32_d(M * N), dw_d(N * K), dw2_d(N * K);
  x_d.upload(to_bf16(x));
  w_d.upload(to_bf16(w));
  b_d.upload(to_bf16(b));
  dy_d.upload(to_bf16(dy));
  dx_d.upload(to_bf16(dx0));
  dx2_d.upload(to_bf16(dx0));
  dw_d.upload(dw0);
  dw2_d.upload(dw0);
  y_d.poison();
  y32_d.poison();
  if (bias) gpu::linear_bias_forward(lt, y_d.get(), x_d.get(), w_d.get(), b_d.get(), M, K, N, nullptr);
  else gpu::linear_forward(lt, y_d.get(), x_d.get(), w_d.get(), M, K, N, nullptr);
  gpu::linear_forward(lt, y32_d.get(), x_d.get(), w_d.get(), M, K, N, nullptr);
  gpu::linear_backward(lt, dx_d.get(), dw_d.get(), dy_d.get(), x_d.get(), w_d.get(), M, K, N, nullptr);
  gpu::linear_backward(lt, dx2_d.get(), nullptr, dy_d.get(), x_d.get(), w_d.get(), M, K, N, nullptr);
  gpu::linear_backward(lt, nullptr, dw2_d.get(), dy_d.get(), x_d.get(), w_d.get(), M, K, N, nullptr);
  // The same shapes again: served from the plan cache, nothing new planned.
  const size_t planned = lt.plans();
  gpu::linear_forward(lt, y32_d.get(), x_d.get(), w_d.get(), M, K, N, nullptr);
  if (lt.plans() != planned)
    c.fail("a repeated shape was planned again (" + std::to_string(planned) + " plans, then " +
           std::to_string(lt.plans()) + ")");

  std::vector<float> y32(M * N), dx = dx0, dw = dw0;
  cpu::linear_forward(y32.data(), x.data(), w.data(), M, K, N);
  std::vector<float> y = y32;
  if (bias)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) y[i * N + j] += b[j];
  cpu::linear_backward(dx.data(), dw.data(), dy.data(), x.data(), w.data(), M, K, N);
  c.expect_close(bias ? "y (bf16, bias)" : "y (bf16)", y_d.download(), y, kBf16Out);
  c.expect_close("y (fp32)", y32_d.download(), y32, kF32Out);
  c.expect_close("dx", dx_d.download(), dx, kBf16Out);
  c.expect_close("dw", dw_d.download(), dw, kF32Out);
  c.expect_close("dx (dw null)", dx2_d.download(), dx, kBf16Out);
  c.expect_close("dw (dx null)", dw2_d.download(), dw, kF32Out);
}

// The scaled products LoRA's path makes (lora_path.cpp): y = alpha x w^T overwriting, y += alpha
// x w^T into a y that holds values, and linear_backward with alpha on both of its outputs.
void check_linear_scaled(Checker& c, int64_t M, int64_t K, int64_t N, float alpha) {
  gpu::BlasLt lt;
  auto x = c.uniform(M * K), w = c.uniform(N * K), dy = c.uniform(M * N), y0 = c.uniform(M * N), dx0 = c.uniform(M * K);
  auto dw0 = c.uniform(N * K, -1.0f, 1.0f, false);
  DeviceArray<bf16> x_d(M * K), w_d(N * K), dy_d(M * N), y_d(M * N), acc_d(M * N), dx_d(M * K);
  DeviceArray<float> dw_d(N * K);
  x_d.upload(to_bf16(x));
  w_d.upload(to_bf16(w));
  dy_d.upload(to_bf16(dy));
  acc_d.upload(to_bf16(y0));
  dx_d.upload(to_bf16(dx0));
  dw_d.upload(dw0);
  y_d.poison();
  gpu::linear_forward_scaled(lt, y_d.get(), x_d.get(), w_d.get(), M, K, N, alpha, false, nullptr);
  gpu::linear_forward_scaled(lt, acc_d.get(), x_d.get(), w_d.get(), M, K, N, alpha, true, nullptr);
  gpu::linear_backward(lt, dx_d.get(), dw_d.get(), dy_d.get(), x_d.get(), w_d.get(), M, K, N, nullptr, alpha);

  std::vector<float> y(M * N), dx(M * K, 0.0f), dw(N * K, 0.0f);
  cpu::linear_forward(y.data(), x.data(), w.data(), M, K, N);
  cpu::linear_backward(dx.data(), dw.data(), dy.data(), x.data(), w.data(), M, K, N);
  std::vector<float> acc = y0;  // the inputs are drawn as bf16 values already
  for (int64_t i = 0; i < M * N; ++i) y[size_t(i)] *= alpha, acc[size_t(i)] += y[size_t(i)];
  for (int64_t i = 0; i < M * K; ++i) dx[size_t(i)] = dx0[size_t(i)] + alpha * dx[size_t(i)];
  for (int64_t i = 0; i < N * K; ++i) dw[size_t(i)] = dw0[size_t(i)] + alpha * dw[size_t(i)];
  c.expect_close("y = alpha x w^T", y_d.download(), y, kBf16Out);
  c.expect_close("y += alpha x w^T", acc_d.download(), acc, kBf16Out);
  c.expect_close("dx += alpha dy w", dx_d.download(), dx, kBf16Out);
  c.expect_close("dw += alpha dy^T x", dw_d.download(), dw, kF32Out);
}

// The row kernel alone: fp32 logits -> loss, bf16 dlogits (and the loss alone, and the loss sum).
void check_cross_entropy_rows(Checker& c, int64_t rows, int64_t V) {
  auto logits = c.normal(rows * V, 3.0f, false);  // fp32 input: not rounded
  auto targets = c.ints(rows, -int32_t(V / 8) - 1, int32_t(V));  // ~1 in 9 ignored
  auto weight = c.uniform(rows, 0.5f, 1.5f, false);
  const float grad_scale = 0.75f;
  DeviceArray<float> logits_d(rows * V), weight_d(rows), loss_d(rows), loss2_d(rows), sum_d(1);
  DeviceArray<int32_t> targets_d(rows);
  DeviceArray<bf16> dl_d(rows * V);
  logits_d.upload(logits);
  weight_d.upload(weight);
  targets_d.upload(targets);
  loss_d.poison();
  loss2_d.poison();
  sum_d.poison();
  dl_d.poison();
  gpu::cross_entropy(loss_d.get(), dl_d.get(), logits_d.get(), targets_d.get(), weight_d.get(), grad_scale, rows, V,
                     nullptr);
  gpu::cross_entropy(loss2_d.get(), nullptr, logits_d.get(), targets_d.get(), nullptr, 0.0f, rows, V, nullptr);
  gpu::sum_rows(sum_d.get(), loss_d.get(), rows, nullptr);

  std::vector<float> loss(rows), dl(rows * V);
  const double total = cpu::cross_entropy(logits.data(), targets.data(), rows, V, loss.data(), dl.data(), grad_scale,
                                          weight.data());
  c.expect_close("row_loss", loss_d.download(), loss, kF32Out);
  c.expect_close("row_loss (no gradient)", loss2_d.download(), loss, kF32Out);
  c.expect_close("loss sum", sum_d.download(), {float(total)}, kF32Out);
  // bf16 dlogits: half an ulp is at most 2^-8 relative (5e-3 leaves room for expf against the CPU's
  // exp_fast and the sum's order); 1e-6 absolute for the target entry when its softmax is near 1
  // (g * (p - 1) cancels in fp32 on both sides).
  c.expect_close("dlogits", dl_d.download(), dl, Tolerance{1e-6, 5e-3});
}

// The chunked loss of the lm_head against CPU linear_forward -> cross_entropy -> linear_backward.
// by_budget: chunk_rows 0, the rows per chunk derived from the scratch size (one fewer than
// `chunk_rows`, as the logits' 256-byte rounding stays spare).
void check_chunked(Checker& c, int64_t rows, int64_t C, int64_t V, int64_t chunk_rows, bool with_weight,
                   bool by_budget) {
  gpu::BlasLt lt;
  auto h = c.uniform(rows * C), w = c.uniform(V * C, -0.5f, 0.5f);
  auto targets = c.ints(rows, -int32_t(V / 8) - 1, int32_t(V));
  auto weight = c.uniform(rows, 0.5f, 1.5f, false);
  auto dh0 = c.uniform(rows * C);
  auto dw0 = c.uniform(V * C, -1.0f, 1.0f, false);
  const float grad_scale = 0.75f;  // O(1) gradients, so dh's random start does not hide them

  const size_t scratch_bytes = gpu::chunked_loss_scratch_bytes(chunk_rows, V, true);
  DeviceArray<bf16> h_d(rows * C), w_d(V * C), dh_d(rows * C);
  DeviceArray<float> weight_d(rows), dw_d(V * C), loss_d(rows), sum_d(1), loss2_d(rows), sum2_d(1);
  DeviceArray<int32_t> targets_d(rows);
  DeviceArray<unsigned char> scratch_d(scratch_bytes);
  h_d.upload(to_bf16(h));
  w_d.upload(to_bf16(w));
  dh_d.upload(to_bf16(dh0));
  weight_d.upload(weight);
  dw_d.upload(dw0);
  targets_d.upload(targets);
  scratch_d.poison();  // a chunk buffer read before it is written shows as NaN
  loss_d.poison();
  sum_d.poison();
  loss2_d.poison();
  sum2_d.poison();

  gpu::ChunkedLoss p;
  p.h = h_d.get();
  p.w = w_d.get();
  p.targets = targets_d.get();
  p.row_weight = with_weight ? weight_d.get() : nullptr;
  p.rows = rows, p.C = C, p.V = V;
  p.chunk_rows = by_budget ? 0 : chunk_rows;
  p.scratch = scratch_d.get();
  p.scratch_bytes = scratch_bytes;
  const int64_t per_chunk = by_budget ? gpu::chunked_loss_chunk_rows(V, scratch_bytes, true, rows) : chunk_rows;
  if ((rows + per_chunk - 1) / per_chunk < 3 || rows % per_chunk == 0)
    c.fail("the case should cover 3+ chunks and a remainder: " + std::to_string(rows) + " rows by " +
           std::to_string(per_chunk));
  gpu::chunked_cross_entropy(lt, p, grad_scale, loss_d.get(), sum_d.get(), dh_d.get(), dw_d.get(), nullptr);
  gpu::chunked_cross_entropy_forward(lt, p, loss2_d.get(), sum2_d.get(), nullptr);

  std::vector<float> logits(rows * V), loss(rows), dl(rows * V), dh = dh0, dw = dw0;
  cpu::linear_forward(logits.data(), h.data(), w.data(), rows, C, V);
  const double total = cpu::cross_entropy(logits.data(), targets.data(), rows, V, loss.data(), dl.data(), grad_scale,
                                          with_weight ? weight.data() : nullptr);
  cpu::linear_backward(dh.data(), dw.data(), dl.data(), h.data(), w.data(), rows, C, V);

  // Error bounds: the GPU's dlogits are bf16, off by at most 2^-8 |dl| each (taken twice over), so
  // a sum over them is off by at most 2^-7 sum |dl| |other operand|; dh is rounded to bf16 at the
  // end as well (2^-7 |dh|, again twice the half ulp), dw stays fp32 (kF32Out on top).
  std::vector<float> sum_dh(rows * C, 0.0f), sum_dw(V * C, 0.0f);
  const auto adl = abs_of(dl), ah = abs_of(h), aw = abs_of(w);
  cpu::linear_backward(sum_dh.data(), sum_dw.data(), adl.data(), ah.data(), aw.data(), rows, C, V);
  std::vector<float> bound_dh(rows * C), bound_dw(V * C);
  const double k = std::ldexp(1.0, -7);
  for (size_t i = 0; i < bound_dh.size(); ++i) bound_dh[i] = float(k * (sum_dh[i] + std::fabs(dh[i])) + 1e-5);
  for (size_t i = 0; i < bound_dw.size(); ++i)
    bound_dw[i] = float(k * sum_dw[i] + kF32Out.atol + kF32Out.rtol * std::fabs(dw[i]));

  c.expect_close("row_loss", loss_d.download(), loss, kF32Out);
  c.expect_close("loss sum", sum_d.download(), {float(total)}, kF32Out);
  expect_within(c, "dh", to_float(dh_d.download()), dh, bound_dh);
  expect_within(c, "dw", dw_d.download(), dw, bound_dw);
  c.expect_close("row_loss (forward only)", loss2_d.download(), loss, kF32Out);
  c.expect_close("loss sum (forward only)", sum2_d.download(), {float(total)}, kF32Out);
}

}  // namespace

// Sizes that are not multiples of 8 (odd leading dimensions, unaligned rows): the slow path works.
GPU_OP_CASE(matmul_linear_odd) { check_linear(c, 300, 200, 131, false); }
// The model's kind of sizes, with the bias epilogue.
GPU_OP_CASE(matmul_linear_bias) { check_linear(c, 256, 192, 320, true); }
// LoRA's shapes: a rank-8 inner size either way.
GPU_OP_CASE(matmul_linear_scaled_lora_down) { check_linear_scaled(c, 130, 96, 8, 0.5f); }
GPU_OP_CASE(matmul_linear_scaled_lora_up) { check_linear_scaled(c, 130, 8, 96, 2.0f); }

// float4 path with idle threads (250 float4s for 256 threads), scalar path over several strides,
// float4 path over several strides.
GPU_OP_CASE(matmul_cross_entropy_rows) {
  check_cross_entropy_rows(c, 67, 1000);
  check_cross_entropy_rows(c, 33, 5003);
  check_cross_entropy_rows(c, 20, 32768);
}

// 150 rows by 40: chunks of 40, 40, 40 and 30; float4 path; row weights.
GPU_OP_CASE(matmul_chunked_cross_entropy) { check_chunked(c, 150, 64, 1000, 40, true, false); }
// Odd V and C (scalar path, odd leading dimensions, chunk offsets of differing alignment), no row
// weights, rows per chunk from the scratch size: 131 rows by 31.
GPU_OP_CASE(matmul_chunked_cross_entropy_odd) { check_chunked(c, 131, 72, 1001, 32, false, true); }
