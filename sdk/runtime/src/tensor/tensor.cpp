#include "nemokit/runtime/tensor.hpp"

#include <cstring>
#include <stdexcept>

#include "../dist/cuda_module.hpp"

namespace nemokit::rt {

namespace {

// CUDA storage comes from the CUDA module (src/cuda/memory/device_memory.cu), so this library
// never links CUDA; without a module or a GPU, asking for it throws the reason.
struct CudaMemory {
  void (*alloc)(size_t, void**, std::string*) = nullptr;
  void (*free)(void*) = nullptr;
  bool (*copy)(void*, const void*, size_t, std::string*) = nullptr;
  bool (*memset)(void*, int, size_t, std::string*) = nullptr;
  std::string missing;
};

const CudaMemory& cuda_memory() {
  static const CudaMemory m = [] {
    CudaMemory c;
    std::string why;
    c.alloc = cuda_entry<void(size_t, void**, std::string*)>("nemokit_rt_cuda_alloc", why);
    c.free = cuda_entry<void(void*)>("nemokit_rt_cuda_free", why);
    c.copy = cuda_entry<bool(void*, const void*, size_t, std::string*)>("nemokit_rt_cuda_copy", why);
    c.memset = cuda_entry<bool(void*, int, size_t, std::string*)>("nemokit_rt_cuda_memset", why);
    if (!c.alloc || !c.free || !c.copy || !c.memset) c.missing = why;
    return c;
  }();
  if (!m.missing.empty()) throw std::runtime_error("Tensor on cuda: " + m.missing);
  return m;
}

void cuda_or_throw(bool ok, const std::string& why, const char* what) {
  if (!ok) throw std::runtime_error(std::string("Tensor::") + what + " on cuda: " + why);
}

}  // namespace

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32: return 4;
    case DType::bf16: return 2;
    case DType::i32: return 4;
    case DType::i64: return 8;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32: return "F32";
    case DType::bf16: return "BF16";
    case DType::i32: return "I32";
    case DType::i64: return "I64";
  }
  return "?";
}

uint16_t float_to_bf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu)) return uint16_t((bits >> 16) | 0x40);  // keep NaN a NaN
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t((bits + rounding) >> 16);
}

float bf16_to_float(uint16_t bits) {
  uint32_t wide = uint32_t(bits) << 16;
  float value;
  std::memcpy(&value, &wide, 4);
  return value;
}

template <class T> static constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<uint16_t>() { return DType::bf16; }
template <> constexpr DType dtype_of<int32_t>() { return DType::i32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::i64; }

static std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (int i = int(shape.size()) - 2; i >= 0; --i) strides[i] = strides[i + 1] * shape[i + 1];
  return strides;
}

Tensor Tensor::empty(std::vector<int64_t> shape, DType dtype, Device device) {
  for (int64_t d : shape)
    if (d < 0) throw std::invalid_argument("Tensor: negative dimension");
  Tensor t;
  t.shape_ = std::move(shape);
  t.strides_ = contiguous_strides(t.shape_);
  t.dtype_ = dtype;
  t.device_ = device;
  size_t bytes = std::max<size_t>(t.nbytes(), 1);
  if (device == Device::cuda) {
    const CudaMemory& cuda = cuda_memory();
    void* p = nullptr;
    std::string why;
    cuda.alloc(bytes, &p, &why);
    if (!p) throw std::runtime_error("Tensor " + t.shape_string() + " " + dtype_name(dtype) + " on cuda: " + why);
    t.storage_ = std::shared_ptr<std::byte[]>(static_cast<std::byte*>(p), [free = cuda.free](std::byte* q) { free(q); });
    return t;
  }
  t.storage_ = std::shared_ptr<std::byte[]>(new std::byte[bytes]);
  return t;
}

Tensor Tensor::zeros(std::vector<int64_t> shape, DType dtype, Device device) {
  Tensor t = empty(std::move(shape), dtype, device);
  t.zero();
  return t;
}

int64_t Tensor::size(int dim) const {
  if (dim < 0) dim += int(shape_.size());
  if (dim < 0 || dim >= int(shape_.size())) throw std::out_of_range("Tensor::size: bad dimension");
  return shape_[dim];
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape_) n *= d;
  return n;
}

bool Tensor::is_contiguous() const { return strides_ == contiguous_strides(shape_); }

template <class T> T* Tensor::data() {
  if (dtype_ != dtype_of<T>()) throw std::runtime_error(std::string("Tensor: dtype is ") + dtype_name(dtype_));
  if (device_ != Device::cpu) throw std::runtime_error("Tensor: data() on a non-CPU tensor");
  return reinterpret_cast<T*>(storage_.get() + offset_);
}
template <class T> const T* Tensor::data() const { return const_cast<Tensor*>(this)->data<T>(); }
template float* Tensor::data<float>();
template uint16_t* Tensor::data<uint16_t>();
template int32_t* Tensor::data<int32_t>();
template int64_t* Tensor::data<int64_t>();
template const float* Tensor::data<float>() const;
template const uint16_t* Tensor::data<uint16_t>() const;
template const int32_t* Tensor::data<int32_t>() const;
template const int64_t* Tensor::data<int64_t>() const;

Tensor Tensor::view(std::vector<int64_t> shape) const {
  if (!is_contiguous()) throw std::runtime_error("Tensor::view: tensor is not contiguous");
  Tensor t = *this;
  t.shape_ = std::move(shape);
  if (t.numel() != numel()) throw std::runtime_error("Tensor::view: " + shape_string() + " cannot become " + t.shape_string());
  t.strides_ = contiguous_strides(t.shape_);
  return t;
}

Tensor Tensor::clone() const { return to(device_); }

Tensor Tensor::to(Device device) const {
  if (!is_contiguous()) throw std::runtime_error("Tensor::to: tensor is not contiguous");
  Tensor t = empty(shape_, dtype_, device);
  if (device_ == Device::cpu && device == Device::cpu) {
    std::memcpy(t.raw(), raw(), nbytes());
  } else if (nbytes() > 0) {
    std::string why;
    cuda_or_throw(cuda_memory().copy(t.raw(), raw(), nbytes(), &why), why, "to");
  }
  return t;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return clone();
  // On the GPU the training path converts with its kernels; this one is for checkpoints and
  // tests, through the host.
  if (device_ != Device::cpu) return to(Device::cpu).to(dtype).to(device_);
  Tensor t = empty(shape_, dtype, device_);
  int64_t n = numel();
  if (dtype_ == DType::f32 && dtype == DType::bf16) {
    const float* src = data<float>();
    uint16_t* dst = t.data<uint16_t>();
    for (int64_t i = 0; i < n; ++i) dst[i] = float_to_bf16(src[i]);
  } else if (dtype_ == DType::bf16 && dtype == DType::f32) {
    const uint16_t* src = data<uint16_t>();
    float* dst = t.data<float>();
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_float(src[i]);
  } else {
    throw std::runtime_error(std::string("Tensor::to: no conversion from ") + dtype_name(dtype_) + " to " + dtype_name(dtype));
  }
  return t;
}

void Tensor::zero() {
  if (!storage_ || nbytes() == 0) return;
  if (device_ == Device::cpu) {
    std::memset(raw(), 0, nbytes());
    return;
  }
  std::string why;
  cuda_or_throw(cuda_memory().memset(raw(), 0, nbytes(), &why), why, "zero");
}

std::string Tensor::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < shape_.size(); ++i) s += (i ? ", " : "") + std::to_string(shape_[i]);
  return s + "]";
}

}  // namespace nemokit::rt
