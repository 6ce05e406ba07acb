#include "expert_exchange.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace nemokit::rt::detail {

ExpertExchange::ExpertExchange(Communicator& comm, int64_t experts, int64_t width, int group)
    : comm_(comm), group_(group), base_(group > 0 ? comm.rank() / group * group : 0), experts_(experts), width_(width) {
  if (group_ < 1 || comm.size() % group_ != 0)
    throw std::invalid_argument("expert parallel: groups of " + std::to_string(group_) + " ranks do not divide " +
                                std::to_string(comm.size()) + " ranks");
  if (experts % group_ != 0)
    throw std::invalid_argument("expert parallel: " + std::to_string(experts) + " routed experts do not split evenly over " +
                                std::to_string(group_) + " ranks");
  local_ = experts / group_;
  first_ = local_ * position();
}

void ExpertExchange::exchange_counts(const std::vector<int64_t>& rows_per_expert) {
  if (int64_t(rows_per_expert.size()) != experts_)
    throw std::invalid_argument("expert exchange: " + std::to_string(rows_per_expert.size()) + " counts for " +
                                std::to_string(experts_) + " experts");
  // Global expert order is already the group's rank order (its rank q holds experts q*local ..
  // q*local+local-1), and MPI packs by rank: the counts go as they are, to the group alone.
  sent_ = rows_per_expert;
  recv_.assign(size_t(experts_), 0);
  std::vector<size_t> bytes(size_t(comm_.size()), 0);
  for (int q = 0; q < group_; ++q) bytes[size_t(base_ + q)] = size_t(local_) * sizeof(int64_t);
  comm_.all_to_all(sent_.data(), bytes.data(), recv_.data(), bytes.data());
  to_rank_.assign(size_t(group_), 0), from_rank_.assign(size_t(group_), 0);
  for (int q = 0; q < group_; ++q)
    for (int64_t j = 0; j < local_; ++j) {
      to_rank_[size_t(q)] += sent_[size_t(q) * size_t(local_) + size_t(j)];
      from_rank_[size_t(q)] += received(j, q);
    }
  owner_off_.assign(size_t(local_) * size_t(group_), 0);
  int64_t at = 0;
  for (int64_t j = 0; j < local_; ++j)
    for (int s = 0; s < group_; ++s) {
      owner_off_[size_t(j) * size_t(group_) + size_t(s)] = at;
      at += received(j, s);
    }
  owner_rows_ = at;
  sent_rows_ = 0;
  for (int64_t n : to_rank_) sent_rows_ += n;
}

void ExpertExchange::exchange(const float* send, const std::vector<int64_t>& send_rows, float* recv,
                              const std::vector<int64_t>& recv_rows) {
  std::vector<size_t> sb(static_cast<size_t>(comm_.size()), 0), rb(static_cast<size_t>(comm_.size()), 0);
  for (int q = 0; q < group_; ++q) {
    sb[size_t(base_ + q)] = size_t(send_rows[size_t(q)]) * size_t(width_) * sizeof(float);
    rb[size_t(base_ + q)] = size_t(recv_rows[size_t(q)]) * size_t(width_) * sizeof(float);
  }
  comm_.all_to_all(send, sb.data(), recv, rb.data());
}

void ExpertExchange::to_owners(const float* rows, std::vector<float>& owned) {
  staging_.resize(size_t(owner_rows_ * width_));
  exchange(rows, to_rank_, staging_.data(), from_rank_);
  // MPI delivers by source rank (each source's rows for expert j, j+1, ...); the experts want
  // their rows together.
  owned.resize(size_t(owner_rows_ * width_));
  const float* from = staging_.data();
  for (int s = 0; s < group_; ++s)
    for (int64_t j = 0; j < local_; ++j) {
      const int64_t n = received(j, s) * width_;
      std::copy(from, from + n, owned.data() + owner_offset(j, s) * width_);
      from += n;
    }
}

void ExpertExchange::to_sources(const float* owned, std::vector<float>& rows) {
  staging_.resize(size_t(owner_rows_ * width_));
  float* to = staging_.data();
  for (int s = 0; s < group_; ++s)
    for (int64_t j = 0; j < local_; ++j) {
      const int64_t n = received(j, s) * width_;
      const float* from = owned + owner_offset(j, s) * width_;
      std::copy(from, from + n, to);
      to += n;
    }
  rows.resize(size_t(sent_rows_ * width_));
  exchange(staging_.data(), from_rank_, rows.data(), to_rank_);
}

}  // namespace nemokit::rt::detail
