#pragma once
// Training the reward model on preference pairs with the Bradley-Terry loss, and its pair
// accuracy: the fraction of pairs whose chosen response scores above the rejected one (a tie
// counts half, so an untrained constant model sits at exactly 0.5).

#include "rlhf/preference_pairs.hpp"
#include "rlhf/reward_model.hpp"

#include "nemokit/runtime/tokenizer.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

namespace nemokit::rl {

// The token ids the reward model reads for a response to a task: the rendered prompt (the
// chat template with the generation prompt, as the policy saw it), the response's tokens and
// the end-of-turn token, whose position carries the score.
using SequenceOf = std::function<std::vector<int32_t>(const nlohmann::json& task, const std::string& response)>;
SequenceOf reward_sequence(const rt::Tokenizer& tok, bool enable_thinking);

struct RewardTrainOptions {
  int64_t steps = 200;
  int64_t batch_pairs = 16;      // pairs per optimizer step (2x rows)
  double lr = 1e-4;
  double weight_decay = 0.0;
  double grad_clip = 1.0;
  int64_t eval_interval = 50;    // steps between held-out accuracies (0: end only)
  uint64_t seed = 1234;
};

struct PairAccuracy {
  double accuracy = 0, loss = 0, margin = 0;  // margin: mean r_chosen - r_rejected
  int64_t pairs = 0;
  nlohmann::json by_kind = nlohmann::json::object();  // kind -> accuracy
  nlohmann::json to_json() const;
};

PairAccuracy pair_accuracy(RewardModel& rm, const std::vector<PreferencePair>& pairs, const SequenceOf& seq_of,
                           int64_t micro_pairs);

// Adam steps on batches drawn (seeded, without replacement per epoch) from `train`;
// `report(step, train_loss, held_out)` after each step, held_out set every eval_interval and
// at the end (null otherwise). Returns the held-out accuracy at the end.
PairAccuracy train_reward_model(RewardModel& rm, const std::vector<PreferencePair>& train,
                                const std::vector<PreferencePair>& held_out, const SequenceOf& seq_of,
                                const RewardTrainOptions& o,
                                const std::function<void(int64_t, double, const PairAccuracy*)>& report);

}  // namespace nemokit::rl
