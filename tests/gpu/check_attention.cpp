// Flash attention (forward: out and logsumexp; backward: dq, dk, dv) against the CPU reference,
// on grouped-query shapes whose sequence lengths are not multiples of the 64-wide tiles, causal
// and bidirectional, with one document per sequence and with 2-3 packed documents.
#include <algorithm>
#include <cmath>
#include <string>

#include "attention.cuh"
#include "nemokit/runtime/kernels.hpp"
#include "op_check.hpp"

namespace cpu = nemokit::rt::kernels;
namespace gpu = nemokit::rt::cuda;
using namespace nemokit::gpucheck;

namespace {

// dq, dk, dv (bf16, of order 1 here): besides the bf16 outputs and the bf16 P and dS the
// products read, D = rowsum(dout * out) reads the bf16 out the forward wrote (as in
// FlashAttention-2), an error of about 2^-9 |out| |dout| sqrt(hd) that every dS of the row
// carries, and a key's dk sums it over all the queries that attend to it. The kernels run on
// the host with these shapes (several seeds) differed by up to 0.035 absolute, 1.2x kBf16Out,
// hence the wider absolute part (about half of it used); a missing tile, head or mask term is
// off by far more.
constexpr Tolerance kGradOut{6e-2, 2e-2};

struct Config {
  int64_t batch, seq, heads, kv_heads, head_dim;
  bool causal, packed;
};

std::string tag(const Config& g) {
  return "[hd" + std::to_string(g.head_dim) + " T" + std::to_string(g.seq) + " h" + std::to_string(g.heads) + "/" +
         std::to_string(g.kv_heads) + (g.causal ? " causal" : " bidirectional") + (g.packed ? " packed]" : "]");
}

// Each sequence cut into 2 or 3 documents at random points (ids distinct across the batch).
std::vector<int32_t> packed_docs(Checker& c, int64_t batch, int64_t T) {
  std::vector<int32_t> doc(size_t(batch * T));
  int32_t id = 0;
  for (int64_t b = 0; b < batch; ++b) {
    const int ndocs = 2 + c.ints(1, 0, 2)[0];
    std::vector<int32_t> cuts = c.ints(size_t(ndocs - 1), 1, int32_t(T));  // document starts after the first
    std::sort(cuts.begin(), cuts.end());
    size_t next = 0;
    for (int64_t t = 0; t < T; ++t) {
      while (next < cuts.size() && cuts[next] == t) {
        ++id;
        ++next;
      }
      doc[size_t(b * T + t)] = id;
    }
    ++id;
  }
  return doc;
}

// The logsumexp of each query's scaled scores over the keys it sees, in double from q and k.
std::vector<float> reference_lse(const Config& g, const std::vector<float>& q, const std::vector<float>& k,
                                 const int32_t* doc) {
  const int64_t T = g.seq, hd = g.head_dim, rep = g.heads / g.kv_heads;
  const int64_t qs = g.heads * hd, ks = g.kv_heads * hd;
  const double scale = 1.0 / std::sqrt(double(hd));
  std::vector<float> lse(size_t(g.batch * g.heads * T));
  std::vector<double> s(static_cast<size_t>(T));
  for (int64_t b = 0; b < g.batch; ++b)
    for (int64_t h = 0; h < g.heads; ++h)
      for (int64_t t = 0; t < T; ++t) {
        double mx = -INFINITY;
        for (int64_t j = 0; j < T; ++j) {
          const bool seen = (!g.causal || j <= t) && (!doc || doc[b * T + j] == doc[b * T + t]);
          double dot = 0;
          for (int64_t d = 0; d < hd; ++d)
            dot += double(q[size_t((b * T + t) * qs + h * hd + d)]) * k[size_t((b * T + j) * ks + (h / rep) * hd + d)];
          s[size_t(j)] = seen ? dot * scale : -INFINITY;
          mx = std::max(mx, s[size_t(j)]);
        }
        double sum = 0;
        for (int64_t j = 0; j < T; ++j) sum += std::exp(s[size_t(j)] - mx);
        lse[size_t((b * g.heads + h) * T + t)] = float(mx + std::log(sum));
      }
  return lse;
}

void check_attention(Checker& c, const Config& g) {
  const std::string at = tag(g);
  const size_t rows = size_t(g.batch * g.seq), nq = rows * size_t(g.heads * g.head_dim),
               nk = rows * size_t(g.kv_heads * g.head_dim), nlse = size_t(g.batch * g.heads * g.seq);
  // q, k at scale 1.5: scores with a std of about 2, so the softmax is neither flat nor one-hot
  // and the gradients are of order 1 next to the random values they are added to.
  auto q = c.normal(nq, 1.5f), k = c.normal(nk, 1.5f), v = c.normal(nk);
  auto dout = c.normal(nq);
  auto dq0 = c.uniform(nq), dk0 = c.uniform(nk), dv0 = c.uniform(nk);
  const std::vector<int32_t> docs = g.packed ? packed_docs(c, g.batch, g.seq) : std::vector<int32_t>{};
  const int32_t* doc = g.packed ? docs.data() : nullptr;

  const gpu::AttentionShape gs{g.batch, g.seq, g.heads, g.kv_heads, g.head_dim, g.causal};
  DeviceArray<__nv_bfloat16> q_d(nq), k_d(nk), v_d(nk), out_d(nq), dout_d(nq);
  DeviceArray<__nv_bfloat16> dq_d(nq), dk_d(nk), dv_d(nk);
  DeviceArray<float> lse_d(nlse);
  DeviceArray<int32_t> doc_d(g.packed ? docs.size() : 1);
  DeviceArray<unsigned char> ws_d(gpu::attention_backward_workspace_bytes(gs));
  q_d.upload(to_bf16(q));
  k_d.upload(to_bf16(k));
  v_d.upload(to_bf16(v));
  dout_d.upload(to_bf16(dout));
  dq_d.upload(to_bf16(dq0));
  dk_d.upload(to_bf16(dk0));
  dv_d.upload(to_bf16(dv0));
  if (g.packed) doc_d.upload(docs);
  out_d.poison();
  lse_d.poison();
  ws_d.poison();  // the backward must not rely on the workspace's contents
  const int32_t* doc_dev = g.packed ? doc_d.get() : nullptr;
  gpu::attention_forward(gs, q_d.get(), k_d.get(), v_d.get(), doc_dev, out_d.get(), lse_d.get(), nullptr);
  gpu::attention_backward(gs, q_d.get(), k_d.get(), v_d.get(), doc_dev, out_d.get(), lse_d.get(), dout_d.get(),
                          dq_d.get(), dk_d.get(), dv_d.get(), ws_d.get(), nullptr);

  const cpu::AttentionShape cs{g.batch, g.seq, g.heads, g.kv_heads, g.head_dim, g.causal};
  std::vector<float> out(nq), probs(nlse * size_t(g.seq));
  cpu::attention_forward(cs, q.data(), k.data(), v.data(), doc, out.data(), probs.data());
  std::vector<float> dq = dq0, dk = dk0, dv = dv0;
  cpu::attention_backward(cs, q.data(), k.data(), v.data(), doc, probs.data(), dout.data(), dq.data(), dk.data(),
                          dv.data());
  const std::vector<float> lse = reference_lse(g, q, k, doc);

  // out: bf16 output; the P V product reads P rounded to bf16 (relative 2^-9 a term, the
  // errors average out).
  c.expect_close("out" + at, out_d.download(), out, kBf16Out);
  // lse: fp32 sums of exact bf16 products, exp2/log2 in fp32.
  c.expect_close("lse" + at, lse_d.download(), lse, kF32Out);
  c.expect_close("dq" + at, dq_d.download(), dq, kGradOut);
  c.expect_close("dk" + at, dk_d.download(), dk, kGradOut);
  c.expect_close("dv" + at, dv_d.download(), dv, kGradOut);
}

// GQA 4 query heads on 2 kv heads, batch 2, every mask variant.
void check_variants(Checker& c, int64_t head_dim, int64_t seq) {
  for (bool causal : {true, false})
    for (bool packed : {false, true}) check_attention(c, {2, seq, 4, 2, head_dim, causal, packed});
}

}  // namespace

GPU_OP_CASE(attention_hd16_seq37) { check_variants(c, 16, 37); }
GPU_OP_CASE(attention_hd16_seq130) { check_variants(c, 16, 130); }
GPU_OP_CASE(attention_hd64_seq37) { check_variants(c, 64, 37); }
GPU_OP_CASE(attention_hd64_seq130) { check_variants(c, 64, 130); }

// The other head sizes: 8 (padded to WMMA's 16), 32, and Nemotron's 128 with 4 query heads per
// kv head; one tile boundary crossed (seq 100) and several (seq 200).
GPU_OP_CASE(attention_hd8_hd32) {
  check_attention(c, {2, 100, 4, 2, 8, true, true});
  check_attention(c, {2, 100, 4, 2, 32, false, false});
}
GPU_OP_CASE(attention_hd128) {
  check_attention(c, {1, 200, 4, 1, 128, true, false});
  check_attention(c, {1, 200, 4, 1, 128, true, true});
  check_attention(c, {2, 70, 2, 2, 128, false, true});
}
