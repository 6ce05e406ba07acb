// Expert parallel checkpoints: rank 0 writes every expert, so the other ranks of its group (the
// first ep ranks, which hold every expert once) send it theirs (weights and AdamW moments) before
// a save; the other groups hold copies and send nothing. The layout (parameter_layout) is the
// same on every rank, so a sender lists its experts in layout order and rank 0 reads each
// source's bytes back by walking the slots that source owns, in the same order.
#include <cstring>
#include <map>
#include <stdexcept>

#include "nemokit/runtime/checkpoint.hpp"
#include "nemokit/runtime/comm.hpp"

namespace nemokit::rt {

namespace {

void append(std::string& out, const void* data, size_t bytes) {
  const char* p = static_cast<const char*>(data);
  out.insert(out.end(), p, p + bytes);
}

}  // namespace

RemoteExperts gather_remote_experts(NemotronH& model, const AdamW& optimizer) {
  RemoteExperts out;
  Communicator* comm = model.expert_comm();
  if (!comm) return out;
  const int rank = comm->rank();
  const auto& layout = model.parameter_layout();

  // Each record: one byte (1 = moments follow), the weight's floats, then exp_avg and exp_avg_sq.
  std::string payload;
  if (rank != 0 && rank < model.expert_parallel()) {
    std::map<std::string, Tensor> moments;
    for (auto& [name, t] : optimizer.state_tensors()) moments.emplace(name, t);
    for (const ParamSlot& slot : layout) {
      if (!slot.local || !slot.local->expert_shard) continue;
      const Tensor& w = slot.local->value;
      auto m = moments.find(slot.name + ".exp_avg"), v = moments.find(slot.name + ".exp_avg_sq");
      const char has = m != moments.end() && v != moments.end();
      append(payload, &has, 1);
      append(payload, w.raw(), w.nbytes());
      if (has) append(payload, m->second.raw(), m->second.nbytes()), append(payload, v->second.raw(), v->second.nbytes());
    }
  }

  const std::vector<std::string> received = gather_to_rank0(*comm, payload);
  if (rank != 0) return out;

  for (int s = 1; s < model.expert_parallel(); ++s) {
    const char* at = received[size_t(s)].data();
    const char* end = at + received[size_t(s)].size();
    for (const ParamSlot& slot : layout) {
      if (slot.local || slot.owner != s) continue;
      auto take = [&](const std::string& name) {
        Tensor t = Tensor::empty(slot.shape);
        if (at + t.nbytes() > end)
          throw std::runtime_error("expert gather: rank " + std::to_string(s) + " sent too few bytes for " + name);
        std::memcpy(t.raw(), at, t.nbytes());
        at += t.nbytes();
        return t;
      };
      if (at >= end) throw std::runtime_error("expert gather: rank " + std::to_string(s) + " sent nothing for " + slot.name);
      const bool has = *at++ != 0;
      out.weights.emplace_back(slot.name, take(slot.name));
      if (has) {
        out.moments.emplace_back(slot.name + ".exp_avg", take(slot.name + ".exp_avg"));
        out.moments.emplace_back(slot.name + ".exp_avg_sq", take(slot.name + ".exp_avg_sq"));
      }
    }
    if (at != end)
      throw std::runtime_error("expert gather: rank " + std::to_string(s) + " sent more bytes than its experts hold");
  }
  return out;
}

}  // namespace nemokit::rt
