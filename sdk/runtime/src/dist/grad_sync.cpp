#include "nemokit/runtime/grad_sync.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace nemokit::rt {

GradientSum::GradientSum(const std::vector<Parameter*>& params) {
  size_t n = 0;
  for (bool shard : {false, true})
    for (Parameter* p : params)
      if (!p->buffer && p->trainable && p->grad.defined() && p->expert_shard == shard) {
        params_.push_back(p);
        offset_.push_back(n);
        n += size_t(p->grad.numel());
        if (!shard) replicated_ = n;
      }
  sum_.assign(n, 0.0);
}

void GradientSum::add_one(size_t index) {
  Parameter* p = params_[index];
  float* g = p->grad.f32();
  const size_t n = size_t(p->grad.numel());
  double* s = sum_.data() + offset_[index];
  for (size_t i = 0; i < n; ++i) s[i] += double(g[i]);
  std::fill(g, g + n, 0.0f);
}

void GradientSum::add_and_clear() {
  for (size_t i = 0; i < params_.size(); ++i) add_one(i);
}

void GradientSum::add_and_clear(const std::vector<Parameter*>& some) {
  for (Parameter* p : some) {
    // Few parameters per call (an expert's two): a search beats keeping a map.
    auto it = std::find(params_.begin(), params_.end(), p);
    if (it == params_.end())
      throw std::invalid_argument("GradientSum::add_and_clear: " + p->name + " is not a trained parameter of the sum");
    add_one(size_t(it - params_.begin()));
  }
}

void GradientSum::all_reduce(Communicator& comm, size_t bucket_bytes) {
  if (comm.size() == 1) return;
  const size_t bucket = std::max<size_t>(1, bucket_bytes / sizeof(double));
  for (size_t at = 0; at < replicated_; at += bucket) comm.all_reduce_sum(sum_.data() + at, std::min(bucket, replicated_ - at));
}

void GradientSum::all_reduce_experts(Communicator& comm, int ep, size_t bucket_bytes) {
  if (ep <= 1 || comm.size() <= ep) return;
  // The ranks at the same position of every group hold the same experts. A world all-reduce of
  // a buffer with one block per position, each rank filling its own and zeros elsewhere, sums
  // each block over exactly those ranks (adding zeros changes no bit), with no sub-communicator:
  // it moves ep times the experts' gradients, which CPU training affords.
  const size_t n = sum_.size() - replicated_, position = size_t(comm.rank() % ep);
  std::vector<double> blocks(n * size_t(ep), 0.0);
  std::copy(sum_.begin() + std::ptrdiff_t(replicated_), sum_.end(), blocks.begin() + std::ptrdiff_t(position * n));
  const size_t bucket = std::max<size_t>(1, bucket_bytes / sizeof(double));
  for (size_t at = 0; at < blocks.size(); at += bucket)
    comm.all_reduce_sum(blocks.data() + at, std::min(bucket, blocks.size() - at));
  std::copy(blocks.begin() + std::ptrdiff_t(position * n), blocks.begin() + std::ptrdiff_t((position + 1) * n),
            sum_.begin() + std::ptrdiff_t(replicated_));
}

void GradientSum::reduce_scatter(Communicator& comm, size_t per_rank, double* block, size_t bucket_bytes) const {
  const size_t world = size_t(comm.size());
  if (per_rank * world < replicated_)
    throw std::invalid_argument("GradientSum::reduce_scatter: " + std::to_string(world) + " blocks of " +
                                std::to_string(per_rank) + " do not cover " + std::to_string(replicated_) + " gradients");
  const size_t bucket = std::max<size_t>(1, bucket_bytes / sizeof(double));
  // MPI wants the blocks for rank 0, 1, ... side by side: each bucket takes the same slice of
  // every rank's block into `staging`.
  std::vector<double> staging(world * std::min(bucket, per_rank));
  for (size_t at = 0; at < per_rank; at += bucket) {
    const size_t n = std::min(bucket, per_rank - at);
    for (size_t r = 0; r < world; ++r) {
      const size_t from = r * per_rank + at;
      const size_t have = from < replicated_ ? std::min(n, replicated_ - from) : 0;
      double* dst = staging.data() + r * n;
      std::copy(sum_.begin() + std::ptrdiff_t(from), sum_.begin() + std::ptrdiff_t(from + have), dst);
      std::fill(dst + have, dst + n, 0.0);
    }
    comm.reduce_scatter_sum(staging.data(), block + at, n);
  }
}

void GradientSum::store() const { store_from(0); }

void GradientSum::store_experts() const {
  store_from(size_t(std::find_if(params_.begin(), params_.end(), [](const Parameter* p) { return p->expert_shard; }) -
                    params_.begin()));
}

void GradientSum::store_from(size_t first) const {
  for (size_t k = first; k < params_.size(); ++k) {
    float* g = params_[k]->grad.f32();
    const size_t n = size_t(params_[k]->grad.numel());
    for (size_t i = 0; i < n; ++i) g[i] = float(sum_[offset_[k] + i]);
  }
}

double expert_parallel_grad_norm(NemotronH& model) {
  const auto& layout = model.parameter_layout();
  std::vector<double> squares(layout.size(), 0.0);
  for (size_t i = 0; i < layout.size(); ++i) {
    const Parameter* p = layout[i].local;
    if (!p || p->buffer || !p->trainable || !p->grad.defined()) continue;
    // Each tensor counts once: a replicated one on rank 0, an expert on its rank of the first
    // expert-parallel group (every group holds the same experts with the same gradients).
    if (model.expert_comm() && model.expert_comm()->rank() >= (p->expert_shard ? model.expert_parallel() : 1)) continue;
    const float* g = p->grad.f32();
    double s = 0;
    for (int64_t k = 0; k < p->grad.numel(); ++k) s += double(g[k]) * g[k];
    squares[i] = s;
  }
  if (model.expert_comm()) model.expert_comm()->all_reduce_sum(squares.data(), squares.size());
  double sum = 0;
  for (double s : squares) sum += s;
  return std::sqrt(sum);
}

void all_reduce_expert_load(NemotronH& model, Communicator& comm) {
  if (comm.size() == 1) return;
  auto load = model.expert_load();
  std::vector<int64_t> flat;
  for (const auto& layer : load) flat.insert(flat.end(), layer.begin(), layer.end());
  if (flat.empty()) return;
  comm.all_reduce_sum(flat.data(), flat.size());
  size_t at = 0;
  for (auto& layer : load)
    for (auto& c : layer) c = flat[at++];
  model.set_expert_load(load);
}

}  // namespace nemokit::rt
