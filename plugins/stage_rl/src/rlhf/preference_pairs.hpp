#pragma once
// Preference pairs for the reward model, built from the RL tasks themselves: the prompt a
// policy sees, the task's right answer as "chosen" and a wrong answer as "rejected", written
// the way the task asks to be answered (a letter, a number, a word), so the reward model
// learns to score exactly the responses GRPO will show it.
//   multiple_choice: the expected letter vs each other letter of "letters"/"choices"
//   arithmetic:      the expected number vs the number off by 1, 2 or 10 (a near miss)
//   unscramble:      the expected word vs the scrambled "letters" (not a word) and a reversal
// Other environments give no pairs. Every pair is checked by the task's own environment when
// a checker is given: chosen must score above rejected, else the pair is dropped.

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

namespace nemokit::rl {

struct PreferencePair {
  const nlohmann::json* task = nullptr;  // the prompt's record (outlives the pair)
  std::string chosen, rejected;
  std::string kind;                      // the task's "task" kind, else its environment
};

// Returns the reward of a response to a task (the environment set's score).
using PairChecker = std::function<double(const nlohmann::json& task, const std::string& response)>;

// Up to `per_task` pairs per task (which wrong answers: a hash of the record, so fixed).
// Throws std::invalid_argument naming `where` and the key for a record it cannot read.
std::vector<PreferencePair> preference_pairs(const std::vector<nlohmann::json>& tasks, int per_task,
                                             const PairChecker& check, const std::string& where);

}  // namespace nemokit::rl
