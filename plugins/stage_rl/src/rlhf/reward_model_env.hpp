#pragma once
// The `reward_model` environment: a response's reward is the reward model's scalar on the
// task's prompt plus the response (reward_sequence), unbounded (GRPO's group normalization
// makes its scale and offset irrelevant). One model, so scoring is serialized.

#include "env/environment.hpp"
#include "rlhf/reward_model_training.hpp"

#include <memory>
#include <mutex>

namespace nemokit::rl {

class RewardModelEnvironment : public Environment {
 public:
  RewardModelEnvironment(std::shared_ptr<RewardModel> rm, SequenceOf seq_of)
      : rm_(std::move(rm)), seq_of_(std::move(seq_of)) {}
  const std::string& name() const override { return name_; }
  Reward score(const nlohmann::json& task, const std::string& response) override;

 private:
  const std::string name_ = "reward_model";
  std::shared_ptr<RewardModel> rm_;
  SequenceOf seq_of_;
  std::mutex mu_;
};

}  // namespace nemokit::rl
