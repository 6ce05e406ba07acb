// The pretraining config the data-parallel tests share: the shipped `tiny` made smaller still,
// on the Bible slice (bible_slice.hpp), four micro-batches of 2 rows per step, 10 steps, a
// checkpoint every 5; and the losses its runs log.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "bible_slice.hpp"

namespace nemokit::test {

inline std::filesystem::path write_data_parallel_config(const std::filesystem::path& dir) {
  const std::filesystem::path text = write_bible_slice(dir);
  std::filesystem::path cfg = dir / "dp.toml";
  std::ofstream(cfg) << "defaults = [\"tiny\"]\n"
                        "[model]\nhidden_size = 64\nmamba_num_heads = 4\nmamba_head_dim = 32\nssm_state_size = 16\n"
                        "chunk_size = 16\nnum_attention_heads = 4\nnum_key_value_heads = 2\nhead_dim = 16\n"
                        "intermediate_size = 128\nn_routed_experts = 4\nnum_experts_per_tok = 2\n"
                        "moe_intermediate_size = 64\nmoe_shared_expert_intermediate_size = 64\nvocab_size = 512\n"
                        "[train]\nseq_length = 32\nmicro_batch_size = 2\nglobal_batch_size = 8\nmax_steps = 10\n"
                        "warmup_steps = 2\neval_interval = 5\neval_steps = 2\nsave_interval = 5\nlog_interval = 1\n"
                        "sample_tokens = 0\n"
                        "[data]\ninputs = [\"" + text.string() + "\"]\n"
                        "train_tokenizer = { vocab_size = 512, min_frequency = 2, special_tokens = [\"<|endoftext|>\"] }\n"
                        "seq_length = 32\noutput = \"" + (dir / "data").string() + "\"\n";
  return cfg;
}

// Each step's training loss from the metrics.jsonl of every job under `jobs_root` (a step that
// two jobs ran, before and after a resume, holds one of them).
inline std::map<int64_t, double> train_losses(const std::filesystem::path& jobs_root) {
  std::map<int64_t, double> out;
  for (const auto& e : std::filesystem::directory_iterator(jobs_root)) {
    std::ifstream in(e.path() / "metrics.jsonl");
    for (std::string line; std::getline(in, line);)
      if (nlohmann::json m = nlohmann::json::parse(line); m.contains("loss")) out[m["step"]] = m["loss"];
  }
  return out;
}

}  // namespace nemokit::test
