// ZeRO-1: AdamW with its moments sharded over the data-parallel ranks. The trained parameters
// are one flat vector (GradientSum's order) cut into equal blocks, one per rank; a step
// reduce-scatters the summed gradients (each rank gets the global gradient of its block), clips
// by the norm all ranks agree on, updates its block and all-gathers the weights back. The
// arithmetic per element is the unsharded step's (adamw_update.hpp), so the two agree to the
// last bit but for the order of the norm's sum.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "adamw_update.hpp"
#include "nemokit/runtime/comm.hpp"
#include "nemokit/runtime/grad_sync.hpp"
#include "nemokit/runtime/optim.hpp"

namespace nemokit::rt {

namespace {

constexpr size_t kBucketFloats = size_t(8) << 20 >> 2;  // 8 MiB of floats per rank per collective

// Calls fn(i, at, flat, n) for each piece of the flat range [lo, hi): n values of parameter i
// from its element `at`, which is element `flat` of the flat vector.
template <class Fn>
void for_each_piece(const std::vector<size_t>& offset, size_t lo, size_t hi, Fn fn) {
  hi = std::min(hi, offset.back());
  if (lo >= hi) return;
  size_t i = size_t(std::upper_bound(offset.begin(), offset.end(), lo) - offset.begin()) - 1;
  for (; i + 1 < offset.size() && offset[i] < hi; ++i) {
    const size_t a = std::max(lo, offset[i]), b = std::min(hi, offset[i + 1]);
    if (a < b) fn(i, a - offset[i], a, b - a);
  }
}

}  // namespace

AdamW::AdamW(std::vector<Parameter*> params, AdamWConfig config, Communicator& comm)
    : params_(std::move(params)), config_(config), comm_(&comm) {
  m_.resize(params_.size()), v_.resize(params_.size());
  offset_.push_back(0);
  for (size_t i = 0; i < params_.size(); ++i)
    if (detail::trained(params_[i]) && params_[i]->expert_shard) {
      experts_.push_back(i);
      m_[i] = Tensor::zeros(params_[i]->value.shape());
      v_[i] = Tensor::zeros(params_[i]->value.shape());
    } else if (detail::trained(params_[i])) {
      flat_.push_back(params_[i]);
      flat_to_param_.push_back(i);
      offset_.push_back(offset_.back() + size_t(params_[i]->value.numel()));
    }
  const size_t total = offset_.back(), world = size_t(comm.size());
  per_rank_ = (total + world - 1) / world;
  lo_ = std::min(total, per_rank_ * size_t(comm.rank()));
  hi_ = std::min(total, lo_ + per_rank_);
  m_block_.assign(hi_ - lo_, 0.0f);
  v_block_.assign(hi_ - lo_, 0.0f);
}

void AdamW::all_gather_blocks(const std::function<void(size_t at, size_t n, float* out)>& pack_own,
                              const std::function<float*(size_t flat_index)>& param_data) {
  const size_t world = size_t(comm_->size()), bucket = std::min(per_rank_, kBucketFloats);
  std::vector<float> mine(bucket), all(world * bucket);
  for (size_t at = 0; at < per_rank_; at += bucket) {
    const size_t n = std::min(bucket, per_rank_ - at);
    // This rank's values [lo_ + at, lo_ + at + n), zeros past its block's end.
    const size_t have = lo_ + at < hi_ ? std::min(n, hi_ - lo_ - at) : 0;
    if (have) pack_own(at, have, mine.data());
    std::fill(mine.begin() + std::ptrdiff_t(have), mine.begin() + std::ptrdiff_t(n), 0.0f);
    comm_->all_gather(mine.data(), all.data(), n);
    for (size_t r = 0; r < world; ++r) {
      const size_t from = r * per_rank_ + at;
      const float* src = all.data() + r * n;
      for_each_piece(offset_, from, from + n, [&](size_t i, size_t p_at, size_t flat, size_t k) {
        std::copy(src + (flat - from), src + (flat - from) + k, param_data(i) + p_at);
      });
    }
  }
}

double AdamW::step_sharded(float lr, GradientSum& grads, double max_grad_norm, int expert_parallel) {
  if (!sharded()) throw std::logic_error("AdamW::step_sharded on an optimizer that is not ZeRO-1");
  if (grads.replicated_size() != offset_.back())
    throw std::runtime_error("ZeRO-1: " + std::to_string(grads.replicated_size()) + " gradients this step but " + std::to_string(offset_.back()) +
                             " trained values when the optimizer was built; the set of trained parameters cannot change under "
                             "parallel.zero = 1");
  std::vector<double> sum(per_rank_);
  grads.reduce_scatter(*comm_, per_rank_, sum.data());
  // The block's gradient as the unsharded path sees it (float), and the global norm from every
  // block's sum of squares.
  const size_t n = hi_ - lo_;
  std::vector<float> g(n);
  double squares = 0;
  for (size_t k = 0; k < n; ++k) {
    g[k] = float(sum[k]);
    squares += double(g[k]) * g[k];
  }
  // An expert counts once: on its rank of the first expert-parallel group.
  if (comm_->rank() < expert_parallel)
    for (size_t i : experts_) {
      const Tensor& grad = params_[i]->grad;
      for (int64_t k = 0; k < grad.numel(); ++k) squares += double(grad.f32()[k]) * grad.f32()[k];
    }
  comm_->all_reduce_sum(&squares, 1);
  const double norm = std::sqrt(squares);
  if (max_grad_norm > 0 && norm > max_grad_norm) {
    const float scale = float(max_grad_norm / (norm + 1e-6));
    for (float& x : g) x *= scale;
    for (size_t i : experts_)
      for (int64_t k = 0; k < params_[i]->grad.numel(); ++k) params_[i]->grad.f32()[k] *= scale;
  }
  // Moments gathered for the last checkpoint are stale from here on.
  drop_flat_moments();

  ++step_;
  const detail::AdamWStep s(config_, lr, step_);
  for_each_piece(offset_, lo_, hi_, [&](size_t i, size_t at, size_t flat, size_t k) {
    const size_t b = flat - lo_;
    detail::adamw_update(s, flat_[i]->decay, flat_[i]->value.f32() + at, g.data() + b, m_block_.data() + b, v_block_.data() + b,
                         int64_t(k));
  });
  for (size_t i : experts_) {
    Parameter* p = params_[i];
    detail::adamw_update(s, p->decay, p->value.f32(), p->grad.f32(), m_[i].f32(), v_[i].f32(), p->value.numel());
  }
  all_gather_blocks(
      [&](size_t at, size_t k, float* out) {
        for_each_piece(offset_, lo_ + at, lo_ + at + k, [&](size_t i, size_t p_at, size_t flat, size_t c) {
          const float* w = flat_[i]->value.f32() + p_at;
          std::copy(w, w + c, out + (flat - lo_ - at));
        });
      },
      [&](size_t i) { return flat_[i]->value.f32(); });
  return norm;
}

void AdamW::gather_state() {
  if (!sharded()) return;
  for (size_t i = 0; i < flat_.size(); ++i) {
    m_[flat_to_param_[i]] = Tensor::zeros(flat_[i]->value.shape());
    v_[flat_to_param_[i]] = Tensor::zeros(flat_[i]->value.shape());
  }
  for (auto [block, whole] : {std::pair{&m_block_, &m_}, std::pair{&v_block_, &v_}})
    all_gather_blocks([&](size_t at, size_t k, float* out) { std::copy(block->data() + at, block->data() + at + k, out); },
                      [&](size_t i) { return (*whole)[flat_to_param_[i]].f32(); });
  gathered_ = true;
}

void AdamW::keep_own_block() {
  for_each_piece(offset_, lo_, hi_, [&](size_t i, size_t at, size_t flat, size_t k) {
    const Tensor& m = m_[flat_to_param_[i]];
    const Tensor& v = v_[flat_to_param_[i]];
    std::copy(m.f32() + at, m.f32() + at + k, m_block_.data() + (flat - lo_));
    std::copy(v.f32() + at, v.f32() + at + k, v_block_.data() + (flat - lo_));
  });
  drop_flat_moments();
}

void AdamW::drop_flat_moments() {
  for (size_t i : flat_to_param_) m_[i] = Tensor(), v_[i] = Tensor();
  gathered_ = false;
}

}  // namespace nemokit::rt
