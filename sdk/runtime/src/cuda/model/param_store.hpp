// The device copies of a CPU NemotronH's parameters: every tensor as bf16, the working copy the
// kernels read; the MoE experts of a layer stacked into one [E, ...] block each for up and down, as
// the grouped expert GEMMs want; the router's e_score_correction_bias in fp32 as well (a buffer
// moved by +-1e-3 steps per update, which bf16 would round away near 1).
// The fp32 master weights of training (AdamW updates them and writes the bf16 copy in the same
// pass, norm.cuh adamw_step) go in Entry::master; forward-only use leaves them unallocated.
#pragma once
#include <cuda_bf16.h>

#include <cstdint>
#include <string>
#include <deque>
#include <vector>

#include "device_buffer.hpp"
#include "nemokit/runtime/model.hpp"

namespace nemokit::rt::cuda {

class ParamStore {
 public:
  struct Entry {
    Parameter* host = nullptr;
    __nv_bfloat16* device = nullptr;  // numel bf16 values (may point into a stacked block)
    float* device_f32 = nullptr;      // only where an fp32 copy is taken (take_f32)
    float* master = nullptr;          // training: the fp32 master weights (not allocated yet)
  };

  explicit ParamStore(NemotronH& model) : model_(model) {}

  // The named parameter's bf16 copy (uploaded now). Throws when the model has no such tensor.
  __nv_bfloat16* take(const std::string& name);
  // One contiguous block holding the named tensors in order (all the same shape).
  __nv_bfloat16* take_stacked(const std::vector<std::string>& names);
  // An fp32 copy of a buffer (the router bias), besides its bf16 one.
  float* take_f32(const std::string& name);
  // Copies every taken tensor from the CPU model again (after the host values changed).
  void upload();
  // Every parameter of the model must have been taken: a tensor the GPU model does not read
  // would be a silent difference from the CPU forward.
  void check_complete();

 private:
  Entry& entry(const std::string& name);
  void upload(const Entry& e);
  NemotronH& model_;
  std::deque<Entry> entries_;  // deque: an Entry& stays valid while others are added
  std::vector<DeviceBuffer<__nv_bfloat16>> blocks_;
  std::vector<DeviceBuffer<float>> f32_blocks_;
};

}  // namespace nemokit::rt::cuda
