#pragma once
// The RL environments' accuracy on held-out tasks: the task files the RL stage trains on, split
// by the same hash and seed as its data prep (so `use = ["test"]` is the test split it never saw),
// answered greedily and scored by the same environments (rl::evaluate_tasks, as its val reward).
// The environments' rewards are 1 for a right answer and 0 for a wrong one, so their mean is the
// accuracy. Tasks with images (omni3) go through the model's encoders; a model without encoders
// is measured on the text tasks alone.

#include "eval_options.hpp"
#include "results.hpp"

#include "env/environment.hpp"

#include "nemokit/runtime/model.hpp"
#include "nemokit/runtime/tokenizer.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <vector>

namespace nemokit::eval {

class TaskSuite {
 public:
  // Reads the tasks of the splits in use (errors name file:line) and checks that every
  // environment they name exists (errors list the known ones).
  TaskSuite(const TaskOptions& o, rl::EnvironmentSet& envs);
  size_t size() const { return tasks_.size(); }
  std::vector<Row> run(rt::NemotronH& model, const rt::Tokenizer& tok, const nlohmann::json& media) const;

 private:
  struct Task {
    nlohmann::json record;
    std::filesystem::path base;  // the folder its media paths are relative to
    std::string where;
    bool has_media = false;
  };
  TaskOptions o_;
  rl::EnvironmentSet& envs_;
  std::vector<Task> tasks_;
};

}  // namespace nemokit::eval
