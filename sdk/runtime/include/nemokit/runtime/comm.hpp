// The collectives the ranks of a job train through, behind one interface: a single-rank
// communicator (every operation a copy or nothing) and Open MPI between CPU processes. Every
// collective waits at most `timeout`: a rank that died or stopped answering ends the call with
// CommTimeout naming the ranks that never arrived, never a hang.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

namespace nemokit::rt {

// A collective did not complete in time, or the transport failed. what() names the operation,
// its sequence number and the ranks that did not arrive.
struct CommError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "single", "mpi"

  // In place: data[i] = sum over ranks of data[i]. Two ranks get the same bits (a + b == b + a);
  // with more, Open MPI's reduction order decides the last bit.
  virtual void all_reduce_sum(float* data, size_t n) = 0;
  virtual void all_reduce_sum(double* data, size_t n) = 0;
  virtual void all_reduce_sum(int64_t* data, size_t n) = 0;
  // in: size() * n_per_rank values; out: this rank's n_per_rank block of the sum over ranks.
  virtual void reduce_scatter_sum(const float* in, float* out, size_t n_per_rank) = 0;
  virtual void reduce_scatter_sum(const double* in, double* out, size_t n_per_rank) = 0;
  // in: n_per_rank values; out: size() * n_per_rank, rank r's values at block r.
  virtual void all_gather(const float* in, float* out, size_t n_per_rank) = 0;
  // Bytes from `root` to every rank.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void barrier() = 0;
  // Bytes: send_counts[r] bytes from `send` (packed in rank order) go to rank r; recv_counts[r]
  // bytes arrive from rank r into `recv` (packed in rank order). Both arrays have size() entries.
  virtual void all_to_all(const void* send, const size_t* send_counts, void* recv, const size_t* recv_counts) = 0;
};

struct CommOptions {
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
};

// The communicator of this process's job: single-rank when WORLD_SIZE is 1 (or unset), Open MPI
// when the ranks were started by Open MPI's launcher (mpirun, as the local executor does for
// several ranks; srun --mpi=pmix on Slurm). Throws std::runtime_error saying how to start the
// ranks when WORLD_SIZE > 1 but no MPI world of that size exists. One MPI communicator per
// process at a time (MPI starts once, ends when the last communicator goes).
std::unique_ptr<Communicator> open_communicator(const CommOptions& options = {});

// The collective timeout from NEMOKIT_COMM_TIMEOUT_S (seconds), else `fallback`.
std::chrono::milliseconds comm_timeout_from_env(std::chrono::milliseconds fallback);

// A communicator of one rank: all_reduce leaves data as it is, gathers copy.
std::unique_ptr<Communicator> single_rank_communicator();

}  // namespace nemokit::rt
