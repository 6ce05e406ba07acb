// Internal: one bias-free projection y = x W^T of a mixer, the single place where a LoRA
// adapter joins the computation. Without an adapter it makes exactly the kernel calls a
// mixer would make itself; with one it adds (alpha/rank) * dropout(x) A^T B^T and the
// matching gradients into A, B and dx.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nemokit/runtime/model.hpp"

namespace nemokit::rt::detail {

// What a forward needs to know for the adapter's dropout: masks are drawn only in training
// forwards, from (adapter seed, adapter index, forward counter, element), so a rerun or a
// resumed run draws the same masks.
struct LoraRun {
  bool dropout = false;
  uint64_t counter = 0;
};

struct LoraAdapter {
  Parameter* A = nullptr;  // [rank, in]
  Parameter* B = nullptr;  // [out, rank]
  float scale = 1;         // alpha / rank
  float dropout = 0;
  uint64_t seed = 0;       // mixes the model's LoRA seed with this adapter's index
};

class Linear {
 public:
  explicit Linear(Parameter* weight) : w_(weight) {}
  Parameter* weight() const { return w_; }
  int64_t in() const { return w_->value.size(1); }
  int64_t out() const { return w_->value.size(0); }
  std::string module() const;  // the weight's name without ".weight"

  // y[rows, out] is overwritten.
  void forward(float* y, const float* x, int64_t rows, const LoraRun& run = {});
  // dx[rows, in] is added to (may be null); follows forward on the same x.
  void backward(float* dx, const float* dy, const float* x, int64_t rows);

  void attach(const LoraAdapter& adapter);
  const LoraAdapter* adapter() const { return lora_.get(); }
  // W += scale * B A, then the adapter is gone.
  void merge();
  void detach() { lora_.reset(); }
  void reseed(uint64_t seed) {
    if (lora_) lora_->seed = seed;
  }

 private:
  // dropout(x) of the last training forward, rebuilt from the mask in `xd`.
  const float* dropped_input(const float* x, int64_t rows);

  Parameter* w_;
  std::unique_ptr<LoraAdapter> lora_;
  // adapter state of the last forward: u = scale * dropout(x) A^T, the mask's counter
  bool dropped_ = false;
  uint64_t counter_ = 0;
  std::vector<float> u_, bt_, xd_, du_, dxd_;
};

}  // namespace nemokit::rt::detail
