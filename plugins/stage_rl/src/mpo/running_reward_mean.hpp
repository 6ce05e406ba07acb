#pragma once
// BCO's reward shift delta: a running mean of the batches' mean rewards, as TRL's RunningMoments
// keeps it for loss_type "bco_pair". Each batch adds one observation, its mean of the 2B rewards
// beta*D_c and beta*D_r (TRL feeds RunningMoments that one detached scalar), so delta is the mean
// of the batch means, the mean of all rewards seen when every batch has the same size:
//   mean += (x - mean) / count,   count += 1   (count counted before the division).
// The state travels in checkpoints as JSON so a resumed run continues with the same delta.

#include <nlohmann/json.hpp>

#include <cstdint>

namespace nemokit::rl {

class RunningRewardMean {
 public:
  double mean() const { return mean_; }      // 0 before the first batch
  int64_t count() const { return count_; }   // batches seen
  void update(double batch_mean_reward);     // throws std::invalid_argument on a non-finite value

  nlohmann::json to_json() const;  // {"mean": m, "count": n}
  // Throws std::invalid_argument naming what is wrong with a malformed state.
  static RunningRewardMean from_json(const nlohmann::json& state);

 private:
  double mean_ = 0;
  int64_t count_ = 0;
};

}  // namespace nemokit::rl
