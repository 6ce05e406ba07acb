#pragma once
// Which model a fine-tuning run starts from: model.init_from, one of
//   - a model folder (config.json + safetensors, e.g. a step_NNNNNNN checkpoint or an imported
//     Hugging Face model); what an artifact reference (NAME:latest, NAME:vN) has become by the
//     time the stage runs, and what `nemokit pipe` hands each stage from the one before,
//   - a checkpoint folder with a `latest` file (a pretraining run's checkpoint.dir),
//   - "stage:FAMILY/STAGE[/SUBSTAGE]": the newest checkpoint of the last completed job of that
//     stage among the job folders beside this run's.
// The tokenizer is the model folder's tokenizer.json, else the one in the folder above (where
// training runs keep it, beside their step folders).

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace nemokit::sft {

struct InitModel {
  std::filesystem::path dir;        // holds config.json and the weights
  std::filesystem::path tokenizer;  // tokenizer.json
  std::string origin;               // how it was found, for the log
};

// Throws std::invalid_argument naming model.init_from and what is missing,
// or a key of [model] other than init_from, vision and audio.
InitModel resolve_init_model(const nlohmann::json& config, const std::filesystem::path& job_dir);

// One model reference as init_from takes it (a model folder, a checkpoint folder, or
// "stage:FAMILY/STAGE[/SUBSTAGE]"), with its tokenizer; errors name `key` (the eval stage's
// model.checkpoints[i] use it too). `job_dir`: the job reading it (stage: refs look beside it).
InitModel resolve_model(const std::string& ref, const std::string& key, const std::filesystem::path& job_dir);

// The tokenizer.json of a model folder, else of the folder above it (where training runs keep
// it, beside their step folders). Throws std::invalid_argument naming the folder.
std::filesystem::path tokenizer_of(const std::filesystem::path& model_dir);

// The newest complete checkpoint of a finished job folder (its config's checkpoint.dir, else
// JOB/checkpoints).
std::filesystem::path checkpoint_of_job(const std::filesystem::path& job);

}  // namespace nemokit::sft
