#pragma once
// `nemokit run <family> pretrain`: prepares the data when the config's data.output has none yet,
// builds the model from [model], and trains with [train] — gradient accumulation, the
// warmup-stable-decay schedule, validation every eval_interval steps, checkpoints every
// save_interval steps, at the end and on SIGTERM/SIGUSR1/SIGINT, exact resume from the newest
// checkpoint — writing metrics.jsonl into the job folder.

#include <nemokit/plugin.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>

namespace nemokit::pretrain {

// Returns 0 when max_steps are done, kExitStoppedResumable when a signal stopped it after a
// checkpoint; throws std::invalid_argument for a bad config (key named), std::runtime_error else.
int run_pretraining(const nlohmann::json& config, const std::filesystem::path& job_dir, const sdk::Host& host);

}  // namespace nemokit::pretrain
