// Causal depthwise conv1d: y[t,c] = b[c] + sum_k w[c,k] x[t-K+1+k, c], where taps before the
// sequence start or in an earlier document of a packed row read zero.
#include <algorithm>
#include <vector>

#include "nemokit/runtime/kernels.hpp"
#include "nemokit/runtime/parallel.hpp"

namespace nemokit::rt::kernels {

static inline bool same_doc(const int32_t* doc, int64_t a, int64_t b) { return !doc || doc[a] == doc[b]; }

void conv1d_forward(float* y, const float* x, int64_t x_stride, const float* w, const float* bias,
                    const int32_t* doc, int64_t batch, int64_t seq, int64_t channels, int64_t K) {
  parallel_for(batch * seq, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t t = r % seq;
      float* yr = y + r * channels;
      for (int64_t c = 0; c < channels; ++c) yr[c] = bias ? bias[c] : 0.0f;
      for (int64_t k = 0; k < K; ++k) {
        int64_t j = t - K + 1 + k;
        if (j < 0 || !same_doc(doc, r - t + j, r)) continue;
        const float* xr = x + (r - t + j) * x_stride;
        for (int64_t c = 0; c < channels; ++c) yr[c] += w[c * K + k] * xr[c];
      }
    }
  });
}

// Parallel over blocks of channels: every gradient element (dx column, dw row, db entry)
// belongs to one channel, so no two threads write the same place. Inside a block the
// weights and their gradients are held transposed ([tap][channel]) so every inner loop runs
// over contiguous channels.
void conv1d_backward(float* dx, int64_t dx_stride, float* dw, float* dbias, const float* dy, const float* x,
                     int64_t x_stride, const float* w, const int32_t* doc, int64_t batch, int64_t seq,
                     int64_t channels, int64_t K) {
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (channels + kBlock - 1) / kBlock;
  parallel_for(blocks, [&](int64_t b0, int64_t b1) {
    std::vector<float> wt(K * kBlock), dwt(K * kBlock), db(kBlock);
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t c0 = blk * kBlock, n = std::min(channels, c0 + kBlock) - c0;
      for (int64_t k = 0; k < K; ++k)
        for (int64_t c = 0; c < n; ++c) wt[k * kBlock + c] = w[(c0 + c) * K + k];
      std::fill(dwt.begin(), dwt.end(), 0.0f);
      std::fill(db.begin(), db.end(), 0.0f);
      for (int64_t b = 0; b < batch; ++b) {
        for (int64_t t = 0; t < seq; ++t) {
          const int64_t r = b * seq + t;
          const float* g = dy + r * channels + c0;
          for (int64_t c = 0; c < n; ++c) db[c] += g[c];
          for (int64_t k = 0; k < K; ++k) {
            const int64_t j = t - K + 1 + k;
            if (j < 0 || !same_doc(doc, b * seq + j, r)) continue;
            const float* xr = x + (b * seq + j) * x_stride + c0;
            float* dwk = dwt.data() + k * kBlock;
            for (int64_t c = 0; c < n; ++c) dwk[c] += g[c] * xr[c];
            if (dx) {
              float* dxr = dx + (b * seq + j) * dx_stride + c0;
              const float* wk = wt.data() + k * kBlock;
              for (int64_t c = 0; c < n; ++c) dxr[c] += g[c] * wk[c];
            }
          }
        }
      }
      if (dbias)
        for (int64_t c = 0; c < n; ++c) dbias[c0 + c] += db[c];
      if (dw)
        for (int64_t k = 0; k < K; ++k)
          for (int64_t c = 0; c < n; ++c) dw[(c0 + c) * K + k] += dwt[k * kBlock + c];
    }
  });
}

}  // namespace nemokit::rt::kernels
