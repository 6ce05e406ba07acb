#pragma once
// `nemokit data prep <family> pretrain`: raw text -> tokenizer -> Megatron shards per split,
// blend.json and a PretrainBlendsArtifact metadata.json. Keys of data_config are documented in
// plugins/stage_pretrain/README-data.md.

#include <filesystem>
#include <ostream>

#include <nlohmann/json.hpp>

#include "prep/prep_config.hpp"

namespace nemokit::pretrain {

// Prepares the data `config` describes into config.output, else into `default_out` (both empty:
// a config error). Progress and errors go to `log`; `written`, when given, gets the folder.
// Returns 0 on success, 2 for a bad config (the message names the key), 1 for other failures
// (the message names the file and line where there is one).
int run_pretrain_data_prep(const PrepConfig& config, const std::filesystem::path& default_out, std::ostream& log,
                           std::filesystem::path* written = nullptr);

// The same from the [data] table as JSON (parsed here, once; a table that does not parse is 2).
int run_pretrain_data_prep(const nlohmann::json& data_config, const std::filesystem::path& default_out,
                           std::ostream& log, std::filesystem::path* written = nullptr);

}  // namespace nemokit::pretrain
