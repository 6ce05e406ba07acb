#pragma once
// The eval stage's config, checked before any model is loaded so that a bad key costs nothing:
//   [model]        checkpoints: the models to evaluate, side by side
//   [perplexity]   held-out text: a prepared pretraining blend's split
//   [tasks]        the RL environments' accuracy on held-out tasks ([tasks.data] as the RL stage's [data])
//   [chats]        greedy exact match on chat items (the SFT stage's eval; omni3's carry images and audio)
//   [media]        how omni3 items' images, video and audio are read (the SFT stage's [data.media])
//   [environments] as the RL stage's
// A suite whose table is absent is not run.

#include "prep/rl_data_prep.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace nemokit::eval {

struct PerplexityOptions {
  std::filesystem::path data;  // the prepared data's folder (blend.json, tokenizer.json)
  std::string split = "test";
  int64_t seq_length = 0;      // 0: the data's own (its metadata.json)
  int64_t micro_batch_size = 8;
  int64_t max_windows = 0;     // 0: every window of the split once
  uint64_t seed = 1234;
};

struct TaskOptions {
  rl::RlPrepConfig data;             // [tasks.data]: inputs, split, seed as the RL stage splits them
  std::vector<int> use = {2};        // which splits are evaluated (indices into rl::kSplitNames)
  int64_t max_per_kind = 0;          // 0: all; else the first N of each kind in file order
  int64_t max_new_tokens = 16;
  bool enable_thinking = false;
  std::vector<std::string> stop_strings = {"<|im_end|>"};
};

struct ChatOptions {
  std::filesystem::path file;        // JSONL of {kind, messages, expected, match}
  int64_t max_examples = 0;          // 0: all; else spread over the kinds
  int64_t max_new_tokens = 40;
  bool enable_thinking = false;
};

struct EvalOptions {
  std::vector<std::string> checkpoints;  // as model.init_from takes them
  std::optional<PerplexityOptions> perplexity;
  std::optional<TaskOptions> tasks;
  std::optional<ChatOptions> chats;
  nlohmann::json media = nlohmann::json::object();         // [media]
  nlohmann::json environments = nlohmann::json::object();  // [environments]

  // Throws std::invalid_argument naming the key.
  static EvalOptions from_config(const nlohmann::json& config);
};

}  // namespace nemokit::eval
