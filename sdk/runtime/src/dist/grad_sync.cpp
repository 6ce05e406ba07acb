#include "nemokit/runtime/grad_sync.hpp"

#include <algorithm>

namespace nemokit::rt {

GradientSum::GradientSum(const std::vector<Parameter*>& params) {
  size_t n = 0;
  for (Parameter* p : params)
    if (!p->buffer && p->trainable && p->grad.defined()) {
      params_.push_back(p);
      n += size_t(p->grad.numel());
    }
  sum_.assign(n, 0.0);
}

void GradientSum::add_and_clear() {
  size_t at = 0;
  for (Parameter* p : params_) {
    float* g = p->grad.f32();
    const size_t n = size_t(p->grad.numel());
    double* s = sum_.data() + at;
    for (size_t i = 0; i < n; ++i) s[i] += double(g[i]);
    std::fill(g, g + n, 0.0f);
    at += n;
  }
}

void GradientSum::all_reduce(Communicator& comm, size_t bucket_bytes) {
  if (comm.size() == 1) return;
  const size_t bucket = std::max<size_t>(1, bucket_bytes / sizeof(double));
  for (size_t at = 0; at < sum_.size(); at += bucket) comm.all_reduce_sum(sum_.data() + at, std::min(bucket, sum_.size() - at));
}

void GradientSum::store() const {
  size_t at = 0;
  for (Parameter* p : params_) {
    float* g = p->grad.f32();
    const size_t n = size_t(p->grad.numel());
    for (size_t i = 0; i < n; ++i) g[i] = float(sum_[at + i]);
    at += n;
  }
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
