// Every CPU kernel's backward against central finite differences of its forward.
#include <gtest/gtest.h>

#include <cmath>

#include "grad_check.hpp"
#include "nemokit/runtime/kernels.hpp"

using namespace nemokit::rt;
using namespace nemokit::rt::testing;
namespace k = nemokit::rt::kernels;

TEST(runtime_kernels, LinearBackwardMatchesFiniteDifferences) {
  std::mt19937 gen(1);
  const int64_t M = 5, K = 7, N = 3;
  auto x = random_vector(M * K, gen), w = random_vector(N * K, gen), r = random_vector(M * N, gen);
  std::vector<float> y(M * N), dx(M * K, 0), dw(N * K, 0);
  auto loss = [&] {
    k::linear_forward(y.data(), x.data(), w.data(), M, K, N);
    return weighted_sum(y.data(), r);
  };
  loss();
  k::linear_backward(dx.data(), dw.data(), r.data(), x.data(), w.data(), M, K, N);
  expect_grad_matches("linear dx", x.data(), x.size(), dx.data(), loss, 1e-2f, 1e-3);
  expect_grad_matches("linear dw", w.data(), w.size(), dw.data(), loss, 1e-2f, 1e-3);
}

TEST(runtime_kernels, RmsNormBackwardMatchesFiniteDifferences) {
  for (int64_t group : {8, 4}) {
    std::mt19937 gen(2);
    const int64_t rows = 5, C = 8;
    auto x = random_vector(rows * C, gen), w = random_vector(C, gen), r = random_vector(rows * C, gen);
    std::vector<float> y(rows * C), rstd(rows * C / group), dx(rows * C, 0), dw(C, 0);
    auto loss = [&] {
      k::rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), rows, C, group, 1e-5f);
      return weighted_sum(y.data(), r);
    };
    loss();
    k::rmsnorm_backward(dx.data(), dw.data(), r.data(), x.data(), w.data(), rstd.data(), rows, C, group);
    expect_grad_matches("rmsnorm dx group " + std::to_string(group), x.data(), x.size(), dx.data(), loss, 1e-2f, 5e-3);
    expect_grad_matches("rmsnorm dw", w.data(), w.size(), dw.data(), loss, 1e-2f, 5e-3);
  }
}

TEST(runtime_kernels, Relu2AndEmbeddingBackward) {
  std::mt19937 gen(3);
  auto x = random_vector(40, gen), r = random_vector(40, gen);
  for (auto& v : x)
    if (std::fabs(v) < 0.05f) v = 0.3f;  // keep finite differences away from the kink
  std::vector<float> y(40), dx(40, 0);
  auto loss = [&] {
    k::relu2_forward(y.data(), x.data(), 40);
    return weighted_sum(y.data(), r);
  };
  loss();
  k::relu2_backward(dx.data(), r.data(), x.data(), 40);
  expect_grad_matches("relu2", x.data(), x.size(), dx.data(), loss, 1e-3f, 5e-3);

  const int64_t V = 6, C = 4, rows = 5;
  std::vector<int32_t> ids = {1, 3, 1, 5, 0};
  auto table = random_vector(V * C, gen), r2 = random_vector(rows * C, gen);
  std::vector<float> out(rows * C), dtable(V * C, 0);
  auto loss2 = [&] {
    k::embedding_forward(out.data(), ids.data(), table.data(), rows, V, C);
    return weighted_sum(out.data(), r2);
  };
  loss2();
  k::embedding_backward(dtable.data(), r2.data(), ids.data(), rows, C);
  expect_grad_matches("embedding", table.data(), table.size(), dtable.data(), loss2, 1e-2f, 1e-3);
  int32_t bad = 6;
  EXPECT_THROW(k::embedding_forward(out.data(), &bad, table.data(), 1, V, C), std::out_of_range);
}

TEST(runtime_kernels, CrossEntropyBackwardMatchesFiniteDifferences) {
  std::mt19937 gen(4);
  const int64_t rows = 6, V = 9;
  auto z = random_vector(rows * V, gen, 2.0f);
  std::vector<int32_t> targets = {0, 8, -100, 3, 3, 5};
  std::vector<float> row_loss(rows), dz(rows * V, 7.0f);  // overwritten, not added to
  auto loss = [&] { return k::cross_entropy(z.data(), targets.data(), rows, V, row_loss.data(), nullptr, 1.0f); };
  k::cross_entropy(z.data(), targets.data(), rows, V, row_loss.data(), dz.data(), 1.0f);
  EXPECT_EQ(row_loss[2], 0.0f);
  for (int64_t i = 0; i < V; ++i) EXPECT_EQ(dz[2 * V + i], 0.0f) << "ignored row has a gradient";
  expect_grad_matches("cross_entropy", z.data(), z.size(), dz.data(), loss, 1e-2f, 2e-3);
  // Uniform logits: loss is log(V) exactly.
  std::vector<float> flat(V, 0.5f);
  int32_t t = 4;
  float l;
  k::cross_entropy(flat.data(), &t, 1, V, &l, nullptr, 1.0f);
  EXPECT_NEAR(l, std::log(9.0f), 1e-6);
}

TEST(runtime_kernels, Conv1dBackwardMatchesFiniteDifferencesWithDocuments) {
  std::mt19937 gen(5);
  const int64_t B = 2, T = 9, Cc = 5, K = 4, stride = 7;
  std::vector<int32_t> doc = {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 3};
  auto x = random_vector(B * T * stride, gen), w = random_vector(Cc * K, gen), bias = random_vector(Cc, gen);
  auto r = random_vector(B * T * Cc, gen);
  std::vector<float> y(B * T * Cc), dx(x.size(), 0), dw(w.size(), 0), db(Cc, 0);
  auto loss = [&] {
    k::conv1d_forward(y.data(), x.data() + 2, stride, w.data(), bias.data(), doc.data(), B, T, Cc, K);
    return weighted_sum(y.data(), r);
  };
  loss();
  k::conv1d_backward(dx.data() + 2, stride, dw.data(), db.data(), r.data(), x.data() + 2, stride, w.data(), doc.data(),
                     B, T, Cc, K);
  expect_grad_matches("conv1d dx", x.data(), x.size(), dx.data(), loss, 1e-2f, 1e-3, 200);
  expect_grad_matches("conv1d dw", w.data(), w.size(), dw.data(), loss, 1e-2f, 1e-3);
  expect_grad_matches("conv1d db", bias.data(), bias.size(), db.data(), loss, 1e-2f, 1e-3);
  // A document start sees only the bias and its own input.
  int64_t r12 = 12;  // row 1, t = 3: first position of document 2
  float expect = bias[0] + w[K - 1] * x[2 + r12 * stride];
  EXPECT_NEAR(y[r12 * Cc + 0], expect, 1e-6);
}

namespace {
// Chunked scan against the plain per-step recurrence S = exp(A dt) S + dt x B^T, y = C S + D x.
void reference_scan(const k::SsdShape& s, const k::SsdInputs& in, std::vector<float>& y) {
  const int64_t H = s.heads, P = s.head_dim, N = s.state;
  y.assign(s.batch * s.seq * H * P, 0);
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < H; ++h) {
      int64_t g = h / (H / s.groups);
      std::vector<double> S(P * N, 0);
      for (int64_t t = 0; t < s.seq; ++t) {
        int64_t r = b * s.seq + t;
        if (t > 0 && in.doc && in.doc[r] != in.doc[r - 1]) std::fill(S.begin(), S.end(), 0);
        double dt = in.dt[r * H + h], decay = std::exp(double(in.A[h]) * dt);
        for (int64_t p = 0; p < P; ++p) {
          double x = in.x[r * in.stride + h * P + p], acc = 0;
          for (int64_t n = 0; n < N; ++n) {
            S[p * N + n] = decay * S[p * N + n] + dt * x * in.B[r * in.stride + g * N + n];
            acc += S[p * N + n] * in.C[r * in.stride + g * N + n];
          }
          y[r * H * P + h * P + p] = float(acc + in.D[h] * x);
        }
      }
    }
}
}  // namespace

TEST(runtime_kernels, SsdScanMatchesRecurrenceAndFiniteDifferences) {
  std::mt19937 gen(6);
  const int64_t B = 2, T = 11, H = 4, P = 3, G = 2, N = 5;
  k::SsdShape s{B, T, H, P, G, N, 4};
  const int64_t stride = H * P + 2 * G * N, rows = B * T;
  auto xbc = random_vector(rows * stride, gen);
  std::vector<float> dt(rows * H), A = {-0.5f, -1.0f, -1.7f, -2.2f}, D = {1.0f, 0.5f, -0.3f, 0.8f};
  std::uniform_real_distribution<float> u(0.05f, 0.6f);
  for (auto& v : dt) v = u(gen);
  std::vector<int32_t> doc(rows, 0);
  for (int64_t t = 0; t < T; ++t) doc[T + t] = t < 3 ? 1 : (t < 9 ? 2 : 3);  // starts at 3 and 9
  k::SsdInputs in{xbc.data(), xbc.data() + H * P, xbc.data() + H * P + G * N, stride, dt.data(), A.data(), D.data(),
                  doc.data()};
  std::vector<float> y(rows * H * P), states(B * H * s.num_chunks() * P * N), ref;
  k::ssd_forward(s, in, y.data(), states.data());
  reference_scan(s, in, ref);
  for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], ref[i], 1e-4 * (1 + std::fabs(ref[i]))) << "index " << i;

  auto r = random_vector(y.size(), gen);
  auto loss = [&] {
    k::ssd_forward(s, in, y.data(), states.data());
    return weighted_sum(y.data(), r);
  };
  loss();
  std::vector<float> dxbc(xbc.size(), 0), ddt(dt.size(), 0), dA(H, 0), dD(H, 0);
  k::SsdGrads g{dxbc.data(), dxbc.data() + H * P, dxbc.data() + H * P + G * N, ddt.data(), dA.data(), dD.data()};
  k::ssd_backward(s, in, states.data(), r.data(), g);
  expect_grad_matches("ssd x/B/C", xbc.data(), xbc.size(), dxbc.data(), loss, 1e-2f, 5e-3, 300);
  expect_grad_matches("ssd dt", dt.data(), dt.size(), ddt.data(), loss, 1e-3f, 5e-3);
  expect_grad_matches("ssd A", A.data(), A.size(), dA.data(), loss, 1e-3f, 5e-3);
  expect_grad_matches("ssd D", D.data(), D.size(), dD.data(), loss, 1e-2f, 1e-3);
}

TEST(runtime_kernels, AttentionBackwardMatchesFiniteDifferences) {
  std::mt19937 gen(7);
  const int64_t B = 2, T = 7, nh = 4, nkv = 2, hd = 3;
  k::AttentionShape s{B, T, nh, nkv, hd};
  std::vector<int32_t> doc = {0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2};
  auto q = random_vector(B * T * nh * hd, gen), kk = random_vector(B * T * nkv * hd, gen),
       v = random_vector(B * T * nkv * hd, gen), r = random_vector(B * T * nh * hd, gen);
  std::vector<float> out(q.size()), probs(B * nh * T * T), dq(q.size(), 0), dk(kk.size(), 0), dv(v.size(), 0);
  auto loss = [&] {
    k::attention_forward(s, q.data(), kk.data(), v.data(), doc.data(), out.data(), probs.data());
    return weighted_sum(out.data(), r);
  };
  loss();
  // First position of a document attends only to itself: output = its own value row.
  int64_t row = T + 3, head = 1;
  for (int64_t d = 0; d < hd; ++d) EXPECT_NEAR(out[row * nh * hd + head * hd + d], v[row * nkv * hd + 0 * hd + d], 1e-6);
  k::attention_backward(s, q.data(), kk.data(), v.data(), doc.data(), probs.data(), r.data(), dq.data(), dk.data(),
                        dv.data());
  expect_grad_matches("attention dq", q.data(), q.size(), dq.data(), loss, 1e-2f, 2e-3, 100);
  expect_grad_matches("attention dk", kk.data(), kk.size(), dk.data(), loss, 1e-2f, 2e-3, 100);
  expect_grad_matches("attention dv", v.data(), v.size(), dv.data(), loss, 1e-2f, 2e-3, 100);
}

TEST(runtime_kernels, AttentionAcrossSeveralCausalBlocks) {
  // Longer than one 64-row query block, with a document start inside the second block.
  std::mt19937 gen(8);
  const int64_t B = 1, T = 150, nh = 2, nkv = 1, hd = 4;
  k::AttentionShape s{B, T, nh, nkv, hd};
  std::vector<int32_t> doc(T, 0);
  for (int64_t t = 90; t < T; ++t) doc[t] = 1;
  auto q = random_vector(T * nh * hd, gen), kk = random_vector(T * nkv * hd, gen), v = random_vector(T * nkv * hd, gen),
       r = random_vector(T * nh * hd, gen);
  std::vector<float> out(q.size()), probs(B * nh * T * T), dq(q.size(), 0), dk(kk.size(), 0), dv(v.size(), 0);
  auto loss = [&] {
    k::attention_forward(s, q.data(), kk.data(), v.data(), doc.data(), out.data(), probs.data());
    return weighted_sum(out.data(), r);
  };
  loss();
  // Row 140 attends to positions 90..140 only: its output is a convex mix of their values.
  for (int64_t j = 0; j < T; ++j) {
    float pj = probs[(0 * T + 140) * T + j];
    if (j < 90 || j > 140) EXPECT_EQ(pj, 0.0f) << j;
    else EXPECT_GT(pj, 0.0f) << j;
  }
  k::attention_backward(s, q.data(), kk.data(), v.data(), doc.data(), probs.data(), r.data(), dq.data(), dk.data(),
                        dv.data());
  expect_grad_matches("blocked attention dq", q.data(), q.size(), dq.data(), loss, 1e-2f, 3e-3, 80);
  expect_grad_matches("blocked attention dk", kk.data(), kk.size(), dk.data(), loss, 1e-2f, 3e-3, 80);
  expect_grad_matches("blocked attention dv", v.data(), v.size(), dv.data(), loss, 1e-2f, 3e-3, 80);
}

TEST(runtime_kernels, BidirectionalAttentionSeesTheWholeDocument) {
  // Encoders: every position attends to every position of its document, before and after it,
  // across more than one query block.
  std::mt19937 gen(9);
  const int64_t B = 2, T = 70, nh = 2, nkv = 1, hd = 4;
  k::AttentionShape s{B, T, nh, nkv, hd, /*causal=*/false};
  std::vector<int32_t> doc(B * T, 0);
  for (int64_t t = 40; t < T; ++t) doc[T + t] = 1;  // second row: two documents
  auto q = random_vector(B * T * nh * hd, gen), kk = random_vector(B * T * nkv * hd, gen),
       v = random_vector(B * T * nkv * hd, gen), r = random_vector(B * T * nh * hd, gen);
  std::vector<float> out(q.size()), probs(B * nh * T * T), dq(q.size(), 0), dk(kk.size(), 0), dv(v.size(), 0);
  auto loss = [&] {
    k::attention_forward(s, q.data(), kk.data(), v.data(), doc.data(), out.data(), probs.data());
    return weighted_sum(out.data(), r);
  };
  loss();
  // Row 0 of the first sequence attends to all 70 positions; row 10 of the second only to 0..39.
  double sum0 = 0;
  for (int64_t j = 0; j < T; ++j) {
    EXPECT_GT(probs[j], 0.0f) << j;
    sum0 += probs[j];
  }
  EXPECT_NEAR(sum0, 1.0, 1e-5);
  const float* p1 = probs.data() + (1 * nh + 0) * T * T + 10 * T;
  for (int64_t j = 0; j < T; ++j) {
    if (j < 40) EXPECT_GT(p1[j], 0.0f) << j;
    else EXPECT_EQ(p1[j], 0.0f) << j;
  }
  k::attention_backward(s, q.data(), kk.data(), v.data(), doc.data(), probs.data(), r.data(), dq.data(), dk.data(),
                        dv.data());
  expect_grad_matches("bidirectional attention dq", q.data(), q.size(), dq.data(), loss, 1e-2f, 3e-3, 80);
  expect_grad_matches("bidirectional attention dk", kk.data(), kk.size(), dk.data(), loss, 1e-2f, 3e-3, 80);
  expect_grad_matches("bidirectional attention dv", v.data(), v.size(), dv.data(), loss, 1e-2f, 3e-3, 80);
}
