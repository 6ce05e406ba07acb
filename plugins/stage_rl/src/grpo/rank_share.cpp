#include "grpo/rank_share.hpp"

#include <stdexcept>
#include <string>

namespace nemokit::rl {

RankShare rank_share(const GrpoOptions& o, int64_t dp, int rank) {
  const int64_t G = o.num_generations_per_prompt;
  const int64_t per_update = o.global_batch_size > 0 ? o.global_batch_size : o.rollouts_per_step();
  if (per_update % (G * dp) != 0) {
    if (o.global_batch_size > 0)
      throw std::invalid_argument("train.global_batch_size: " + std::to_string(per_update) +
                                  " rollouts per update do not split into whole groups over " + std::to_string(dp) +
                                  " data-parallel ranks: make it a multiple of grpo.num_generations_per_prompt x parallel.dp = " +
                                  std::to_string(G * dp));
    throw std::invalid_argument("grpo.num_prompts_per_step: " + std::to_string(o.num_prompts_per_step) +
                                " prompts do not split over " + std::to_string(dp) +
                                " data-parallel ranks: make it a multiple of parallel.dp");
  }
  RankShare share;
  share.per_update = per_update / dp;
  const int64_t prompts_per_update = per_update / G, mine = prompts_per_update / dp;
  for (int64_t first = 0; first < o.num_prompts_per_step; first += prompts_per_update)
    for (int64_t i = 0; i < mine; ++i) share.prompts.push_back(first + int64_t(rank) * mine + i);
  return share;
}

RankBlock rank_block(int64_t items, int64_t dp, int rank) {
  RankBlock b;
  b.first = items * rank / dp;
  b.count = items * (rank + 1) / dp - b.first;
  return b;
}

std::vector<double> values_of_all_ranks(rt::Communicator& comm, size_t size, const std::vector<size_t>& places,
                                        const std::vector<double>& values) {
  std::vector<double> all(size, 0.0);
  for (size_t i = 0; i < places.size(); ++i) all.at(places[i]) = values[i];
  if (comm.size() > 1) comm.all_reduce_sum(all.data(), all.size());
  return all;
}

}  // namespace nemokit::rl
