#pragma once
// The [parallel] table the training stages share: data parallel over every rank of the job,
// with the optimizer state whole on every rank or sharded over them (ZeRO-1, `zero = 1`), and the
// routed experts of each MoE layer whole on every rank or split over groups of `ep` consecutive
// ranks (expert parallel; ep divides the job's ranks, each group holds every expert once and the
// groups are data parallel over them, as every rank is over the rest of the model). `dp` defaults to the job's world
// size (WORLD_SIZE, 1 when unset), so a config without the table trains on one rank and on many alike; a value that disagrees
// with the ranks the job has is an error naming the key, not a silent change of the global batch.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nemokit/runtime/comm.hpp"
#include "nemokit/runtime/config.hpp"
#include "nemokit/runtime/optim.hpp"

namespace nemokit::rt {

struct ParallelOptions {
  int64_t dp = 1;    // data-parallel ranks
  int64_t zero = 0;  // ZeRO stage: 0 = every rank holds the whole optimizer state, 1 = sharded
  int64_t ep = 1;    // ranks per expert-parallel group: 1 = every expert on every rank
};

// Reads config["parallel"] (absent: defaults) for a job of `world_size` ranks. Throws
// std::invalid_argument naming the key ("parallel.dp: 4, but the job has 2 rank(s) ...").
ParallelOptions read_parallel_table(const nlohmann::json& config, int world_size);

// parallel.backend: "mpi" (CPU processes, the default) or "nccl" (one GPU per rank), for the
// communicator the stage opens before it reads the rest of the table (which needs its size).
// Throws std::invalid_argument naming the key for another word.
CommBackend read_comm_backend(const nlohmann::json& config);

// The communicator of the job's ranks (open_communicator) as a training stage opens it:
// parallel.backend from the config, the collective timeout from NEMOKIT_COMM_TIMEOUT_S, else
// five minutes.
std::unique_ptr<Communicator> open_job_communicator(const nlohmann::json& config);

// Refuses an expert-parallel layout the model cannot take, naming the keys and the figures: no
// MoE layer, or n_routed_experts not a multiple of parallel.ep.
void check_expert_parallel(const ParallelOptions& parallel, const NemotronHConfig& model);
// The communicator to split the experts over (NemotronH's constructor, with parallel.ep): `comm`
// when ep > 1.
Communicator* expert_parallel_comm(const ParallelOptions& parallel, Communicator& comm);
// For a stage that does not split experts (nemokit's pretraining, SFT and RL all do; a third
// party's may not): parallel.ep > 1 is refused naming `stage`.
void refuse_expert_parallel(const ParallelOptions& parallel, const std::string& stage);

// The optimizer the layout asks for: AdamW whole, or under ZeRO-1 sharded over `comm`'s ranks
// (`comm` must outlive it).
AdamW make_optimizer(std::vector<Parameter*> params, const AdamWConfig& config, const ParallelOptions& parallel,
                     Communicator& comm);

// " over 2 data-parallel ranks (mpi), optimizer state sharded (ZeRO-1)" or "..., experts split
// over 2 ranks (expert parallel)" for the run's banner;
// empty for one rank with whole optimizer state.
std::string describe_layout(const ParallelOptions& parallel, const Communicator& comm);

// This rank's share of `global_micro_batches` under data parallel: the contiguous block
// [first, first + count). Throws std::invalid_argument naming `batch_key` when they do not divide.
struct DataSlice {
  int64_t first = 0, count = 0;
};
DataSlice data_parallel_slice(int64_t global_micro_batches, int64_t dp, int rank, const char* batch_key);

}  // namespace nemokit::rt
