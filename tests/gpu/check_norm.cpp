// The norm family (norm.cuh: embedding, RMSNorm plain / fused with the residual / gated, AdamW,
// gradient norm and clipping) against the CPU reference. Shapes cover both load paths (16-byte
// words when the group is a multiple of 8, single values otherwise), every values-per-thread
// plan, groups that leave threads idle, and backward grids where each block takes many rows.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "optim/adamw_update.hpp"  // the CPU optimizer's own update loop (sdk/runtime/src)
#include "nemokit/runtime/kernels.hpp"
#include "nemokit/runtime/optim.hpp"
#include "norm.cuh"
#include "op_check.hpp"

namespace cpu = nemokit::rt::kernels;
namespace gpu = nemokit::rt::cuda;
using namespace nemokit::gpucheck;
using Bf16Array = DeviceArray<__nv_bfloat16>;

namespace {

std::string shape_name(const char* what, int64_t rows, int64_t C, int64_t group) {
  return std::string(what) + "(rows " + std::to_string(rows) + ", C " + std::to_string(C) + ", group " +
         std::to_string(group) + ")";
}

// dw sums rows*... products in fp32 in another order than the CPU (which sums in float per
// thread range): allow the fp32 error of a sum over `rows` terms of size ~1.
Tolerance dw_tolerance(int64_t rows) { return {1e-4 + 2e-7 * double(rows), 1e-3}; }

// ---- embedding ----

void check_embedding(Checker& c, int64_t rows, int64_t vocab, int64_t C) {
  const std::string tag = "(C " + std::to_string(C) + ")";
  auto table = c.uniform(size_t(vocab * C));
  auto ids = c.ints(size_t(rows), 0, int32_t(vocab));  // rows > vocab: ids repeat, atomics contend
  auto dout = c.uniform(size_t(rows * C));
  auto dtable0 = c.uniform(size_t(vocab * C), -1.0f, 1.0f, false);
  // One id out of range: the GPU writes a zero row and raises the flag (the CPU would throw).
  const int64_t bad_row = rows / 2;
  auto gpu_ids = ids;
  gpu_ids[size_t(bad_row)] = int32_t(vocab);

  Bf16Array table_d(table.size()), out_d(size_t(rows * C)), dout_d(dout.size());
  DeviceArray<int32_t> ids_d(ids.size()), bad_d(1);
  DeviceArray<float> dtable_d(dtable0.size());
  table_d.upload(to_bf16(table));
  ids_d.upload(gpu_ids);
  dout_d.upload(to_bf16(dout));
  dtable_d.upload(dtable0);
  bad_d.upload({0});
  out_d.poison();
  gpu::embedding_forward(out_d.get(), ids_d.get(), table_d.get(), rows, vocab, C, bad_d.get(), nullptr);
  gpu::embedding_backward(dtable_d.get(), dout_d.get(), ids_d.get(), rows, vocab, C, nullptr);

  std::vector<float> out(size_t(rows * C)), dtable = dtable0;
  auto cpu_ids = ids;
  cpu_ids[size_t(bad_row)] = 0;
  cpu::embedding_forward(out.data(), cpu_ids.data(), table.data(), rows, vocab, C);
  for (int64_t k = 0; k < C; ++k) out[size_t(bad_row * C + k)] = 0.0f;
  // The backward skips the out-of-range row: the reference adds every other row.
  std::vector<float> dout_kept = dout;
  for (int64_t k = 0; k < C; ++k) dout_kept[size_t(bad_row * C + k)] = 0.0f;
  cpu::embedding_backward(dtable.data(), dout_kept.data(), cpu_ids.data(), rows, C);

  c.expect_close("embedding out" + tag, out_d.download(), out, {0, 0});  // a copy: exact
  c.expect_equal("embedding bad_id flag" + tag, bad_d.download(), {1});
  // Atomic adds of up to ~rows/vocab*3 values in any order.
  c.expect_close("embedding dtable" + tag, dtable_d.download(), dtable, kF32Out);
}

}  // namespace

GPU_OP_CASE(norm_embedding) {
  check_embedding(c, 517, 97, 200);  // 16-byte path
  check_embedding(c, 300, 50, 37);   // one value per thread
}

// ---- RMSNorm ----

namespace {

void check_rmsnorm(Checker& c, int64_t rows, int64_t C, int64_t group) {
  const int64_t groups = C / group;
  const float eps = 1e-5f;
  auto x = c.normal(size_t(rows * C)), w = c.uniform(size_t(C), 0.5f, 1.5f), dy = c.uniform(size_t(rows * C));
  auto dx0 = c.uniform(size_t(rows * C)), dw0 = c.uniform(size_t(C), -1.0f, 1.0f, false);

  std::vector<float> y(x.size()), rstd(size_t(rows * groups)), dx = dx0, dw = dw0;
  cpu::rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), rows, C, group, eps);
  cpu::rmsnorm_backward(dx.data(), dw.data(), dy.data(), x.data(), w.data(), rstd.data(), rows, C, group);

  Bf16Array x_d(x.size()), w_d(w.size()), y_d(y.size()), dy_d(dy.size()), dx_d(dx.size());
  DeviceArray<float> rstd_d(rstd.size()), rstd_in_d(rstd.size()), dw_d(dw.size());
  x_d.upload(to_bf16(x));
  w_d.upload(to_bf16(w));
  dy_d.upload(to_bf16(dy));
  dx_d.upload(to_bf16(dx0));
  dw_d.upload(dw0);
  rstd_in_d.upload(rstd);  // the backward reads the same rstd on both sides
  y_d.poison();
  rstd_d.poison();
  gpu::rmsnorm_forward(y_d.get(), rstd_d.get(), x_d.get(), w_d.get(), rows, C, group, eps, nullptr);
  gpu::rmsnorm_backward(dx_d.get(), dw_d.get(), dy_d.get(), x_d.get(), w_d.get(), rstd_in_d.get(), rows, C, group,
                        nullptr, nullptr);

  c.expect_close(shape_name("y", rows, C, group), y_d.download(), y, kBf16Out);
  c.expect_close(shape_name("rstd", rows, C, group), rstd_d.download(), rstd, kF32Out);
  c.expect_close(shape_name("dx", rows, C, group), dx_d.download(), dx, kBf16Out);
  c.expect_close(shape_name("dw", rows, C, group), dw_d.download(), dw, dw_tolerance(rows));
}

}  // namespace

GPU_OP_CASE(norm_rmsnorm) {
  check_rmsnorm(c, 3001, 1024, 1024);  // 16-byte path, 1 word per thread; many rows per backward block
  check_rmsnorm(c, 67, 4096, 4096);    // the hidden size of the 8B model: 512 threads
  check_rmsnorm(c, 9, 16384, 8192);    // 2 words per thread, 2 groups
  check_rmsnorm(c, 5, 16384, 16384);   // 4 words per thread: the largest group
  check_rmsnorm(c, 37, 3 * 1000, 1000);  // 125 threads' worth: idle threads in the last warp
  check_rmsnorm(c, 41, 300, 100);      // not a multiple of 8: one value per thread
  check_rmsnorm(c, 29, 2002, 1001);    // one value per thread, 4 per thread
  check_rmsnorm(c, 13, 3001, 3001);    // one value per thread, 32 per thread
}

GPU_OP_CASE(norm_rmsnorm_workspace) {
  // A caller-given workspace of the size the launcher asks for, and dx or dw alone.
  const int64_t rows = 700, C = 2048, group = 512;
  auto x = c.normal(size_t(rows * C)), w = c.uniform(size_t(C), 0.5f, 1.5f), dy = c.uniform(size_t(rows * C));
  auto dx0 = c.uniform(size_t(rows * C)), dw0 = c.uniform(size_t(C), -1.0f, 1.0f, false);
  std::vector<float> y(x.size()), rstd(size_t(rows * (C / group))), dx = dx0, dw = dw0;
  cpu::rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), rows, C, group, 1e-6f);
  cpu::rmsnorm_backward(nullptr, dw.data(), dy.data(), x.data(), w.data(), rstd.data(), rows, C, group);
  cpu::rmsnorm_backward(dx.data(), nullptr, dy.data(), x.data(), w.data(), rstd.data(), rows, C, group);

  Bf16Array x_d(x.size()), w_d(w.size()), dy_d(dy.size()), dx_d(dx.size());
  DeviceArray<float> rstd_d(rstd.size()), dw_d(dw.size());
  DeviceArray<char> ws_d(gpu::rmsnorm_backward_workspace_bytes(rows, C, group));
  x_d.upload(to_bf16(x));
  w_d.upload(to_bf16(w));
  dy_d.upload(to_bf16(dy));
  dx_d.upload(to_bf16(dx0));
  dw_d.upload(dw0);
  rstd_d.upload(rstd);
  ws_d.poison();  // the partials are written before they are read
  gpu::rmsnorm_backward(nullptr, dw_d.get(), dy_d.get(), x_d.get(), w_d.get(), rstd_d.get(), rows, C, group,
                        ws_d.get(), nullptr);
  gpu::rmsnorm_backward(dx_d.get(), nullptr, dy_d.get(), x_d.get(), w_d.get(), rstd_d.get(), rows, C, group,
                        ws_d.get(), nullptr);
  c.expect_close("dx (dw null)", dx_d.download(), dx, kBf16Out);
  c.expect_close("dw (dx null, caller's workspace)", dw_d.download(), dw, dw_tolerance(rows));
}

// ---- residual add + RMSNorm ----

namespace {

enum class ResidualVariant { kSeparate, kInPlace, kNoDelta };

void check_residual(Checker& c, int64_t rows, int64_t C, int64_t group, ResidualVariant variant) {
  const int64_t groups = C / group;
  const float eps = 1e-5f;
  auto h = c.normal(size_t(rows * C)), delta = c.normal(size_t(rows * C), 0.5f), w = c.uniform(size_t(C), 0.5f, 1.5f);
  const bool with_delta = variant != ResidualVariant::kNoDelta;
  // Reference: the add, rounded to bf16 as the residual stream stores it, then the CPU norm.
  std::vector<float> h_out = h;
  if (with_delta)
    for (size_t i = 0; i < h_out.size(); ++i) h_out[i] = h[i] + delta[i];
  h_out = round_bf16(std::move(h_out));
  std::vector<float> y(h.size()), rstd(size_t(rows * groups));
  cpu::rmsnorm_forward(y.data(), rstd.data(), h_out.data(), w.data(), rows, C, group, eps);

  Bf16Array h_d(h.size()), delta_d(delta.size()), h_out_d(h.size()), w_d(w.size()), y_d(y.size());
  DeviceArray<float> rstd_d(rstd.size());
  h_d.upload(to_bf16(h));
  delta_d.upload(to_bf16(delta));
  w_d.upload(to_bf16(w));
  h_out_d.poison();
  y_d.poison();
  rstd_d.poison();
  const bool in_place = variant == ResidualVariant::kInPlace;
  __nv_bfloat16* out = in_place ? h_d.get() : h_out_d.get();
  gpu::residual_rmsnorm_forward(out, y_d.get(), rstd_d.get(), h_d.get(), with_delta ? delta_d.get() : nullptr,
                                w_d.get(), rows, C, group, eps, nullptr);
  const char* v = in_place ? " in place" : with_delta ? "" : " no delta";
  // h_out: the same fp32 add and bf16 rounding on both sides, so the same bits.
  c.expect_close(shape_name("h_out", rows, C, group) + v, in_place ? h_d.download() : h_out_d.download(), h_out,
                 {0, 0});
  c.expect_close(shape_name("y", rows, C, group) + v, y_d.download(), y, kBf16Out);
  c.expect_close(shape_name("rstd", rows, C, group) + v, rstd_d.download(), rstd, kF32Out);
}

}  // namespace

GPU_OP_CASE(norm_residual_rmsnorm) {
  check_residual(c, 129, 4096, 4096, ResidualVariant::kSeparate);
  check_residual(c, 129, 4096, 4096, ResidualVariant::kInPlace);
  check_residual(c, 31, 2048, 2048, ResidualVariant::kNoDelta);
  check_residual(c, 23, 210, 70, ResidualVariant::kSeparate);  // one value per thread
}

// ---- Mamba's gated RMSNorm ----

namespace {

// z lives in a wider buffer (the in_proj output) at column z_col with row stride z_stride; dz is
// written into a buffer of the same layout, whose other columns must stay as they were.
void check_gated(Checker& c, int64_t rows, int64_t C, int64_t group, int64_t z_stride, int64_t z_col) {
  const int64_t groups = C / group;
  const float eps = 1e-5f;
  auto x = c.normal(size_t(rows * C)), zbuf = c.normal(size_t(rows * z_stride), 2.0f);
  auto w = c.uniform(size_t(C), 0.5f, 1.5f), dy = c.uniform(size_t(rows * C));
  auto dx0 = c.uniform(size_t(rows * C)), dzbuf0 = c.uniform(size_t(rows * z_stride));
  auto dw0 = c.uniform(size_t(C), -1.0f, 1.0f, false);

  // Reference, as model/mamba2_mixer.cpp: gated = x * silu(z); normed = rmsnorm(gated); the
  // backward through the norm into dgated, then dx = dgated*silu(z), dz = dgated*x*silu'(z).
  std::vector<float> gated(x.size()), y(x.size()), rstd(size_t(rows * groups)), dgated(x.size(), 0.0f);
  auto zat = [&](int64_t r, int64_t j) { return zbuf[size_t(r * z_stride + z_col + j)]; };
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < C; ++j) gated[size_t(r * C + j)] = x[size_t(r * C + j)] * cpu::silu(zat(r, j));
  cpu::rmsnorm_forward(y.data(), rstd.data(), gated.data(), w.data(), rows, C, group, eps);
  std::vector<float> dx = dx0, dzbuf = dzbuf0, dw = dw0;
  cpu::rmsnorm_backward(dgated.data(), dw.data(), dy.data(), gated.data(), w.data(), rstd.data(), rows, C, group);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < C; ++j) {
      const size_t i = size_t(r * C + j);
      const float z = zat(r, j);
      dx[i] += dgated[i] * cpu::silu(z);
      dzbuf[size_t(r * z_stride + z_col + j)] += dgated[i] * x[i] * cpu::silu_grad(z);
    }

  Bf16Array x_d(x.size()), z_d(zbuf.size()), w_d(w.size()), y_d(y.size()), dy_d(dy.size()), dx_d(dx.size()),
      dz_d(dzbuf.size());
  DeviceArray<float> rstd_d(rstd.size()), rstd_in_d(rstd.size()), dw_d(dw.size());
  x_d.upload(to_bf16(x));
  z_d.upload(to_bf16(zbuf));
  w_d.upload(to_bf16(w));
  dy_d.upload(to_bf16(dy));
  dx_d.upload(to_bf16(dx0));
  dz_d.upload(to_bf16(dzbuf0));
  dw_d.upload(dw0);
  rstd_in_d.upload(rstd);
  y_d.poison();
  rstd_d.poison();
  gpu::gated_rmsnorm_forward(y_d.get(), rstd_d.get(), x_d.get(), z_d.get() + z_col, z_stride, w_d.get(), rows, C,
                             group, eps, nullptr);
  gpu::gated_rmsnorm_backward(dx_d.get(), dz_d.get() + z_col, z_stride, dw_d.get(), dy_d.get(), x_d.get(),
                              z_d.get() + z_col, z_stride, w_d.get(), rstd_in_d.get(), rows, C, group, nullptr,
                              nullptr);

  c.expect_close(shape_name("gated y", rows, C, group), y_d.download(), y, kBf16Out);
  c.expect_close(shape_name("gated rstd", rows, C, group), rstd_d.download(), rstd, kF32Out);
  c.expect_close(shape_name("gated dx", rows, C, group), dx_d.download(), dx, kBf16Out);
  c.expect_close(shape_name("gated dz (whole in_proj-shaped buffer)", rows, C, group), dz_d.download(), dzbuf,
                 kBf16Out);
  c.expect_close(shape_name("gated dw", rows, C, group), dw_d.download(), dw, dw_tolerance(rows));
}

}  // namespace

GPU_OP_CASE(norm_gated_rmsnorm) {
  // Mamba2 of the 8B model: d_inner 8192 in 8 groups; z is the first column range of in_proj.
  check_gated(c, 600, 8192, 1024, 2 * 8192 + 2 * 8 * 128 + 128, 0);
  check_gated(c, 77, 2048, 2048, 2048 + 40, 16);  // z at a 16-byte-aligned column offset
  check_gated(c, 45, 180, 60, 180 + 3, 1);        // odd stride and offset: one value per thread
}

// ---- AdamW ----

namespace {

// The reference is detail::adamw_update, the loop the CPU AdamW runs (src/optim/adamw_update.hpp),
// with its constants from detail::AdamWStep; clipping scales the gradient first, as
// clip_grad_norm_to (src/optim/adamw.cpp) does before the step.
void check_adamw(Checker& c, int64_t n, int64_t offset, bool decay, float grad_scale, int64_t step) {
  const std::string tag = "(n " + std::to_string(n) + ", offset " + std::to_string(offset) +
                          (decay ? ", decay" : ", no decay") + ", scale " + std::to_string(grad_scale) + ")";
  nemokit::rt::AdamWConfig config;  // betas 0.9, 0.95, eps 1e-8, weight decay 0.1
  const float lr = 3e-4f;
  auto w = c.normal(size_t(n), 0.05f, false), m = c.normal(size_t(n), 1e-3f, false);
  auto v = c.uniform(size_t(n), 0.0f, 1e-5f, false), g = c.normal(size_t(n), 1e-2f, false);

  // offset shifts every fp32 array off 16-byte alignment: the one-value-per-thread path.
  DeviceArray<float> w_d(size_t(n + offset)), m_d(size_t(n + offset)), v_d(size_t(n + offset)),
      g_d(size_t(n + offset)), scale_d(1);
  Bf16Array wb_d(static_cast<size_t>(n));
  auto padded = [&](const std::vector<float>& a) {
    std::vector<float> p(size_t(offset), 0.0f);
    p.insert(p.end(), a.begin(), a.end());
    return p;
  };
  w_d.upload(padded(w));
  m_d.upload(padded(m));
  v_d.upload(padded(v));
  g_d.upload(padded(g));
  scale_d.upload({grad_scale});
  wb_d.poison();
  const gpu::AdamWHyper hyper{lr, config.beta1, config.beta2, config.eps, decay ? config.weight_decay : 0.0f, step};
  gpu::adamw_step(w_d.get() + offset, m_d.get() + offset, v_d.get() + offset, wb_d.get(), g_d.get() + offset, n,
                  hyper, grad_scale == 1.0f ? nullptr : scale_d.get(), nullptr);

  std::vector<float> gs = g;
  for (float& x : gs) x *= grad_scale;
  const nemokit::rt::detail::AdamWStep s(config, lr, step);
  nemokit::rt::detail::adamw_update(s, decay, w.data(), gs.data(), m.data(), v.data(), n);

  auto unpad = [&](const std::vector<float>& a) { return std::vector<float>(a.begin() + offset, a.end()); };
  // The kernel repeats the CPU's operations with IEEE rounding: the fp32 tolerance is ample.
  c.expect_close("adamw master" + tag, unpad(w_d.download()), w, kF32Out);
  c.expect_close("adamw m" + tag, unpad(m_d.download()), m, kF32Out);
  c.expect_close("adamw v" + tag, unpad(v_d.download()), v, kF32Out);
  // One bf16 step: an fp32 weight one bit off at a rounding boundary would round the other way.
  c.expect_close("adamw bf16 weights" + tag, wb_d.download(), round_bf16(w), {1e-12, 8e-3});
  c.expect_close("adamw grad untouched" + tag, unpad(g_d.download()), g, {0, 0});
}

}  // namespace

GPU_OP_CASE(norm_adamw) {
  check_adamw(c, 100003, 0, true, 1.0f, 1);   // 4-wide path with a 3-element tail, first step
  check_adamw(c, 100003, 0, false, 0.25f, 7);  // no decay, clipped gradient
  check_adamw(c, 4099, 1, true, 1.0f, 1000);   // unaligned: one value per thread
}

// ---- gradient norm and clipping ----

GPU_OP_CASE(norm_grad_norm_clip) {
  // Two tensors accumulated into one partials array, as the model's gradients are.
  const int64_t n1 = 1000003, n2 = 517;
  auto g1 = c.normal(size_t(n1), 1e-2f, false), g2 = c.normal(size_t(n2), 1.0f, false);
  DeviceArray<float> g1_d(size_t(n1 + 1)), g2_d(static_cast<size_t>(n2)), scale_d(1);
  DeviceArray<double> partials_d(gpu::kSumSquaresPartials), sumsq_d(1);
  std::vector<float> g1_padded{0.0f};  // g1 at offset 1: the unaligned path
  g1_padded.insert(g1_padded.end(), g1.begin(), g1.end());
  g1_d.upload(g1_padded);
  g2_d.upload(g2);
  partials_d.upload(std::vector<double>(gpu::kSumSquaresPartials, 0.0));
  sumsq_d.poison();
  gpu::sum_squares_partial(partials_d.get(), g1_d.get() + 1, n1, nullptr);
  gpu::sum_squares_partial(partials_d.get(), g2_d.get(), n2, nullptr);
  gpu::sum_squares_finish(sumsq_d.get(), partials_d.get(), nullptr);
  const double sumsq_gpu = sumsq_d.download()[0];

  double sumsq = 0;  // global_grad_norm's sum (src/optim/adamw.cpp)
  for (float x : g1) sumsq += double(x) * x;
  for (float x : g2) sumsq += double(x) * x;
  // Exact double products; the sums' order differs: n * 2^-53 bounds the relative error.
  if (!(std::fabs(sumsq_gpu - sumsq) <= 1e-10 * sumsq)) {
    char line[160];
    std::snprintf(line, sizeof line, "sum of squares = %.17g, reference %.17g (double sums: rel err > 1e-10)",
                  sumsq_gpu, sumsq);
    c.fail(line);
  }
  c.expect_close("sum of squares (as float)", std::vector<float>{float(sumsq_gpu)}, {float(sumsq)}, kF32Out);

  // clip_grad_norm_to's rule (src/optim/adamw.cpp): scale = max_norm / (norm + 1e-6) above max_norm.
  const double norm = std::sqrt(sumsq);
  for (double max_norm : {0.5 * norm, 2.0 * norm, 0.0}) {
    const std::string tag = "(max_norm " + std::to_string(max_norm) + ")";
    const float scale = max_norm > 0 && norm > max_norm ? float(max_norm / (norm + 1e-6)) : 1.0f;
    DeviceArray<float> g_d(static_cast<size_t>(n2));
    g_d.upload(g2);
    scale_d.poison();
    gpu::grad_clip_scale(scale_d.get(), sumsq_d.get(), max_norm, nullptr);
    gpu::scale_inplace(g_d.get(), n2, scale_d.get(), nullptr);
    std::vector<float> clipped = g2;
    for (float& x : clipped) x *= scale;
    c.expect_close("clip scale" + tag, scale_d.download(), {scale}, kF32Out);
    c.expect_close("clipped gradient" + tag, g_d.download(), clipped, kF32Out);
  }
}
