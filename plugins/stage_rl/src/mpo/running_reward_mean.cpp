#include "mpo/running_reward_mean.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace nemokit::rl {

void RunningRewardMean::update(double batch_mean_reward) {
  // A NaN here would stick in delta for the rest of training; fail at the batch that made it.
  if (!std::isfinite(batch_mean_reward))
    throw std::invalid_argument("mpo running reward mean: the batch's mean reward is not finite (" +
                                std::to_string(batch_mean_reward) + ")");
  ++count_;
  mean_ += (batch_mean_reward - mean_) / double(count_);
}

nlohmann::json RunningRewardMean::to_json() const { return {{"mean", mean_}, {"count", count_}}; }

RunningRewardMean RunningRewardMean::from_json(const nlohmann::json& state) {
  const char* what = "mpo running reward mean: ";
  if (!state.is_object()) throw std::invalid_argument(std::string(what) + "the state must be an object");
  if (!state.contains("mean") || !state["mean"].is_number())
    throw std::invalid_argument(std::string(what) + "\"mean\" must be a number");
  if (!state.contains("count") || !state["count"].is_number_integer() || state["count"].get<int64_t>() < 0)
    throw std::invalid_argument(std::string(what) + "\"count\" must be a non-negative integer");
  RunningRewardMean r;
  r.mean_ = state["mean"].get<double>();
  r.count_ = state["count"].get<int64_t>();
  if (!std::isfinite(r.mean_)) throw std::invalid_argument(std::string(what) + "\"mean\" is not finite");
  return r;
}

}  // namespace nemokit::rl
