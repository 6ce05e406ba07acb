// The communicator of a job with one rank: sums over one rank are the data as it is.
#include <cstring>

#include "nemokit/runtime/comm.hpp"

namespace nemokit::rt {
namespace {

class SingleRankCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "single"; }
  void all_reduce_sum(float*, size_t) override {}
  void all_reduce_sum(double*, size_t) override {}
  void all_reduce_sum(int64_t*, size_t) override {}
  void reduce_scatter_sum(const float* in, float* out, size_t n) override { copy(in, out, n * sizeof(float)); }
  void reduce_scatter_sum(const double* in, double* out, size_t n) override { copy(in, out, n * sizeof(double)); }
  void all_gather(const float* in, float* out, size_t n) override { copy(in, out, n * sizeof(float)); }
  void broadcast(void*, size_t, int root) override {
    if (root != 0) throw std::invalid_argument("broadcast: root " + std::to_string(root) + " in a job of one rank");
  }
  void barrier() override {}
  void all_to_all(const void* send, const size_t* send_counts, void* recv, const size_t* recv_counts) override {
    if (send_counts[0] != recv_counts[0])
      throw std::invalid_argument("all_to_all: one rank sends " + std::to_string(send_counts[0]) + " bytes to itself but expects " +
                                  std::to_string(recv_counts[0]));
    copy(send, recv, send_counts[0]);
  }

 private:
  static void copy(const void* in, void* out, size_t bytes) {
    if (in != out && bytes) std::memmove(out, in, bytes);
  }
};

}  // namespace

std::unique_ptr<Communicator> single_rank_communicator() { return std::make_unique<SingleRankCommunicator>(); }

}  // namespace nemokit::rt
