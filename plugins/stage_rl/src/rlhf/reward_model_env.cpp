#include "rlhf/reward_model_env.hpp"

#include <cstdio>

namespace nemokit::rl {

Reward RewardModelEnvironment::score(const nlohmann::json& task, const std::string& response) {
  std::vector<int32_t> ids = seq_of_(task, response);  // throws invalid_argument for an unreadable prompt
  double r = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    r = rm_->forward({ids}, false)[0];
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "reward model score %.4f", r);
  return {r, buf};
}

}  // namespace nemokit::rl
