#pragma once
// `nemokit data prep FAMILY sft`: chat JSONL -> the Nemotron 3 chat template -> tokens with an
// answer-only loss mask -> fixed-size packs, written as the packed SFT artifact:
//   OUT/train/, OUT/validation/   the packed splits (data/packed_split.hpp: NumPy arrays)
//   OUT/tokenizer.json            the tokenizer the ids belong to
//   OUT/metadata.json             SFTDataArtifact: counts, sources and digests, the config;
//                                 written last, so its presence means the artifact is complete
// The folder is built beside OUT and swapped in with one rename.

#include "prep/sft_prep_config.hpp"

#include <filesystem>
#include <ostream>

namespace nemokit::sft {

// Throws std::invalid_argument for bad input (naming the file and line), std::runtime_error for
// I/O failures.
void run_sft_data_prep(const SftPrepConfig& config, const std::filesystem::path& tokenizer_file,
                       const std::filesystem::path& out_dir, std::ostream& log);

}  // namespace nemokit::sft
