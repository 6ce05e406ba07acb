// The harness of cuda_op_check: each case runs one GPU kernel and the CPU reference kernel on the
// same fresh random inputs and compares every output. Outputs a kernel writes are poisoned first
// (all bits set: NaN in f32 and bf16, -1 in int32), so an element the kernel forgot fails;
// outputs a kernel adds into start from random values on both sides, so "adds" is checked too.
// Inputs are drawn, rounded to bf16 where the kernel reads bf16, and the CPU reference reads the
// rounded values: the only differences left are the GPU's bf16 outputs and its summation order.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "nemokit/runtime/rng.hpp"
#include "nemokit/runtime/tensor.hpp"

namespace nemokit::gpucheck {

void cuda_or_throw(cudaError_t e, const char* what);

// A device array of T (float, __nv_bfloat16, int32_t, int64_t...), freed on scope exit.
template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : n_(n) { cuda_or_throw(cudaMalloc(&ptr_, bytes() ? bytes() : 1), "cudaMalloc"); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { cudaFree(ptr_); }
  T* get() { return ptr_; }
  const T* get() const { return ptr_; }
  size_t size() const { return n_; }
  size_t bytes() const { return n_ * sizeof(T); }
  void upload(const std::vector<T>& host) {
    if (host.size() != n_) throw std::logic_error("upload: size mismatch");
    cuda_or_throw(cudaMemcpy(ptr_, host.data(), bytes(), cudaMemcpyHostToDevice), "cudaMemcpy to device");
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    cuda_or_throw(cudaDeviceSynchronize(), "kernel run (cudaDeviceSynchronize)");
    cuda_or_throw(cudaMemcpy(host.data(), ptr_, bytes(), cudaMemcpyDeviceToHost), "cudaMemcpy to host");
    return host;
  }
  void poison() { cuda_or_throw(cudaMemset(ptr_, 0xFF, bytes()), "cudaMemset"); }

 private:
  T* ptr_ = nullptr;
  size_t n_;
};

// bf16 on the host side: the runtime's own conversion (round to nearest even).
std::vector<__nv_bfloat16> to_bf16(const std::vector<float>& v);
std::vector<float> to_float(const std::vector<__nv_bfloat16>& v);
// Each value rounded to the nearest bf16 (what a bf16 kernel input holds).
std::vector<float> round_bf16(std::vector<float> v);

struct Tolerance {
  double atol, rtol;  // |gpu - cpu| <= atol + rtol * |cpu|
};
// bf16 outputs: 8 bits of mantissa, plus summation order.
inline constexpr Tolerance kBf16Out{2e-2, 2e-2};
// fp32 outputs computed from bf16 inputs with fp32 sums.
inline constexpr Tolerance kF32Out{1e-4, 1e-3};

class Checker {
 public:
  explicit Checker(uint64_t seed) : rng_(seed) {}
  rt::Rng& rng() { return rng_; }
  // n values uniform in [lo, hi), rounded to bf16 when `bf16` (the default: most inputs are).
  std::vector<float> uniform(size_t n, float lo = -1.0f, float hi = 1.0f, bool bf16 = true);
  std::vector<float> normal(size_t n, float scale = 1.0f, bool bf16 = true);
  std::vector<int32_t> ints(size_t n, int32_t lo, int32_t hi);  // uniform in [lo, hi)

  // Compare an output; records the worst error. NaN anywhere in `gpu` (a poisoned element left
  // unwritten, or a kernel that made one) fails the case.
  void expect_close(const std::string& what, const std::vector<float>& gpu, const std::vector<float>& cpu,
                    Tolerance tol);
  void expect_close(const std::string& what, const std::vector<__nv_bfloat16>& gpu, const std::vector<float>& cpu,
                    Tolerance tol) {
    expect_close(what, to_float(gpu), cpu, tol);
  }
  void expect_equal(const std::string& what, const std::vector<int32_t>& gpu, const std::vector<int32_t>& cpu);
  // A case may also fail outright with its own words.
  void fail(const std::string& why);

  bool ok() const { return failure_.empty(); }
  const std::string& failure() const { return failure_; }
  std::string summary() const;  // "max abs err A (output), max rel err R" of the compared outputs

 private:
  rt::Rng rng_;
  std::string failure_;
  double worst_abs_ = 0, worst_rel_ = 0;
  std::string worst_what_;
  int compared_ = 0;
};

using CaseFn = std::function<void(Checker&)>;
struct Registrar {
  Registrar(const char* name, CaseFn fn);
};

}  // namespace nemokit::gpucheck

// GPU_OP_CASE(name) { ... uses `c` (a Checker&) ... }: one row of the table.
#define GPU_OP_CASE(name)                                                                  \
  static void gpu_op_case_##name(::nemokit::gpucheck::Checker& c);                          \
  static const ::nemokit::gpucheck::Registrar gpu_op_registrar_##name(#name, gpu_op_case_##name); \
  static void gpu_op_case_##name(::nemokit::gpucheck::Checker& c)
