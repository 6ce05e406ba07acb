// WMMA for the emulator (the CUDA C++ Programming Guide's "Warp Matrix Functions"), 16x16x16 tiles
// of bf16 inputs with fp32 accumulators. A fragment is a warp's, its elements spread over the lanes
// in an unspecified way; here each lane keeps the whole tile, but computes and stores only the
// accumulator elements it owns (element e by lane e % 32). Loads and stores are no barriers, as on
// the device: a lane reads the tile when it gets there and writes its own elements, so a kernel
// that reads what other lanes stored without a __syncwarp between reads stale or NaN values. The
// documented preconditions are checked: 256-bit aligned pointers, ldm a multiple of 16 bytes.
#pragma once
#include <type_traits>

#include "cuda_bf16.h"
#include "cuda_runtime.h"

namespace nvcuda::wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  static_assert(M == 16 && N == 16 && K == 16, "the emulator has the 16x16x16 shape only");
  static constexpr int num_elements = 256;
  T x[256];  // row-major [16][16]
};

namespace detail {
template <class T>
void check(const T* p, unsigned ldm) {
  if (reinterpret_cast<uintptr_t>(p) % 32) cuda_emu::trap("wmma: pointer not 256-bit aligned");
  if (ldm * sizeof(T) % 16) cuda_emu::trap("wmma: ldm not a multiple of 16 bytes");
}
template <class T>
void load(T* x, const T* p, unsigned ldm, bool row) {
  check(p, ldm);
  for (int r = 0; r < 16; ++r)
    for (int c = 0; c < 16; ++c) x[r * 16 + c] = row ? p[r * ldm + c] : p[c * ldm + r];
}
}  // namespace detail

template <class Use, class T, class L>
void load_matrix_sync(fragment<Use, 16, 16, 16, T, L>& f, const T* p, unsigned ldm) {
  detail::load(f.x, p, ldm, std::is_same_v<L, row_major>);
}
inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float>& f, const float* p, unsigned ldm, layout_t l) {
  detail::load(f.x, p, ldm, l == mem_row_major);
}
inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, float>& f, unsigned ldm, layout_t l) {
  detail::check(p, ldm);
  for (int e = int(cuda_emu::lane()); e < 256; e += 32) {
    const int r = e / 16, c = e % 16;
    (l == mem_row_major ? p[r * ldm + c] : p[c * ldm + r]) = f.x[e];
  }
}
template <class F, class V>
void fill_fragment(F& f, V v) {
  for (auto& e : f.x) e = v;
}
// d = a b + c for this lane's elements, fp32 sums in k order (the tensor cores' order and rounding
// inside a product are not specified; README.md).
template <class LA, class LB>
void mma_sync(fragment<accumulator, 16, 16, 16, float>& d, const fragment<matrix_a, 16, 16, 16, __nv_bfloat16, LA>& a,
              const fragment<matrix_b, 16, 16, 16, __nv_bfloat16, LB>& b,
              const fragment<accumulator, 16, 16, 16, float>& c) {
  for (int e = int(cuda_emu::lane()); e < 256; e += 32) {
    const int r = e / 16, col = e % 16;
    float s = c.x[e];
    for (int k = 0; k < 16; ++k) s += float(a.x[r * 16 + k]) * float(b.x[k * 16 + col]);
    d.x[e] = s;
  }
}

}  // namespace nvcuda::wmma
