#pragma once
// `nemokit run FAMILY sft`: resolves the model to start from, prepares the packed data when
// data.output has none yet, and fine-tunes it — full or LoRA — with answer-only loss over
// document-aware packs, validation loss and greedy-generation checks (before training and every
// eval_interval steps), checkpoints every save_interval steps, at the end and on
// SIGTERM/SIGUSR1/SIGINT, exact resume from the newest checkpoint, metrics.jsonl in the job
// folder.

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <string>

namespace nemokit::sft {

// Where the stage's lines go (the plugin host's log).
struct StageLog {
  std::function<void(const std::string&)> info, warn;
};

// Returns 0 when max_steps are done, rt::kExitStoppedResumable after a signal's checkpoint;
// throws std::invalid_argument for a bad config (key named), std::runtime_error else.
int run_sft(const nlohmann::json& config, const std::filesystem::path& job_dir, const StageLog& host);

// `nemokit data prep FAMILY sft`: returns the folder written.
std::filesystem::path prepare_sft_data(const nlohmann::json& config, const std::filesystem::path& job_dir,
                                       const StageLog& host);

}  // namespace nemokit::sft
