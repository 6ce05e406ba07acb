// Internal: the token exchange of expert parallel for one MoE layer. The ranks form groups of
// `group` consecutive ranks (all of them when group == comm.size(); data x expert parallel
// otherwise), and within each group the routed experts are cut into `group` equal contiguous
// blocks, block p on the group's p-th rank. A rank sends each row routed to expert e to e's
// owner in its own group; the owner runs its experts on the rows of every rank and sends the results
// back; both ways are one all-to-all with counts (the counts themselves travel first). Rows
// keep their source rank: the owner runs an expert on each source's rows apart, which are the
// rows one rank with that micro-batch would give it, so the results are one rank's to the bit.
#pragma once
#include <cstdint>
#include <vector>

#include "nemokit/runtime/comm.hpp"

namespace nemokit::rt::detail {

class ExpertExchange {
 public:
  // `experts`: the layer's routed experts (a multiple of `group`); `width`: floats per row;
  // `group`: ranks per expert-parallel group (divides comm.size()).
  ExpertExchange(Communicator& comm, int64_t experts, int64_t width, int group);

  int ranks() const { return group_; }  // of the group; sources and owners are numbered 0..ranks()-1
  int position() const { return comm_.rank() - base_; }
  int64_t local_experts() const { return local_; }
  int64_t first_expert() const { return first_; }
  int owner(int64_t expert) const { return int(expert / local_); }  // a position in the group

  // Collective (every rank of comm). rows_per_expert[e]: the rows this rank routes to expert e
  // (all experts). Afterwards received(j, s) says how many rows of local expert j come from the
  // group's rank s.
  void exchange_counts(const std::vector<int64_t>& rows_per_expert);
  int64_t received(int64_t j, int s) const { return recv_[size_t(s) * size_t(local_) + size_t(j)]; }
  // Where local expert j's rows from rank s start in the owner-side buffers (rows; ordered by
  // local expert, then source rank).
  int64_t owner_offset(int64_t j, int s) const { return owner_off_[size_t(j) * size_t(group_) + size_t(s)]; }
  int64_t owner_rows() const { return owner_rows_; }
  int64_t sent_rows() const { return sent_rows_; }

  // Collective. `rows`: this rank's rows for every expert, global expert order (as
  // rows_per_expert counted them); `owned` receives the rows of this rank's experts, ordered by
  // local expert, then source rank.
  void to_owners(const float* rows, std::vector<float>& owned);
  // Collective, the way back: `owned` in the owner-side order; `rows` receives, in global expert
  // order, the results for the rows this rank sent.
  void to_sources(const float* owned, std::vector<float>& rows);

 private:
  // One all-to-all of float rows over comm (nothing to or from other groups): send_rows[q] rows
  // to the group's rank q from `send` (packed in rank order), recv_rows[s] rows from its rank s.
  void exchange(const float* send, const std::vector<int64_t>& send_rows, float* recv, const std::vector<int64_t>& recv_rows);

  Communicator& comm_;
  int group_, base_;  // the group's size and first rank
  int64_t experts_, local_, first_, width_;
  std::vector<int64_t> sent_;                 // [position q][local j]: rows this rank sends to q's expert j
  std::vector<int64_t> recv_;                 // [position s][local j]: rows local expert j gets from s
  std::vector<int64_t> owner_off_;            // [local j][source s]: row offset in the owner-side order
  std::vector<int64_t> to_rank_, from_rank_;  // rows per group position, both ways
  int64_t owner_rows_ = 0, sent_rows_ = 0;
  std::vector<float> staging_;  // the owner's rows in source order, as MPI packs them
};

}  // namespace nemokit::rt::detail
