#include "nemokit/runtime/generate.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "nemokit/runtime/comm.hpp"
#include "nemokit/runtime/parallel.hpp"

namespace nemokit::rt {

int32_t sample_token(const float* logits, int64_t V, const SamplingOptions& o, Rng& rng) {
  if (o.temperature <= 0.0f || o.top_k == 1) return int32_t(std::max_element(logits, logits + V) - logits);
  // Highest logits first; ties keep the lower id first so the draw is reproducible. Only the
  // part of this ranking the draw can reach is sorted: the top_k set is selected first, and
  // under top_p the ranking is sorted chunk by chunk until the nucleus is complete (a trained
  // model's nucleus is a few dozen of thousands of tokens; sorting all of them per sequence
  // and step was most of a rollout's time).
  struct Entry {
    float logit;
    int32_t id;
  };
  auto before = [](const Entry& a, const Entry& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); };
  thread_local std::vector<Entry> order;
  thread_local std::vector<double> p;  // in ranking order once ranked
  order.resize(V);
  p.resize(V);
  for (int64_t i = 0; i < V; ++i) order[i] = {logits[i], int32_t(i)};
  int64_t keep = (o.top_k > 0 && o.top_k < V) ? o.top_k : V;
  if (keep < V) std::nth_element(order.begin(), order.begin() + keep, order.end(), before);
  const double mx = *std::max_element(logits, logits + V);
  auto weight = [&](const Entry& e) { return std::exp((e.logit - mx) / o.temperature); };
  double sum = 0;
  if (o.top_p < 1.0f) {
    for (int64_t i = 0; i < keep; ++i) sum += weight(order[i]);
    const double target = o.top_p * sum;
    double cum = 0;
    int64_t n = 0, sorted = 0, chunk = 64;
    while (n < keep && cum < target) {
      if (n == sorted) {  // rank the next chunk: partition it off the rest, then sort it
        const int64_t end = std::min(keep, sorted + chunk);
        if (end < keep) std::nth_element(order.begin() + sorted, order.begin() + end, order.begin() + keep, before);
        std::sort(order.begin() + sorted, order.begin() + end, before);
        sorted = end, chunk *= 4;
      }
      cum += (p[n] = weight(order[n]));
      ++n;
    }
    keep = std::max<int64_t>(1, n);
    sum = cum;
  } else {
    std::sort(order.begin(), order.begin() + keep, before);
    for (int64_t i = 0; i < keep; ++i) sum += (p[i] = weight(order[i]));
  }
  double u = rng.uniform_double() * sum, acc = 0;
  for (int64_t i = 0; i < keep; ++i) {
    acc += p[i];
    if (u < acc) return order[i].id;
  }
  return order[keep - 1].id;
}

std::vector<std::vector<int32_t>> generate(NemotronH& model, const std::vector<std::vector<int32_t>>& prompts,
                                           const SamplingOptions& o) {
  return generate(model, prompts, o, {});
}

std::vector<std::vector<int32_t>> generate(NemotronH& model, const std::vector<std::vector<int32_t>>& prompts,
                                           const SamplingOptions& o, const std::vector<PromptEmbeddings>& embeddings) {
  const int64_t V = model.config().vocab_size, d = model.config().hidden_size;
  const size_t n = prompts.size();
  // embedding row of each prompt position (null: the token's own)
  std::vector<std::vector<const float*>> at(embeddings.empty() ? 0 : n);
  if (!embeddings.empty()) {
    if (embeddings.size() != n) throw std::invalid_argument("generate: one PromptEmbeddings per prompt required");
    for (size_t i = 0; i < n; ++i) {
      const PromptEmbeddings& e = embeddings[i];
      if (e.values.size() != e.positions.size() * size_t(d))
        throw std::invalid_argument("generate: prompt " + std::to_string(i) + ": embeddings are not [positions, hidden]");
      at[i].assign(prompts[i].size(), nullptr);
      for (size_t j = 0; j < e.positions.size(); ++j) {
        if (e.positions[j] < 0 || e.positions[j] >= int64_t(prompts[i].size()))
          throw std::invalid_argument("generate: prompt " + std::to_string(i) + ": embedding position " +
                                      std::to_string(e.positions[j]) + " is outside the prompt");
        at[i][e.positions[j]] = e.values.data() + j * d;
      }
    }
  }
  if (!o.streams.empty() && o.streams.size() != n)
    throw std::invalid_argument("generate: " + std::to_string(o.streams.size()) + " streams for " + std::to_string(n) + " prompts");
  std::vector<SequenceCache> caches;
  std::vector<Rng> rngs;
  for (size_t i = 0; i < n; ++i) {
    if (prompts[i].empty()) throw std::invalid_argument("generate: prompt " + std::to_string(i) + " is empty");
    caches.push_back(model.new_cache());
    rngs.emplace_back(o.seed * 0x9e3779b97f4a7c15ull + (o.streams.empty() ? i : o.streams[i]));
  }
  std::vector<std::vector<int32_t>> out(n);
  std::vector<int32_t> next(n, -1);  // token to feed next, once the prompt is consumed
  std::vector<bool> done(n, o.max_new_tokens <= 0);
  std::vector<float> logits;
  std::vector<int32_t> tokens, drawn;
  std::vector<const float*> embeds;
  std::vector<SequenceCache*> active;
  std::vector<size_t> which, sampled;
  std::vector<int64_t> want;  // rows of this step that draw a token (past their prompt)
  // Prompts are fed one position per step together with the sequences already generating,
  // so ragged prompts share every step.
  for (int64_t t = 0;; ++t) {
    tokens.clear(), active.clear(), which.clear(), want.clear(), sampled.clear(), embeds.clear();
    for (size_t i = 0; i < n; ++i) {
      if (done[i]) continue;
      int64_t len = int64_t(prompts[i].size());
      if (t + 1 >= len) want.push_back(int64_t(which.size())), sampled.push_back(i);
      tokens.push_back(t < len ? prompts[i][t] : next[i]);
      if (!at.empty()) embeds.push_back(t < len ? at[i][t] : nullptr);
      active.push_back(&caches[i]);
      which.push_back(i);
    }
    // Experts split over ranks: every decoded position exchanges tokens with the other ranks,
    // which generate other sequences of other lengths; they step together until all are done,
    // a rank with nothing left stepping with no rows.
    if (Communicator* ranks = model.expert_comm()) {
      int64_t running = active.empty() ? 0 : 1;
      ranks->all_reduce_sum(&running, 1);
      if (running == 0) break;
    } else if (active.empty()) {
      break;
    }
    model.decode_step(tokens, active, logits, want, embeds);
    // Each sequence draws from its own generator, so the draws may run in any order.
    drawn.resize(sampled.size());
    parallel_for(int64_t(sampled.size()), [&](int64_t a, int64_t b) {
      for (int64_t j = a; j < b; ++j) drawn[j] = sample_token(logits.data() + j * V, V, o, rngs[sampled[j]]);
    });
    for (size_t j = 0; j < sampled.size(); ++j) {
      const size_t i = sampled[j];
      const int32_t tok = drawn[j];
      out[i].push_back(tok);
      next[i] = tok;
      bool stop = std::find(o.stop_tokens.begin(), o.stop_tokens.end(), tok) != o.stop_tokens.end();
      if (stop || int64_t(out[i].size()) >= o.max_new_tokens) done[i] = true;
    }
  }
  return out;
}

}  // namespace nemokit::rt
