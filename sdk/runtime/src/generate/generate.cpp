#include "nemokit/runtime/generate.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace nemokit::rt {

int32_t sample_token(const float* logits, int64_t V, const SamplingOptions& o, Rng& rng) {
  if (o.temperature <= 0.0f || o.top_k == 1) return int32_t(std::max_element(logits, logits + V) - logits);
  std::vector<int32_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  // Highest logits first; ties keep the lower id first so the draw is reproducible.
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  int64_t keep = (o.top_k > 0 && o.top_k < V) ? o.top_k : V;
  std::vector<double> p(keep);
  const double mx = logits[order[0]];
  double sum = 0;
  for (int64_t i = 0; i < keep; ++i) sum += (p[i] = std::exp((logits[order[i]] - mx) / o.temperature));
  if (o.top_p < 1.0f) {
    double cum = 0;
    int64_t n = 0;
    while (n < keep && cum < o.top_p * sum) cum += p[n++];
    keep = std::max<int64_t>(1, n);
    sum = cum;
  }
  double u = rng.uniform_double() * sum, acc = 0;
  for (int64_t i = 0; i < keep; ++i) {
    acc += p[i];
    if (u < acc) return order[i];
  }
  return order[keep - 1];
}

std::vector<std::vector<int32_t>> generate(NemotronH& model, const std::vector<std::vector<int32_t>>& prompts,
                                           const SamplingOptions& o) {
  const int64_t V = model.config().vocab_size;
  const size_t n = prompts.size();
  std::vector<SequenceCache> caches;
  std::vector<Rng> rngs;
  for (size_t i = 0; i < n; ++i) {
    if (prompts[i].empty()) throw std::invalid_argument("generate: prompt " + std::to_string(i) + " is empty");
    caches.push_back(model.new_cache());
    rngs.emplace_back(o.seed * 0x9e3779b97f4a7c15ull + i);
  }
  std::vector<std::vector<int32_t>> out(n);
  std::vector<int32_t> next(n, -1);  // token to feed next, once the prompt is consumed
  std::vector<bool> done(n, o.max_new_tokens <= 0);
  std::vector<float> logits;
  // Prompts are fed one position per step together with the sequences already generating,
  // so ragged prompts share every step.
  for (int64_t t = 0;; ++t) {
    std::vector<int32_t> tokens;
    std::vector<SequenceCache*> active;
    std::vector<size_t> which;
    for (size_t i = 0; i < n; ++i) {
      if (done[i]) continue;
      int64_t len = int64_t(prompts[i].size());
      tokens.push_back(t < len ? prompts[i][t] : next[i]);
      active.push_back(&caches[i]);
      which.push_back(i);
    }
    if (active.empty()) break;
    model.decode_step(tokens, active, logits);
    for (size_t j = 0; j < which.size(); ++j) {
      size_t i = which[j];
      if (t + 1 < int64_t(prompts[i].size())) continue;  // still inside the prompt
      int32_t tok = sample_token(logits.data() + j * V, V, o, rngs[i]);
      out[i].push_back(tok);
      next[i] = tok;
      bool stop = std::find(o.stop_tokens.begin(), o.stop_tokens.end(), tok) != o.stop_tokens.end();
      if (stop || int64_t(out[i].size()) >= o.max_new_tokens) done[i] = true;
    }
  }
  return out;
}

}  // namespace nemokit::rt
