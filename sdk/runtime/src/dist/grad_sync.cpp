#include "nemokit/runtime/grad_sync.hpp"

#include <algorithm>
#include <cstring>

namespace nemokit::rt {
namespace {
bool synced(const Parameter* p) { return !p->buffer && p->trainable && p->grad.defined(); }
}  // namespace

void all_reduce_gradients(const std::vector<Parameter*>& params, Communicator& comm, size_t bucket_bytes) {
  if (comm.size() == 1) return;
  const size_t bucket_floats = std::max<size_t>(1, bucket_bytes / sizeof(float));
  std::vector<float> bucket;
  std::vector<Parameter*> members;
  size_t filled = 0;
  auto flush = [&] {
    if (members.empty()) return;
    comm.all_reduce_sum(bucket.data(), filled);
    size_t at = 0;
    for (Parameter* p : members) {
      size_t n = size_t(p->grad.numel());
      std::memcpy(p->grad.f32(), bucket.data() + at, n * sizeof(float));
      at += n;
    }
    members.clear();
    filled = 0;
  };
  for (Parameter* p : params) {
    if (!synced(p)) continue;
    size_t n = size_t(p->grad.numel());
    if (n >= bucket_floats) {  // no copy for a tensor that fills a bucket by itself
      comm.all_reduce_sum(p->grad.f32(), n);
      continue;
    }
    if (filled + n > bucket_floats) flush();
    if (bucket.size() < bucket_floats) bucket.resize(bucket_floats);
    std::memcpy(bucket.data() + filled, p->grad.f32(), n * sizeof(float));
    filled += n;
    members.push_back(p);
  }
  flush();
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
