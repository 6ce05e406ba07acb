// A device array that owns its memory and grows on demand: the activations of a layer are sized
// by the rows of the batch, which are known only at the forward, and a later forward with as many
// rows or fewer reuses the same memory (no allocation per step).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "cuda_check.cuh"

namespace nemokit::rt::cuda {

template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t n) { reserve(n); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), cap_(std::exchange(o.cap_, 0)) {}
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }

  // At least n elements (contents are not kept when it grows). cudaMalloc's 256-byte alignment
  // is what the attention kernel (16 bytes) and cuBLASLt's fastest plans want.
  T* reserve(size_t n) {
    if (n > cap_) {
      if (ptr_) NEMOKIT_CUDA_CHECK(cudaFree(ptr_));
      ptr_ = nullptr, cap_ = 0;
      NEMOKIT_CUDA_CHECK(cudaMalloc(&ptr_, n * sizeof(T)));
      cap_ = n;
    }
    return ptr_;
  }
  T* get() const { return ptr_; }
  size_t capacity() const { return cap_; }

 private:
  T* ptr_ = nullptr;
  size_t cap_ = 0;
};

}  // namespace nemokit::rt::cuda
