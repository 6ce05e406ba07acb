// The device copies of a CPU NemotronH's parameters: every tensor as bf16, the working copy the
// kernels read; the MoE experts of a layer stacked into one [E, ...] block each for up and down, as
// the grouped expert GEMMs want; the router's e_score_correction_bias in fp32 as well (a buffer
// moved by +-1e-3 steps per update, which bf16 would round away near 1).
// For training each block also has an fp32 gradient block of the same layout (a stacked block's
// gradient is as contiguous as its weights, which the grouped weight-gradient GEMMs write), and
// the optimizer (gpu_adamw.hpp) keeps its fp32 master weights and moments per block.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <deque>
#include <string>
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
    float* grad = nullptr;            // training, trained parameters only: fp32, same layout
  };
  // The tensors taken together: one, or a layer's stacked experts. They share their flags (a
  // stacked block is updated by one optimizer pass).
  struct Block {
    DeviceBuffer<__nv_bfloat16> weights;
    DeviceBuffer<float> grad;  // empty unless training and trained
    std::vector<Entry*> entries;
    int64_t numel = 0;  // of the whole block
    bool decay = false;
  };

  // training: every trained parameter (trainable, not a buffer) gets a gradient block.
  ParamStore(NemotronH& model, bool training) : model_(model), training_(training) {}

  // The named parameter's bf16 copy (uploaded now). Throws when the model has no such tensor.
  __nv_bfloat16* take(const std::string& name);
  // One contiguous block holding the named tensors in order (all the same shape and flags).
  __nv_bfloat16* take_stacked(const std::vector<std::string>& names);
  // An fp32 copy of a buffer (the router bias), besides its bf16 one.
  float* take_f32(const std::string& name);
  // The gradient of a taken tensor (of the first of a stacked block: the whole block's), or
  // null: not training, or the parameter is frozen. Kernels skip a null weight gradient.
  float* grad(const std::string& name);
  // Copies every taken tensor from the CPU model again (after the host values changed).
  void upload();
  void upload_buffers();  // the entries of buffers only (the routers' correction biases)
  // Every parameter of the model must have been taken: a tensor the GPU model does not read
  // would be a silent difference from the CPU forward.
  void check_complete();

  void zero_grad(cudaStream_t stream);
  // Parameter::grad of every trained parameter = its device gradient (synchronous).
  void download_grads();
  std::deque<Block>& blocks() { return blocks_; }
  NemotronH& model() { return model_; }

 private:
  Entry& entry(const std::string& name);
  void upload(const Entry& e);
  NemotronH& model_;
  bool training_;
  std::deque<Entry> entries_;  // deques: an Entry& and a Block& stay valid while others are added
  std::deque<Block> blocks_;
  std::vector<DeviceBuffer<float>> f32_blocks_;
};

}  // namespace nemokit::rt::cuda
