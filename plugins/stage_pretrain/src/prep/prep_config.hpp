#pragma once
// The [data] table of a pretraining stage config, checked and with defaults filled in. Keys are
// documented in plugins/stage_pretrain/README-data.md.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace nemokit::pretrain {

enum class TextSplit { Paragraph, Line, File };

struct TokenizerTraining {
  int32_t vocab_size = 4096;
  int32_t min_frequency = 2;
  std::vector<std::string> special_tokens = {"<|endoftext|>"};
};

struct PrepConfig {
  std::vector<std::filesystem::path> inputs;
  TextSplit text_split = TextSplit::Paragraph;
  std::string jsonl_text_field = "text";
  std::optional<std::filesystem::path> tokenizer;       // an existing tokenizer.json, or
  std::optional<TokenizerTraining> train_tokenizer;     // train one on the inputs
  bool append_eod = true;
  std::string eod_token = "<|endoftext|>";
  int64_t seq_length = 4096;
  std::vector<double> split = {98, 1, 1};               // train, valid, test (any scale)
  int64_t shard_size_tokens = 100'000'000;
  int64_t min_document_chars = 1;
  int threads = 0;                                      // 0 = all cores
  std::string name = "pretrain-data";
  std::optional<std::filesystem::path> output;
  nlohmann::json table;                                 // the [data] table as written (artifact metadata)
};

// The one reader of the [data] table, for data prep and for training alike. Throws
// std::invalid_argument naming the key ("data.split") for an unknown or mistyped key. A table
// with only `output` (data prepared elsewhere) is valid; what preparing needs besides is checked
// by check_preparable. "~" is expanded; other relative paths stay relative (the caller resolves
// them against its working folder).
PrepConfig parse_prep_config(const nlohmann::json& data);

// The [data] table of a stage config (as JSON); throws std::invalid_argument when it is missing.
const nlohmann::json& data_table(const nlohmann::json& stage_config);

// Throws std::invalid_argument naming the key when `c` lacks what preparing data needs: inputs,
// and exactly one of tokenizer and train_tokenizer.
void check_preparable(const PrepConfig& c);

}  // namespace nemokit::pretrain
