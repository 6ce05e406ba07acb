#pragma once
// `nemokit data prep <family> pretrain`: raw text -> tokenizer -> Megatron shards per split,
// blend.json and a PretrainBlendsArtifact metadata.json. Keys of data_config are documented in
// plugins/stage_pretrain/README-data.md.

#include <filesystem>
#include <ostream>

#include <nlohmann/json.hpp>

namespace nemokit::pretrain {

// data_config: the [data] table of the stage config (as JSON). out_dir: where the artifact goes;
// empty means data_config["output"]. Progress and errors go to `log`. Returns 0 on success, 2 for
// a bad config (the message names the key), 1 for other failures (the message names the file and
// line where there is one).
int run_pretrain_data_prep(const nlohmann::json& data_config, const std::filesystem::path& out_dir,
                           std::ostream& log);

}  // namespace nemokit::pretrain
