#pragma once
// Which model a fine-tuning run starts from. In order:
//   1. NEMOKIT_INPUT_JOB (set by `nemokit pipe`): the newest checkpoint of the job before.
//   2. model.init_from:
//      - a model folder (config.json + safetensors, e.g. a step_NNNNNNN checkpoint or an
//        imported Hugging Face model),
//      - a checkpoint folder with a `latest` file (a pretraining run's checkpoint.dir),
//      - "stage:FAMILY/STAGE[/SUBSTAGE]": the newest checkpoint of the last completed job of that
//        stage among the job folders beside this run's.
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

// Throws std::invalid_argument naming model.init_from (or NEMOKIT_INPUT_JOB) and what is missing,
// or a key of [model] other than init_from, vision and audio.
InitModel resolve_init_model(const nlohmann::json& config, const std::filesystem::path& job_dir);

// The newest complete checkpoint of a finished job folder (its config's checkpoint.dir, else
// JOB/checkpoints).
std::filesystem::path checkpoint_of_job(const std::filesystem::path& job);

}  // namespace nemokit::sft
