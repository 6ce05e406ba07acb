// Model checkpoints in the Hugging Face layout: config.json (NemotronH keys) and
// model.safetensors, sharded as model-0000i-of-0000n.safetensors with
// model.safetensors.index.json above a size. Parameter names are the Hub names
// (backbone.layers.N.mixer.in_proj.weight, ...); transformers 5 names (model.*, experts
// stacked into one tensor) are accepted on load. Training checkpoints add the optimizer
// moments (optimizer.safetensors) and trainer_state.json. Folders appear atomically.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "nemokit/runtime/model.hpp"
#include "nemokit/runtime/optim.hpp"

namespace nemokit::rt {

constexpr uint64_t kDefaultShardBytes = 5ull << 30;

// Writes DIR.tmp, then renames it to DIR.
void save_pretrained(NemotronH& model, const std::string& dir, uint64_t max_shard_bytes = kDefaultShardBytes);
std::unique_ptr<NemotronH> load_pretrained(const std::string& dir);
// Loads every parameter of `model` from DIR's safetensors; missing, unexpected or misshapen
// tensors are errors naming the file and the tensor.
void load_weights(NemotronH& model, const std::string& dir);

struct TrainerState {
  int64_t step = 0;                      // optimizer updates done
  uint64_t rng_state = 0;                // the run's Rng state (sampling, shuffling)
  nlohmann::json data_position = nlohmann::json::object();  // where the data loader resumes
  nlohmann::json extra = nlohmann::json::object();
};

void save_training_checkpoint(const std::string& dir, NemotronH& model, const AdamW& optimizer,
                              const TrainerState& state, uint64_t max_shard_bytes = kDefaultShardBytes);
// Restores weights, buffers (router bias), optimizer moments and returns the trainer state.
TrainerState load_training_checkpoint(const std::string& dir, NemotronH& model, AdamW& optimizer);

}  // namespace nemokit::rt
