#pragma once
// The [parallel] table the training stages share. Today one layout: data parallel over every
// rank of the job. `dp` defaults to the job's world size (WORLD_SIZE, 1 when unset), so a config
// without the table trains on one rank and on many alike; a value that disagrees with the ranks
// the job has is an error naming the key, not a silent change of the global batch.
#include <nlohmann/json.hpp>

#include <cstdint>

namespace nemokit::rt {

struct ParallelOptions {
  int64_t dp = 1;  // data-parallel ranks
};

// Reads config["parallel"] (absent: defaults) for a job of `world_size` ranks. Throws
// std::invalid_argument naming the key ("parallel.dp: 4, but the job has 2 rank(s) ...").
ParallelOptions read_parallel_table(const nlohmann::json& config, int world_size);

// This rank's share of `global_micro_batches` under data parallel: the contiguous block
// [first, first + count). Throws std::invalid_argument naming `batch_key` when they do not divide.
struct DataSlice {
  int64_t first = 0, count = 0;
};
DataSlice data_parallel_slice(int64_t global_micro_batches, int64_t dp, int rank, const char* batch_key);

}  // namespace nemokit::rt
