#pragma once
// A rank's share of a GRPO step under data parallel. Each optimizer update's batch of rollouts is
// cut into `dp` equal blocks of whole groups (a prompt's G samples stay together, so advantages
// stay local) and rank r makes block r of every update: its samples, in order, are exactly its
// blocks of the updates, and one rank with the whole batch sees the same blocks in the same order.

#include "grpo/grpo_options.hpp"

#include "nemokit/runtime/comm.hpp"

#include <cstdint>
#include <vector>

namespace nemokit::rl {

struct RankShare {
  std::vector<int64_t> prompts;  // the step's prompt indices this rank samples, in order
  int64_t per_update = 0;        // this rank's rollouts per optimizer update
};

// Throws std::invalid_argument naming the key when an update's batch does not split into whole
// groups over `dp` ranks.
RankShare rank_share(const GrpoOptions& o, int64_t dp, int rank);

// Held-out items (val tasks, val pairs): rank r's contiguous block [first, first + count) of
// `items` (the ranks' blocks may differ by one item).
struct RankBlock {
  int64_t first = 0, count = 0;
};
RankBlock rank_block(int64_t items, int64_t dp, int rank);

// A vector of `size` values made by the ranks together: this rank's `values` go at `places`,
// every rank's arrive (a sum over the ranks with zeros elsewhere, which changes no bit).
std::vector<double> values_of_all_ranks(rt::Communicator& comm, size_t size, const std::vector<size_t>& places,
                                        const std::vector<double>& values);

}  // namespace nemokit::rl
