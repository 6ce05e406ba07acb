#include "linear.hpp"

#include <stdexcept>

#include "nemokit/runtime/kernels.hpp"
#include "nemokit/runtime/parallel.hpp"

namespace nemokit::rt::detail {
namespace k = kernels;

namespace {

float* grad_of(Parameter* p) { return p->trainable && p->grad.defined() ? p->grad.f32() : nullptr; }

// splitmix64's output function: a counter-based hash, so each mask element is drawn
// independently of the thread that computes it.
uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// 1/(1-p) where the element is kept, 0 where it is dropped (inverted dropout, as torch does).
struct Mask {
  uint64_t key;
  float p, inv;
  float operator()(uint64_t i) const {
    float u = float(mix(key + i) >> 40) * (1.0f / 16777216.0f);
    return u >= p ? inv : 0.0f;
  }
};

Mask mask_for(const LoraAdapter& a, uint64_t counter) {
  return {mix(a.seed ^ mix(counter)), a.dropout, 1.0f / (1.0f - a.dropout)};
}

}  // namespace

std::string Linear::module() const {
  const std::string& n = w_->name;
  const std::string suffix = ".weight";
  if (n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
    return n.substr(0, n.size() - suffix.size());
  return n;
}

const float* Linear::dropped_input(const float* x, int64_t rows) {
  const int64_t n = rows * in();
  xd_.resize(n);
  const Mask mask = mask_for(*lora_, counter_);
  parallel_for(n, [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i) xd_[i] = x[i] * mask(uint64_t(i));
  });
  return xd_.data();
}

void Linear::forward(float* y, const float* x, int64_t rows, const LoraRun& run) {
  k::linear_forward(y, x, w_->value.f32(), rows, in(), out());
  if (!lora_) return;
  const int64_t r = lora_->A->value.size(0), n_out = out();
  dropped_ = run.dropout && lora_->dropout > 0;
  counter_ = run.counter;
  const float* xin = dropped_ ? dropped_input(x, rows) : x;
  u_.resize(rows * r);
  k::linear_forward(u_.data(), xin, lora_->A->value.f32(), rows, in(), r);
  for (float& v : u_) v *= lora_->scale;
  // y += u B^T as the accumulating product linear_backward makes (dx += dy w), with w = B^T
  // [rank, out]: no [rows, out] temporary and no extra pass over y.
  const float* B = lora_->B->value.f32();
  bt_.resize(r * n_out);
  for (int64_t o = 0; o < n_out; ++o)
    for (int64_t j = 0; j < r; ++j) bt_[j * n_out + o] = B[o * r + j];
  k::linear_backward(y, nullptr, u_.data(), nullptr, bt_.data(), rows, n_out, r);
}

void Linear::backward(float* dx, const float* dy, const float* x, int64_t rows) {
  k::linear_backward(dx, grad_of(w_), dy, x, w_->value.f32(), rows, in(), out());
  if (!lora_) return;
  const int64_t r = lora_->A->value.size(0);
  // y += u B^T with u = scale * x' A^T:  dB += dy^T u,  du = dy B,  dA += scale * du^T x',
  // dx' = scale * du A.
  du_.assign(rows * r, 0.0f);
  k::linear_backward(du_.data(), grad_of(lora_->B), dy, u_.data(), lora_->B->value.f32(), rows, r, out());
  for (float& v : du_) v *= lora_->scale;
  if (!dropped_) {
    k::linear_backward(dx, grad_of(lora_->A), du_.data(), x, lora_->A->value.f32(), rows, in(), r);
    return;
  }
  const float* xd = dropped_input(x, rows);
  const int64_t n = rows * in();
  dxd_.assign(dx ? n : 0, 0.0f);
  k::linear_backward(dx ? dxd_.data() : nullptr, grad_of(lora_->A), du_.data(), xd, lora_->A->value.f32(), rows, in(),
                     r);
  if (!dx) return;
  const Mask mask = mask_for(*lora_, counter_);
  parallel_for(n, [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i) dx[i] += dxd_[i] * mask(uint64_t(i));
  });
}

void Linear::attach(const LoraAdapter& adapter) {
  if (lora_) throw std::logic_error(module() + ": already has a LoRA adapter");
  lora_ = std::make_unique<LoraAdapter>(adapter);
}

void Linear::merge() {
  if (!lora_) return;
  const int64_t r = lora_->A->value.size(0), K = in();
  const float* A = lora_->A->value.f32();
  const float* B = lora_->B->value.f32();
  float* W = w_->value.f32();
  const float s = lora_->scale;
  parallel_for(out(), [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o)
      for (int64_t j = 0; j < r; ++j) {
        const float b = s * B[o * r + j];
        for (int64_t i = 0; i < K; ++i) W[o * K + i] += b * A[j * K + i];
      }
  });
  lora_.reset();
}

}  // namespace nemokit::rt::detail
