// A fixed pool of worker threads for the CPU kernels. Work is split into equal contiguous
// ranges by index, so a kernel whose outputs are owned per index gives the same bits for a
// given thread count regardless of scheduling.
#pragma once
#include <cstdint>
#include <functional>

namespace nemokit::rt {

// Threads used by parallel_for: NEMOKIT_NUM_THREADS, else the hardware concurrency.
int num_threads();
void set_num_threads(int threads);

// Calls fn(begin, end) on disjoint ranges covering [0, n); returns when all are done.
// Nested calls from inside a worker run inline.
void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace nemokit::rt
