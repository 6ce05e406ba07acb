#pragma once
// `nemokit eval FAMILY` / `nemokit run FAMILY eval`: every model of model.checkpoints through
// every suite the config has (perplexity, tasks, chats), one model loaded at a time. The results
// go to JOB/eval.json and stdout as a table with one column per model.

#include "results.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace nemokit::eval {

struct EvalRun {
  std::vector<ModelResult> models;
  std::filesystem::path results_file;  // JOB/eval.json
};

// `info`: one line per model and suite (what was measured, how long it took). Throws
// std::invalid_argument naming the key or path for a bad config, a missing checkpoint or data,
// or a tokenizer that does not match the data.
EvalRun run_eval(const nlohmann::json& config, const std::string& family, const std::filesystem::path& job_dir,
                 const std::function<void(const std::string&)>& info);

}  // namespace nemokit::eval
