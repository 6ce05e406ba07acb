// Mamba2 kernels (causal conv1d, SSD scan) against the CPU reference, with and without packed
// documents: boundaries inside a chunk and on a chunk start, chunk sizes that do not divide the
// sequence, one group and several, and the model's own sizes (chunk 128, head_dim 64, state 128)
// for the opt-in shared-memory paths.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "mamba.cuh"
#include "nemokit/runtime/kernels.hpp"
#include "op_check.hpp"

namespace cpu = nemokit::rt::kernels;
namespace gpu = nemokit::rt::cuda;
using namespace nemokit::gpucheck;

namespace {

// Per-row document ids of `batch` packed sequences; starts[b] lists where sequence b's documents
// begin (position 0 implied). Empty `starts`: no doc array (one document per sequence).
std::vector<int32_t> make_doc(int64_t batch, int64_t seq, const std::vector<std::vector<int64_t>>& starts) {
  if (starts.empty()) return {};
  std::vector<int32_t> doc(size_t(batch * seq));
  for (int64_t b = 0; b < batch; ++b) {
    int32_t id = 0;
    for (int64_t t = 0; t < seq; ++t) {
      for (int64_t s : starts[size_t(b)])
        if (s == t && t > 0) ++id;
      doc[size_t(b * seq + t)] = id;
    }
  }
  return doc;
}

// Columns [off, off+width) of a [rows, stride] buffer.
std::vector<float> columns(const std::vector<float>& v, int64_t rows, int64_t stride, int64_t off, int64_t width) {
  std::vector<float> out(size_t(rows * width));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < width; ++i) out[size_t(r * width + i)] = v[size_t(r * stride + off + i)];
  return out;
}

// --------------------------------------------------------------------------------------------
void check_conv1d(Checker& c, int64_t batch, int64_t seq, int64_t channels, int64_t K, bool with_bias,
                  const std::vector<std::vector<int64_t>>& starts) {
  const int64_t rows = batch * seq;
  // x is `channels` columns at offset 3 of wider rows (as xBC sits inside in_proj's output).
  const int64_t stride = channels + 7, off = 3;
  auto xbuf = c.uniform(size_t(rows * stride));
  auto w = c.uniform(size_t(channels * K), -0.5f, 0.5f), bias = c.uniform(size_t(channels));
  auto dy = c.uniform(size_t(rows * channels));
  auto dxbuf0 = c.uniform(size_t(rows * stride));  // the gradient buffer dx is added into
  auto dw0 = c.uniform(size_t(channels * K), -1.0f, 1.0f, false), db0 = c.uniform(size_t(channels), -1.0f, 1.0f, false);
  const auto doc = make_doc(batch, seq, starts);
  const std::string tag = "conv1d[" + std::to_string(batch) + "x" + std::to_string(seq) + "x" +
                          std::to_string(channels) + " K" + std::to_string(K) + (doc.empty() ? "" : " doc") + "] ";

  DeviceArray<__nv_bfloat16> x_d(xbuf.size()), w_d(w.size()), b_d(bias.size()), y_d(size_t(rows * channels)),
      dy_d(dy.size()), dx_d(dxbuf0.size());
  DeviceArray<float> dw_d(dw0.size()), db_d(db0.size());
  DeviceArray<int32_t> doc_d(std::max<size_t>(doc.size(), 1));
  DeviceArray<unsigned char> ws_d(gpu::conv1d_backward_workspace_bytes(batch, seq, channels, K));
  x_d.upload(to_bf16(xbuf));
  w_d.upload(to_bf16(w));
  b_d.upload(to_bf16(bias));
  dy_d.upload(to_bf16(dy));
  dx_d.upload(to_bf16(dxbuf0));
  dw_d.upload(dw0);
  db_d.upload(db0);
  if (!doc.empty()) doc_d.upload(doc);
  y_d.poison();
  const int32_t* docp = doc.empty() ? nullptr : doc_d.get();
  gpu::conv1d_forward(y_d.get(), x_d.get() + off, stride, w_d.get(), with_bias ? b_d.get() : nullptr, docp, batch, seq,
                      channels, K, nullptr);
  gpu::conv1d_backward(dx_d.get() + off, stride, dw_d.get(), with_bias ? db_d.get() : nullptr, dy_d.get(),
                       x_d.get() + off, stride, w_d.get(), docp, batch, seq, channels, K, ws_d.get(), nullptr);

  const int32_t* doch = doc.empty() ? nullptr : doc.data();
  std::vector<float> y(size_t(rows * channels)), dxbuf = dxbuf0, dw = dw0, db = db0;
  cpu::conv1d_forward(y.data(), xbuf.data() + off, stride, w.data(), with_bias ? bias.data() : nullptr, doch, batch,
                      seq, channels, K);
  cpu::conv1d_backward(dxbuf.data() + off, stride, dw.data(), with_bias ? db.data() : nullptr, dy.data(),
                       xbuf.data() + off, stride, w.data(), doch, batch, seq, channels, K);
  c.expect_close(tag + "y", y_d.download(), y, kBf16Out);
  // The whole dx buffer: the columns outside x must come back untouched.
  c.expect_close(tag + "dx (whole buffer)", dx_d.download(), dxbuf, kBf16Out);
  // dw, dbias: fp32 sums over all rows (a few hundred products of bf16 values), tile partials
  // reduced in another order than the CPU's single running sum.
  c.expect_close(tag + "dw", dw_d.download(), dw, kF32Out);
  c.expect_close(tag + "dbias", db_d.download(), db, kF32Out);
}

// --------------------------------------------------------------------------------------------
// The cumsum's gradient (ddt, dA) is a suffix sum of per-row terms that largely cancel (each
// intra-chunk product enters one row with + and another with -), so its absolute error follows
// the terms' size, not the result's: a looser absolute bound than kF32Out.
constexpr Tolerance kCumsumGrad{1e-3, 1e-3};

void check_ssd(Checker& c, gpu::SsdShape gs, const std::vector<std::vector<int64_t>>& starts) {
  const cpu::SsdShape cs{gs.batch, gs.seq, gs.heads, gs.head_dim, gs.groups, gs.state, gs.chunk};
  const int64_t rows = gs.batch * gs.seq, H = gs.heads, P = gs.head_dim, G = gs.groups, N = gs.state;
  const int64_t width = H * P + 2 * G * N, stride = width + 3;  // 3 unused columns per xBC row
  const int64_t xoff = 0, boff = H * P, coff = H * P + G * N;
  const int64_t nc = gs.num_chunks(), nstates = gs.batch * H * nc * P * N;
  const auto doc = make_doc(gs.batch, gs.seq, starts);
  char name[160];
  std::snprintf(name, sizeof name, "ssd[b%lld s%lld Q%lld H%lld P%lld G%lld N%lld%s] ", (long long)gs.batch,
                (long long)gs.seq, (long long)gs.chunk, (long long)H, (long long)P, (long long)G, (long long)N,
                doc.empty() ? "" : " doc");
  const std::string tag = name;

  auto xbc = c.uniform(size_t(rows * stride));
  auto dt = c.uniform(size_t(rows * H), 0.001f, 0.1f, false);  // softplus'ed: positive
  auto A = c.uniform(size_t(H), -2.0f, -0.5f, false);          // -exp(A_log): negative
  auto D = c.uniform(size_t(H), 0.5f, 1.5f, false);
  auto dy = c.uniform(size_t(rows * H * P));
  auto dxbc0 = c.uniform(size_t(rows * stride), -1.0f, 1.0f, false);
  auto ddt0 = c.uniform(size_t(rows * H), -1.0f, 1.0f, false);
  auto dA0 = c.uniform(size_t(H), -1.0f, 1.0f, false), dD0 = c.uniform(size_t(H), -1.0f, 1.0f, false);

  // ---- CPU reference
  const cpu::SsdInputs ci{xbc.data() + xoff, xbc.data() + boff, xbc.data() + coff, stride, dt.data(),
                          A.data(),          D.data(),          doc.empty() ? nullptr : doc.data()};
  std::vector<float> y(size_t(rows * H * P)), states(static_cast<size_t>(nstates));
  cpu::ssd_forward(cs, ci, y.data(), states.data());
  std::vector<float> dxbc = dxbc0, ddt = ddt0, dA = dA0, dD = dD0;
  const cpu::SsdGrads cg{dxbc.data() + xoff, dxbc.data() + boff, dxbc.data() + coff, ddt.data(), dA.data(), dD.data()};
  cpu::ssd_backward(cs, ci, states.data(), dy.data(), cg);

  // ---- GPU
  DeviceArray<__nv_bfloat16> xbc_d(xbc.size()), y_d(y.size()), dy_d(dy.size());
  DeviceArray<float> dt_d(dt.size()), A_d(A.size()), D_d(D.size()), states_d(states.size()), ref_states_d(states.size());
  DeviceArray<float> dxbc_d(dxbc0.size()), ddt_d(ddt0.size()), dA_d(dA0.size()), dD_d(dD0.size());
  DeviceArray<int32_t> doc_d(std::max<size_t>(doc.size(), 1));
  DeviceArray<unsigned char> ws_d(gpu::ssd_backward_workspace_bytes(gs));
  xbc_d.upload(to_bf16(xbc));
  dy_d.upload(to_bf16(dy));
  dt_d.upload(dt);
  A_d.upload(A);
  D_d.upload(D);
  if (!doc.empty()) doc_d.upload(doc);
  dxbc_d.upload(dxbc0);
  ddt_d.upload(ddt0);
  dA_d.upload(dA0);
  dD_d.upload(dD0);
  // The backward reads the reference's chunk states, so it is checked on exactly the CPU's inputs
  // (the forward's own states are compared below).
  ref_states_d.upload(states);
  y_d.poison();
  states_d.poison();
  ws_d.poison();  // scratch: every element the backward reads must have been written first
  const gpu::SsdInputs gi{xbc_d.get() + xoff, xbc_d.get() + boff, xbc_d.get() + coff, stride, dt_d.get(),
                          A_d.get(),          D_d.get(),          doc.empty() ? nullptr : doc_d.get()};
  gpu::ssd_forward(gs, gi, y_d.get(), states_d.get(), nullptr);
  const gpu::SsdGrads gg{dxbc_d.get() + xoff, dxbc_d.get() + boff, dxbc_d.get() + coff,
                         ddt_d.get(),         dA_d.get(),          dD_d.get()};
  gpu::ssd_backward(gs, gi, ref_states_d.get(), dy_d.get(), gg, ws_d.get(), nullptr);

  c.expect_close(tag + "y", y_d.download(), y, kBf16Out);
  c.expect_close(tag + "chunk_states", states_d.download(), states, kF32Out);
  const auto dxbc_g = dxbc_d.download();
  c.expect_close(tag + "dx", columns(dxbc_g, rows, stride, xoff, H * P), columns(dxbc, rows, stride, xoff, H * P),
                 kF32Out);
  c.expect_close(tag + "dB", columns(dxbc_g, rows, stride, boff, G * N), columns(dxbc, rows, stride, boff, G * N),
                 kF32Out);
  c.expect_close(tag + "dC", columns(dxbc_g, rows, stride, coff, G * N), columns(dxbc, rows, stride, coff, G * N),
                 kF32Out);
  c.expect_close(tag + "unused xBC gradient columns", columns(dxbc_g, rows, stride, width, 3),
                 columns(dxbc, rows, stride, width, 3), kF32Out);
  c.expect_close(tag + "ddt", ddt_d.download(), ddt, kCumsumGrad);
  c.expect_close(tag + "dA", dA_d.download(), dA, kCumsumGrad);
  c.expect_close(tag + "dD", dD_d.download(), dD, kF32Out);
}

}  // namespace

GPU_OP_CASE(mamba_conv1d) {
  // rows 600: three backward row tiles (256), the last one short; 200 channels: two blocks.
  check_conv1d(c, 2, 300, 200, 4, true, {});
  // documents: a start at t=1 (first tap row), t=2..3 (inside the K-1 window), and later.
  check_conv1d(c, 2, 300, 200, 4, true, {{0, 1, 3, 150}, {0, 100, 257}});
  check_conv1d(c, 3, 45, 70, 3, false, {{0, 10, 32}, {0, 16}, {0}});
}

GPU_OP_CASE(mamba_ssd_small) {
  // seq 45 with chunk 16: the last chunk is short (13 rows).
  const gpu::SsdShape s{2, 45, 4, 8, 2, 16, 16};
  check_ssd(c, s, {});
  // documents: sequence 0 starts one inside chunk 0 (t=10) and one on a chunk start (t=32);
  // sequence 1 one on a chunk start (t=16) and one inside the short last chunk (t=37).
  check_ssd(c, s, {{0, 10, 32}, {0, 16, 37}});
}

GPU_OP_CASE(mamba_ssd_one_group) {
  // One group (every head shares B, C), seq a multiple of the chunk.
  const gpu::SsdShape s{2, 64, 3, 8, 1, 16, 16};
  check_ssd(c, s, {});
  check_ssd(c, s, {{0, 20, 48}, {0, 32}});
}

GPU_OP_CASE(mamba_ssd_odd_sizes) {
  // head_dim 40 (lanes loop past 32), state 17 (odd: padded bf16 tiles), chunk 32 (one row tile
  // of dB/dC), one head per group.
  check_ssd(c, gpu::SsdShape{2, 50, 2, 40, 2, 17, 32}, {{0, 33}, {0, 7, 32}});
  // One chunk shorter than the chunk size: no state is carried or handed on.
  check_ssd(c, gpu::SsdShape{1, 10, 2, 8, 1, 16, 16}, {{0, 4}});
}

GPU_OP_CASE(mamba_ssd_model_sizes) {
  // Nemotron-H's chunk, head_dim and state (dynamic shared memory past 48 KiB), 4 heads in 2
  // groups, three chunks with a short last one; documents: one starts mid-chunk, one on chunk 2.
  const gpu::SsdShape s{1, 300, 4, 64, 2, 128, 128};
  check_ssd(c, s, {});
  check_ssd(c, s, {{0, 77, 256}});
}
