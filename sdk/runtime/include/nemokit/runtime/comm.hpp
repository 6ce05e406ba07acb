// The collectives the ranks of a job train through, behind one interface: a single-rank
// communicator (every operation a copy or nothing), Open MPI between CPU processes, and NCCL
// between GPUs (in the CUDA module, loaded only when asked for). Every
// collective waits at most `timeout`: a rank that died or stopped answering ends the call with
// CommTimeout naming the ranks that never arrived, never a hang.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

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
  virtual std::string backend() const = 0;  // "single", "mpi", "nccl"

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
  // A barrier that waits up to `timeout` instead of the collective timeout: the other ranks wait
  // for one doing long work alone (rank 0 preparing data or writing a checkpoint), which may take
  // longer than any collective should.
  void wait_for_ranks(std::chrono::milliseconds timeout) {
    const auto usual = set_timeout(timeout);
    try {
      barrier();
    } catch (...) {
      set_timeout(usual);
      throw;
    }
    set_timeout(usual);
  }

 protected:
  // Sets the deadline of the collectives to come and returns the one before; a communicator
  // without deadlines (one rank) keeps none.
  virtual std::chrono::milliseconds set_timeout(std::chrono::milliseconds timeout) { return timeout; }

 public:
  // Bytes: send_counts[r] bytes from `send` (packed in rank order) go to rank r; recv_counts[r]
  // bytes arrive from rank r into `recv` (packed in rank order). Both arrays have size() entries.
  virtual void all_to_all(const void* send, const size_t* send_counts, void* recv, const size_t* recv_counts) = 0;
};

// Which transport the ranks use. automatic: single-rank for one rank, Open MPI for several (the
// CPU path). nccl: NCCL between GPUs, one per rank, even for one rank, so that a GPU job on a
// machine without a GPU stops at once with the reason.
enum class CommBackend { automatic, mpi, nccl };

struct CommOptions {
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
  CommBackend backend = CommBackend::automatic;
};

// The communicator of this process's job: single-rank when WORLD_SIZE is 1 (or unset), Open MPI
// when the ranks were started by Open MPI's launcher (mpirun, as the local executor does for
// several ranks; srun --mpi=pmix on Slurm). Throws std::runtime_error saying how to start the
// ranks when WORLD_SIZE > 1 but no MPI world of that size exists. One MPI communicator per
// process at a time (MPI starts once, ends when the last communicator goes).
// With options.backend == nccl: NCCL over RANK, WORLD_SIZE, LOCAL_RANK and the
// MASTER_ADDR/MASTER_PORT rendezvous; throws std::runtime_error "device cuda requested but no
// CUDA device / NCCL module could not be loaded: <why>" where that cannot be had.
std::unique_ptr<Communicator> open_communicator(const CommOptions& options = {});

// The collective timeout from NEMOKIT_COMM_TIMEOUT_S (seconds), else `fallback`.
std::chrono::milliseconds comm_timeout_from_env(std::chrono::milliseconds fallback);

// "mpi" or "nccl" (as parallel.backend spells them) to the enum; "" and "auto" are automatic.
// Throws std::invalid_argument naming `key` for any other word.
CommBackend parse_comm_backend(const std::string& word, const std::string& key);

// Every rank's `bytes` (sizes may differ) to rank 0, which gets them in rank order; the other
// ranks get an empty list. Every rank must call it.
std::vector<std::string> gather_to_rank0(Communicator& comm, const std::string& bytes);

// A communicator of one rank: all_reduce leaves data as it is, gathers copy.
std::unique_ptr<Communicator> single_rank_communicator();

}  // namespace nemokit::rt
