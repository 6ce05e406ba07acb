// A small owning tensor: shape, strides, dtype and device tag over a shared byte buffer.
// Kernels work on raw float pointers; Tensor is what crosses API boundaries (parameters,
// checkpoints, logits) so shapes and dtypes travel with the data. CUDA tensors hold device
// memory from the CUDA module: raw() is then a device pointer and data<T>() refuses.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace nemokit::rt {

enum class DType { f32, bf16, i32, i64 };
enum class Device { cpu, cuda };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);  // safetensors spelling: F32, BF16, I32, I64

// bf16 is the top half of an IEEE float; conversion rounds to nearest even.
uint16_t float_to_bf16(float value);
float bf16_to_float(uint16_t bits);

class Tensor {
 public:
  Tensor() = default;
  static Tensor empty(std::vector<int64_t> shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor zeros(std::vector<int64_t> shape, DType dtype = DType::f32, Device device = Device::cpu);

  const std::vector<int64_t>& shape() const { return shape_; }
  const std::vector<int64_t>& strides() const { return strides_; }
  int64_t size(int dim) const;
  int dim() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  bool defined() const { return static_cast<bool>(storage_); }
  bool is_contiguous() const;

  // Typed access; throws when the dtype does not match T or the tensor is not on the CPU.
  template <class T> T* data();
  template <class T> const T* data() const;
  float* f32() { return data<float>(); }
  const float* f32() const { return data<float>(); }
  void* raw() { return storage_.get() + offset_; }
  const void* raw() const { return storage_.get() + offset_; }

  // Same storage, new shape (contiguous tensors only, same element count).
  Tensor view(std::vector<int64_t> shape) const;
  Tensor clone() const;
  Tensor to(DType dtype) const;    // f32 <-> bf16 conversion (copies)
  Tensor to(Device device) const;  // a copy on `device` (cuda: the current GPU)
  void zero();
  std::string shape_string() const;

 private:
  std::shared_ptr<std::byte[]> storage_;
  int64_t offset_ = 0;  // in bytes
  std::vector<int64_t> shape_;
  std::vector<int64_t> strides_;  // in elements
  DType dtype_ = DType::f32;
  Device device_ = Device::cpu;
};

}  // namespace nemokit::rt
