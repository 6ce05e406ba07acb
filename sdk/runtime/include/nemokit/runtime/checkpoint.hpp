// Model checkpoints in the Hugging Face layout: config.json (NemotronH keys) and
// model.safetensors, sharded as model-0000i-of-0000n.safetensors with
// model.safetensors.index.json above a size. Parameter names are the Hub names
// (backbone.layers.N.mixer.in_proj.weight, ...); transformers 5 names (model.*, experts
// stacked into one tensor) are accepted on load. lm_head.weight is always written, for a model
// that ties it to the embeddings too (transformers' NemotronH never ties them), so every folder
// loads in transformers with no missing key. Training checkpoints add the optimizer moments
// (optimizer.safetensors), trainer_state.json and, given the tokenizer, tokenizer.json and
// tokenizer_config.json (AutoTokenizer's files). Folders appear atomically.
// A LoRA model's folders carry adapter_config.json (PEFT's format) beside config.json and
// the adapter tensors (<module>.lora_A.weight, .lora_B.weight) with the base weights.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "nemokit/runtime/model.hpp"
#include "nemokit/runtime/optim.hpp"
#include "nemokit/runtime/tokenizer.hpp"

namespace nemokit::rt {

constexpr uint64_t kDefaultShardBytes = 5ull << 30;

// Writes DIR.tmp, then renames it to DIR. dtype: F32, or BF16 (round to nearest even, as
// torch converts); config.json's torch_dtype says which. `extra` tensors (a task head such as
// a reward model's score.weight) are saved after the model's, in the same shards.
void save_pretrained(NemotronH& model, const std::string& dir, uint64_t max_shard_bytes = kDefaultShardBytes,
                     DType dtype = DType::f32, const std::vector<NamedTensor>& extra = {});
// With adapter_config.json in DIR, the model gets its LoRA adapters before the weights load.
// A config that ties the head whose lm_head.weight differs from the embeddings (what
// transformers saves once it has trained such a model) loads untied, with that head, so the
// logits are transformers' logits. With `experts` (expert parallel over groups of `expert_parallel`
// of its ranks) the model holds this rank's routed experts only, loaded from the whole set.
std::unique_ptr<NemotronH> load_pretrained(const std::string& dir, Communicator* experts = nullptr, int expert_parallel = 1);
// Loads every parameter of `model` from DIR's safetensors; missing, unexpected or misshapen
// tensors are errors naming the file and the tensor. The tensors named in `extra` (a head's)
// are returned as float32, in that order, instead of being unexpected; missing ones are errors.
// A tied model takes an lm_head.weight equal to its embeddings and refuses one that differs.
std::vector<NamedTensor> load_weights(NemotronH& model, const std::string& dir, const std::vector<std::string>& extra = {});

struct TrainerState {
  int64_t step = 0;                                         // optimizer updates done
  uint64_t rng_state = 0;                                   // the run's Rng state (sampling, shuffling)
  nlohmann::json data_position = nlohmann::json::object();  // where the data loader resumes
  nlohmann::json extra = nlohmann::json::object();
  // The prepared data the run trains on (run/resume_check.hpp's describe_data); a resume checks
  // the config's data against it.
  nlohmann::json data_source = nlohmann::json::object();
};

// Expert parallel: the tensors of a checkpoint that other ranks hold, their experts' weights and
// AdamW moments, so that rank 0 writes every expert whatever the layout (and a checkpoint moves
// between layouts: each rank loads its experts from the whole set).
struct RemoteExperts {
  std::vector<NamedTensor> weights, moments;
};
// Collective over model.expert_comm() (every rank calls it; nothing to do without one): rank 0
// gets the other ranks' experts, the others an empty result.
RemoteExperts gather_remote_experts(NemotronH& model, const AdamW& optimizer);

// `tokenizer`: the one the model's ids belong to; its files go into the folder beside the weights.
// `remote`: under expert parallel, gather_remote_experts's result (rank 0 writes).
void save_training_checkpoint(const std::string& dir, NemotronH& model, const AdamW& optimizer, const TrainerState& state,
                              const Tokenizer* tokenizer = nullptr, uint64_t max_shard_bytes = kDefaultShardBytes,
                              const RemoteExperts& remote = {});
// Restores weights, buffers (router bias), optimizer moments, the LoRA dropout position and
// returns the trainer state. Under expert parallel each rank takes its own experts (weights and
// moments) from the whole set the checkpoint holds, whatever layout wrote it. A LoRA checkpoint needs a model with the same
// adapters (from load_pretrained(dir)); the optimizer must be built over that model's parameters. A checkpoint of another model
// than `model` (its config.json differs: the config's [model] or init_from changed since) is refused before any weight is read,
// naming the keys that differ.
TrainerState load_training_checkpoint(const std::string& dir, NemotronH& model, AdamW& optimizer);

// tokenizer_config.json for AutoTokenizer: the fast tokenizer over tokenizer.json, with the
// model's bos/eos/pad ids named by their token text.
nlohmann::json tokenizer_config_json(const Tokenizer& tokenizer, const NemotronHConfig& config);

}  // namespace nemokit::rt
