#include "param_store.hpp"

#include <cstring>
#include <stdexcept>

#include "cuda_check.cuh"

namespace nemokit::rt::cuda {
namespace {

bool trained(const Parameter* p) { return p->trainable && !p->buffer; }

}  // namespace

ParamStore::Entry& ParamStore::entry(const std::string& name) {
  Parameter* p = model_.find(name);
  if (!p) throw std::invalid_argument("GpuNemotronH: the model has no parameter " + name);
  for (auto& e : entries_)
    if (e.host == p) return e;
  entries_.push_back(Entry{p});
  return entries_.back();
}

void ParamStore::upload(const Entry& e) {
  const Tensor& t = e.host->value;
  const float* src = t.f32();
  const auto n = size_t(t.numel());
  if (e.device) {
    std::vector<uint16_t> bits(n);
    for (size_t i = 0; i < n; ++i) bits[i] = float_to_bf16(src[i]);
    NEMOKIT_CUDA_CHECK(cudaMemcpy(e.device, bits.data(), n * sizeof(uint16_t), cudaMemcpyHostToDevice));
  }
  if (e.device_f32) NEMOKIT_CUDA_CHECK(cudaMemcpy(e.device_f32, src, n * sizeof(float), cudaMemcpyHostToDevice));
}

__nv_bfloat16* ParamStore::take(const std::string& name) { return take_stacked({name}); }

__nv_bfloat16* ParamStore::take_stacked(const std::vector<std::string>& names) {
  if (names.empty()) throw std::logic_error("ParamStore::take_stacked: no names");
  const Parameter* first = entry(names[0]).host;
  const int64_t numel = first->value.numel();
  for (const auto& name : names) {
    const Parameter* p = entry(name).host;
    if (entry(name).device || p->value.numel() != numel)
      throw std::logic_error("ParamStore: " + name + " taken twice or not the shape of " + names[0]);
    if (trained(p) != trained(first) || p->decay != first->decay)
      throw std::invalid_argument("GpuNemotronH: " + name + " is trained differently from " + names[0] +
                                  " (frozen or decayed alone), but the GPU model updates them as one block");
  }
  Block& b = blocks_.emplace_back();
  b.numel = numel * int64_t(names.size());
  b.decay = first->decay;
  b.weights.reserve(size_t(b.numel));
  const bool with_grad = training_ && trained(first);
  if (with_grad) b.grad.reserve(size_t(b.numel));
  for (size_t i = 0; i < names.size(); ++i) {
    Entry& e = entry(names[i]);
    e.device = b.weights.get() + i * numel;
    if (with_grad) e.grad = b.grad.get() + i * numel;
    b.entries.push_back(&e);
    upload(e);
  }
  return b.weights.get();
}

float* ParamStore::take_f32(const std::string& name) {
  Entry& e = entry(name);
  if (!e.device) take(name);  // the bf16 copy too: every parameter has one
  f32_blocks_.emplace_back(size_t(e.host->value.numel()));
  e.device_f32 = f32_blocks_.back().get();
  upload(e);
  return e.device_f32;
}

float* ParamStore::grad(const std::string& name) {
  Entry& e = entry(name);
  if (!e.device) throw std::logic_error("ParamStore::grad: " + name + " was not taken");
  return e.grad;
}

void ParamStore::upload() {
  for (const auto& e : entries_) upload(e);
}

void ParamStore::upload_buffers() {
  for (const auto& e : entries_)
    if (e.host->buffer) upload(e);
}

void ParamStore::check_complete() {
  for (Parameter* p : model_.parameters()) {
    bool found = false;
    for (const auto& e : entries_) found = found || (e.host == p && e.device);
    if (!found) throw std::logic_error("GpuNemotronH: parameter " + p->name + " has no device copy");
  }
}

void ParamStore::zero_grad(cudaStream_t stream) {
  for (auto& b : blocks_)
    if (b.grad.get()) NEMOKIT_CUDA_CHECK(cudaMemsetAsync(b.grad.get(), 0, sizeof(float) * size_t(b.numel), stream));
}

void ParamStore::download_grads() {
  for (const auto& e : entries_) {
    if (!e.grad) continue;
    Tensor& g = e.host->grad;
    if (!g.defined()) g = Tensor::zeros(e.host->value.shape());
    NEMOKIT_CUDA_CHECK(cudaMemcpy(g.f32(), e.grad, sizeof(float) * size_t(g.numel()), cudaMemcpyDeviceToHost));
  }
}

}  // namespace nemokit::rt::cuda
