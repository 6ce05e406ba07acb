#include "param_store.hpp"

#include <cstring>
#include <stdexcept>

#include "cuda_check.cuh"

namespace nemokit::rt::cuda {

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
  const int64_t numel = entry(names[0]).host->value.numel();
  for (const auto& name : names)
    if (entry(name).device || entry(name).host->value.numel() != numel)
      throw std::logic_error("ParamStore: " + name + " taken twice or not the shape of " + names[0]);
  blocks_.emplace_back(size_t(numel) * names.size());
  __nv_bfloat16* base = blocks_.back().get();
  for (size_t i = 0; i < names.size(); ++i) {
    Entry& e = entry(names[i]);
    e.device = base + i * numel;
    upload(e);
  }
  return base;
}

float* ParamStore::take_f32(const std::string& name) {
  Entry& e = entry(name);
  if (!e.device) take(name);  // the bf16 copy too: every parameter has one
  f32_blocks_.emplace_back(size_t(e.host->value.numel()));
  e.device_f32 = f32_blocks_.back().get();
  upload(e);
  return e.device_f32;
}

void ParamStore::upload() {
  for (const auto& e : entries_) upload(e);
}

void ParamStore::check_complete() {
  for (Parameter* p : model_.parameters()) {
    bool found = false;
    for (const auto& e : entries_) found = found || (e.host == p && e.device);
    if (!found) throw std::logic_error("GpuNemotronH: parameter " + p->name + " has no device copy");
  }
}

}  // namespace nemokit::rt::cuda
