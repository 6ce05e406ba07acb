#pragma once
// The [data] table of an SFT config (see plugins/stage_sft/README.md for every key).

#include "omni/media_options.hpp"
#include "prep/packing.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace nemokit::sft {

struct SftPrepConfig {
  std::vector<std::filesystem::path> inputs;      // chat JSONL files for training
  std::vector<std::filesystem::path> validation;  // chat JSONL files for validation (optional)
  double valid_fraction = 0.02;                   // without `validation`: share of input lines held out
  std::string chat_template = "nano3";
  bool enable_thinking = true;                    // the template's reasoning switch
  int64_t pack_size = 4096;
  Packer packer = Packer::FirstFitShuffle;
  bool skip_bad_records = false;                  // count and skip instead of failing
  uint64_t seed = 1234;
  std::filesystem::path tokenizer;                // empty: the init model's tokenizer
  std::string name = "sft-data";
  std::filesystem::path output;                   // empty: the caller's default
  MediaOptions media;                             // omni3: from [model.vision/audio], [data.media]

  // Throws std::invalid_argument naming the key ("data.pack_size: must be at least 16").
  static SftPrepConfig from_json(const nlohmann::json& data);
  // The whole stage config: [data] and, for omni3, the media options.
  static SftPrepConfig from_config(const nlohmann::json& config);
};

}  // namespace nemokit::sft
