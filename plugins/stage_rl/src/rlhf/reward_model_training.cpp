#include "rlhf/reward_model_training.hpp"

#include "grpo/rollout.hpp"
#include "rlhf/bradley_terry.hpp"

#include "nemokit/runtime/rng.hpp"

#include <algorithm>
#include <map>
#include <numeric>

namespace nemokit::rl {
using nlohmann::json;

SequenceOf reward_sequence(const rt::Tokenizer& tok, bool enable_thinking) {
  const std::optional<int32_t> end = tok.token_to_id("<|im_end|>");
  return [&tok, enable_thinking, end](const json& task, const std::string& response) {
    std::vector<int32_t> ids = render_prompt(task, tok, enable_thinking, "reward model prompt");
    for (int32_t t : tok.encode(response)) ids.push_back(t);
    if (end) ids.push_back(*end);
    return ids;
  };
}

json PairAccuracy::to_json() const {
  return {{"accuracy", accuracy}, {"loss", loss}, {"margin", margin}, {"pairs", pairs}, {"by_kind", by_kind}};
}

namespace {

// Rows 2j and 2j+1: pair j's chosen and rejected sequences.
std::vector<std::vector<int32_t>> rows_of(const std::vector<const PreferencePair*>& pairs, const SequenceOf& seq_of) {
  std::vector<std::vector<int32_t>> rows;
  for (const PreferencePair* p : pairs) {
    rows.push_back(seq_of(*p->task, p->chosen));
    rows.push_back(seq_of(*p->task, p->rejected));
  }
  return rows;
}

}  // namespace

PairAccuracy pair_accuracy(RewardModel& rm, const std::vector<PreferencePair>& pairs, const SequenceOf& seq_of,
                           int64_t micro_pairs) {
  PairAccuracy a;
  std::map<std::string, std::pair<double, int64_t>> kinds;
  for (size_t b = 0; b < pairs.size(); b += size_t(micro_pairs)) {
    std::vector<const PreferencePair*> part;
    for (size_t j = b; j < std::min(pairs.size(), b + size_t(micro_pairs)); ++j) part.push_back(&pairs[j]);
    const std::vector<double> r = rm.forward(rows_of(part, seq_of), false);
    for (size_t j = 0; j < part.size(); ++j) {
      const double rc = r[2 * j], rr = r[2 * j + 1];
      const double win = rc > rr ? 1.0 : rc == rr ? 0.5 : 0.0;
      a.accuracy += win;
      a.loss += bradley_terry(rc, rr).loss;
      a.margin += rc - rr;
      kinds[part[j]->kind].first += win;
      kinds[part[j]->kind].second += 1;
    }
  }
  a.pairs = int64_t(pairs.size());
  if (a.pairs) a.accuracy /= double(a.pairs), a.loss /= double(a.pairs), a.margin /= double(a.pairs);
  for (const auto& [k, v] : kinds) a.by_kind[k] = v.first / double(v.second);
  return a;
}

PairAccuracy train_reward_model(RewardModel& rm, const std::vector<PreferencePair>& train,
                                const std::vector<PreferencePair>& held_out, const SequenceOf& seq_of,
                                const RewardTrainOptions& o,
                                const std::function<void(int64_t, double, const PairAccuracy*)>& report) {
  if (train.empty()) throw std::invalid_argument("reward_model: the train split gives no preference pairs");
  rt::AdamWConfig ac;
  ac.weight_decay = float(o.weight_decay);
  std::vector<rt::Parameter*> params = rm.parameters();
  rt::AdamW adam(params, ac);
  rt::Rng rng(o.seed);
  std::vector<size_t> order(train.size());
  size_t next = order.size();
  PairAccuracy last;
  for (int64_t step = 0; step < o.steps; ++step) {
    std::vector<const PreferencePair*> batch;
    while (int64_t(batch.size()) < std::min<int64_t>(o.batch_pairs, int64_t(train.size()))) {
      if (next == order.size()) {  // a new epoch: a fresh seeded permutation
        std::iota(order.begin(), order.end(), size_t(0));
        for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.next_u64() % i]);
        next = 0;
      }
      batch.push_back(&train[order[next++]]);
    }
    for (rt::Parameter* p : params)
      if (p->grad.defined()) p->grad.zero();
    const std::vector<double> r = rm.forward(rows_of(batch, seq_of), true);
    std::vector<double> grad(r.size());
    double loss = 0;
    const double n = double(batch.size());
    for (size_t j = 0; j < batch.size(); ++j) {
      const PairLoss pl = bradley_terry(r[2 * j], r[2 * j + 1]);
      loss += pl.loss / n;
      grad[2 * j] = pl.d_chosen / n;  // the mean over the batch's pairs
      grad[2 * j + 1] = pl.d_rejected / n;
    }
    rm.add_gradient(grad);
    rt::clip_grad_norm(params, o.grad_clip);
    adam.step(float(o.lr));
    const bool eval = (o.eval_interval > 0 && (step + 1) % o.eval_interval == 0) || step + 1 == o.steps;
    if (eval) last = pair_accuracy(rm, held_out, seq_of, o.batch_pairs);
    report(step + 1, loss, eval ? &last : nullptr);
  }
  return last;
}

}  // namespace nemokit::rl
