#include <cstring>
#include <stdexcept>
#include <string>

#include "nemokit/runtime/kernels.hpp"

namespace nemokit::rt::kernels {

void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t rows, int64_t vocab,
                       int64_t C) {
  for (int64_t r = 0; r < rows; ++r) {
    if (ids[r] < 0 || ids[r] >= vocab)
      throw std::out_of_range("token id " + std::to_string(ids[r]) + " at position " + std::to_string(r) +
                              " is outside the vocabulary of " + std::to_string(vocab));
    std::memcpy(out + r * C, table + int64_t(ids[r]) * C, sizeof(float) * C);
  }
}

// Serial over rows: repeated ids add into the same table row, and a fixed order keeps the
// sum bitwise reproducible.
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t rows, int64_t C) {
  for (int64_t r = 0; r < rows; ++r) {
    float* dst = dtable + int64_t(ids[r]) * C;
    const float* src = dout + r * C;
    for (int64_t c = 0; c < C; ++c) dst[c] += src[c];
  }
}

}  // namespace nemokit::rt::kernels
