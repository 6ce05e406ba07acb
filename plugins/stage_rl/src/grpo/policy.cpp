#include "grpo/policy.hpp"

#include "omni/media_batch.hpp"

#include "nemokit/runtime/trainer.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <stdexcept>

namespace nemokit::rl {

rt::Batch make_sample_batch(const std::vector<const Sample*>& samples) {
  rt::Batch b;
  b.batch = int64_t(samples.size());
  for (const Sample* s : samples) {
    if (s->prompt.empty()) throw std::invalid_argument("make_sample_batch: a sample has no prompt");
    b.seq = std::max<int64_t>(b.seq, int64_t(s->prompt.size() + s->response.size()) - 1);
  }
  const size_t n = size_t(b.batch * b.seq);
  b.input_ids.assign(n, 0);
  b.targets.assign(n, -1);
  b.pad.assign(n, 1);
  for (size_t r = 0; r < samples.size(); ++r) {
    const Sample& s = *samples[r];
    const size_t P = s.prompt.size(), len = P + s.response.size() - 1;
    int32_t* in = &b.input_ids[r * b.seq];
    for (size_t t = 0; t < len; ++t) {
      in[t] = t < P ? s.prompt[t] : s.response[t - P];
      b.pad[r * b.seq + t] = 0;
    }
    // position P-1+k predicts response token k
    for (size_t k = 0; k < s.response.size(); ++k)
      if (trained_at(s, k)) b.targets[r * b.seq + P - 1 + k] = s.response[k];
    sft::append_media(b.media, s.media, int64_t(r) * b.seq);
  }
  return b;
}

int64_t trained_tokens(const Sample& s) {
  int64_t n = 0;
  for (size_t k = 0; k < s.response.size(); ++k) n += trained_at(s, k);
  return n;
}

namespace {

// Entropy of softmax(logits[V]) in nats.
double entropy_of(const float* logits, int64_t V) {
  float mx = *std::max_element(logits, logits + V);
  double z = 0, e = 0;
  for (int64_t v = 0; v < V; ++v) {
    double p = std::exp(double(logits[v] - mx));
    z += p;
    e += p * double(logits[v] - mx);
  }
  return std::log(z) - e / z;
}

template <class F>
void for_micro_batches(const std::vector<const Sample*>& samples, int64_t micro, F&& f) {
  for (size_t b = 0; b < samples.size(); b += size_t(std::max<int64_t>(1, micro))) {
    std::vector<const Sample*> part(samples.begin() + b, samples.begin() + std::min(samples.size(), b + size_t(micro)));
    f(part, b);
  }
}

}  // namespace

TokenScores score_samples(rt::NemotronH& model, const std::vector<const Sample*>& samples, int64_t micro, bool entropy,
                          rt::DeviceScorer* device) {
  TokenScores out;
  out.lp.resize(samples.size());
  if (entropy) out.entropy.resize(samples.size());
  const int64_t V = model.config().vocab_size;
  for_micro_batches(samples, micro, [&](const std::vector<const Sample*>& part, size_t first) {
    rt::Batch b = make_sample_batch(part);
    // The GPU hands back the losses and entropies per position; the CPU keeps its logits.
    std::vector<float> device_ce, device_entropy;
    const std::vector<float>* ce = &device_ce;
    const float* logits = nullptr;
    if (device) {
      device_ce = device->token_losses(b, entropy ? &device_entropy : nullptr);
    } else {
      model.forward_backward(b, rt::LossOptions{}, /*backward=*/false);
      ce = &model.token_losses();
      logits = model.logits().f32();
    }
    for (size_t r = 0; r < part.size(); ++r) {
      const Sample& s = *part[r];
      auto& lp = out.lp[first + r];
      lp.resize(s.response.size());
      for (size_t k = 0; k < s.response.size(); ++k) {
        const int64_t pos = int64_t(r) * b.seq + int64_t(s.prompt.size()) - 1 + int64_t(k);
        lp[k] = -(*ce)[size_t(pos)];
        if (entropy)
          out.entropy[first + r].push_back(device ? device_entropy[size_t(pos)] : float(entropy_of(logits + pos * V, V)));
      }
    }
  });
  return out;
}

TokenScores score_as_updates(rt::NemotronH& model, const std::vector<const Sample*>& samples, int64_t per_update, int64_t micro,
                             bool entropy, rt::DeviceScorer* device) {
  TokenScores out;
  const size_t chunk = size_t(std::max<int64_t>(1, per_update));
  for (size_t b = 0; b < samples.size(); b += chunk) {
    std::vector<const Sample*> part(samples.begin() + long(b), samples.begin() + long(std::min(samples.size(), b + chunk)));
    TokenScores s = score_samples(model, part, micro, entropy, device);
    for (auto& lp : s.lp) out.lp.push_back(std::move(lp));
    for (auto& e : s.entropy) out.entropy.push_back(std::move(e));
  }
  return out;
}

namespace {

// The normalization's factor for each of this rank's samples: computed from the response lengths
// of the whole batch, every rank's block in rank order.
std::vector<double> batch_scales(const std::vector<const Sample*>& samples, const UpdateOptions& o) {
  const int ranks = o.comm ? o.comm->size() : 1, rank = o.comm ? o.comm->rank() : 0;
  std::vector<int64_t> lengths(samples.size() * size_t(ranks), 0);
  for (size_t i = 0; i < samples.size(); ++i) lengths[size_t(rank) * samples.size() + i] = trained_tokens(*samples[i]);
  if (ranks > 1) o.comm->all_reduce_sum(lengths.data(), lengths.size());
  std::vector<double> scale = sequence_scales(lengths, o.normalization);
  return std::vector<double>(scale.begin() + long(size_t(rank) * samples.size()),
                             scale.begin() + long(size_t(rank + 1) * samples.size()));
}

}  // namespace

UpdateStats accumulate_gradient(rt::NemotronH& model, const std::vector<const Sample*>& samples, const UpdateOptions& o,
                                bool fresh, rt::GradientSum* sum) {
  UpdateStats st;
  if (o.device) o.device->zero_grad();
  else model.zero_grad();
  // Expert parallel: each source rank's share of an expert's gradient goes into the sums as it is
  // made, as one rank running the micro-batch adds it (rt::train_step does the same).
  if (sum && model.expert_comm()) model.set_gradient_flush([sum](const std::vector<rt::Parameter*>& ps) { sum->add_and_clear(ps); });
  struct Unset {
    rt::NemotronH& m;
    ~Unset() { m.set_gradient_flush(nullptr); }
  } unset{model};
  const std::vector<double> scale = batch_scales(samples, o);
  int64_t clipped = 0;
  for_micro_batches(samples, o.micro_batch_size, [&](const std::vector<const Sample*>& part, size_t first) {
    std::vector<std::vector<float>> current;
    if (!fresh) current = score_samples(model, part, int64_t(part.size()), false, o.device).lp;
    rt::Batch b = make_sample_batch(part);
    b.loss_weights.assign(b.input_ids.size(), 0.0f);
    for (size_t r = 0; r < part.size(); ++r) {
      const Sample& s = *part[r];
      for (size_t k = 0; k < s.response.size(); ++k) {
        if (!trained_at(s, k)) continue;  // weight 0: not the policy's token
        const double lp = fresh ? s.old_lp[k] : current[r][k];
        const double ref = s.ref_lp.empty() ? kNoReference : s.ref_lp[k];
        const TokenTerm t = token_term(lp, s.old_lp[k], ref, s.advantage, o.surrogate);
        const double sc = scale[first + r];
        b.loss_weights[r * b.seq + s.prompt.size() - 1 + k] = float(sc * t.grad_weight);
        st.loss += sc * t.loss;
        st.kl_ref += t.kl;
        const double d = s.old_lp[k] - lp;
        st.kl_old += std::exp(d) - d - 1.0;
        st.mean_ratio += t.ratio;
        clipped += t.clipped;
        ++st.tokens;
      }
    }
    if (o.device) {
      o.device->accumulate(b, rt::LossOptions{});
    } else {
      model.forward_backward(b, rt::LossOptions{}, /*backward=*/true);
      if (sum) sum->add_and_clear();
    }
  });
  if (o.comm && o.comm->size() > 1) {
    double totals[6] = {st.loss, st.kl_ref, st.kl_old, st.mean_ratio, double(clipped), double(st.tokens)};
    o.comm->all_reduce_sum(totals, 6);
    st.loss = totals[0], st.kl_ref = totals[1], st.kl_old = totals[2], st.mean_ratio = totals[3];
    clipped = int64_t(totals[4]), st.tokens = int64_t(totals[5]);
  }
  if (st.tokens) {
    st.clip_fraction = double(clipped) / double(st.tokens);
    st.kl_ref /= double(st.tokens);
    st.kl_old /= double(st.tokens);
    st.mean_ratio /= double(st.tokens);
  }
  return st;
}

UpdateStats policy_update(rt::NemotronH& model, rt::AdamW& optimizer, float lr, const std::vector<const Sample*>& samples,
                          const UpdateOptions& o, bool fresh) {
  if (o.device) {  // the sums over ranks, the clipping and the step happen on the device
    UpdateStats st = accumulate_gradient(model, samples, o, fresh);
    st.grad_norm = o.device->apply_gradients(lr);
    return st;
  }
  model.zero_grad();  // every gradient allocated before the sum takes their layout
  std::optional<rt::GradientSum> sum;
  if (o.comm) sum.emplace(model.parameters());
  UpdateStats st = accumulate_gradient(model, samples, o, fresh, sum ? &*sum : nullptr);
  st.grad_norm = rt::apply_gradients(model, optimizer, lr, sum ? &*sum : nullptr, train_options(o));
  return st;
}

rt::TrainOptions train_options(const UpdateOptions& o) {
  rt::TrainOptions to;
  to.max_grad_norm = o.max_grad_norm;
  to.expert_bias_rate = o.expert_bias_rate;
  to.comm = o.comm;
  return to;
}

}  // namespace nemokit::rl
