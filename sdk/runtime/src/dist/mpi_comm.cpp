// Communicator over Open MPI. Every collective is started non-blocking and waited for with a
// deadline, because MPI itself has no timeout: a blocking MPI_Allreduce with a stopped peer waits
// forever. When the deadline passes, each rank that arrived tells every other rank the
// collective's sequence number on a second communicator and listens for a moment; the ranks
// never heard from are the ones named in the error.
// The C API only: Open MPI's mpi.h would otherwise pull in its deprecated C++ bindings, which
// need libmpi_cxx at link time.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "mpi_comm.hpp"

namespace nemokit::rt {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kArrivedTag = 7301;

// MPI starts once per process and ends when the last communicator goes, unless a collective
// failed: MPI_Finalize is collective too and would wait for the rank that is gone.
std::mutex g_mpi_mutex;
int g_open_communicators = 0;
bool g_failed = false;

std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(text, size_t(len));
}

void start_mpi() {
  std::lock_guard lock(g_mpi_mutex);
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (finalized) throw std::runtime_error("MPI was already finalized in this process; it cannot start again");
  if (!initialized) {
    int provided = 0;
    // Serialized: only the training thread calls MPI, but not always the thread that started it.
    int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
    if (rc != MPI_SUCCESS) throw std::runtime_error("MPI_Init_thread: " + mpi_error_text(rc));
  }
  ++g_open_communicators;
}

void stop_mpi() {
  std::lock_guard lock(g_mpi_mutex);
  if (--g_open_communicators > 0 || g_failed) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

// Element counts above INT_MAX go in several calls.
constexpr size_t kMaxChunk = size_t(1) << 30;

int to_int(size_t n, const char* what) {
  if (n > size_t(INT_MAX)) throw std::invalid_argument(std::string(what) + ": " + std::to_string(n) + " is more than MPI's int counts hold");
  return int(n);
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(int expected_size, int expected_rank, const CommOptions& options) : timeout_(options.timeout) {
    start_mpi();
    try {
      check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
      check(MPI_Comm_dup(MPI_COMM_WORLD, &watch_), "MPI_Comm_dup");
      // Errors come back as codes (and become CommError) instead of aborting the process
      // unexplained.
      MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
      MPI_Comm_set_errhandler(watch_, MPI_ERRORS_RETURN);
      MPI_Comm_rank(comm_, &rank_);
      MPI_Comm_size(comm_, &size_);
    } catch (...) {
      stop_mpi();
      throw;
    }
    if (size_ != expected_size || rank_ != expected_rank) {
      std::string msg = "the MPI world has " + std::to_string(size_) + " rank(s) and this process is rank " + std::to_string(rank_) +
                        ", but WORLD_SIZE=" + std::to_string(expected_size) + " and RANK=" + std::to_string(expected_rank) +
                        ": the ranks were started by more than one launcher";
      free_comms();
      stop_mpi();
      throw std::runtime_error(msg);
    }
  }
  ~MpiCommunicator() override {
    if (!failed_) free_comms();
    stop_mpi();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

  void all_reduce_sum(float* d, size_t n) override { all_reduce(d, n, MPI_FLOAT); }
  void all_reduce_sum(double* d, size_t n) override { all_reduce(d, n, MPI_DOUBLE); }
  void all_reduce_sum(int64_t* d, size_t n) override { all_reduce(d, n, MPI_INT64_T); }

  void reduce_scatter_sum(const float* in, float* out, size_t n) override { reduce_scatter(in, out, n, MPI_FLOAT); }
  void reduce_scatter_sum(const double* in, double* out, size_t n) override { reduce_scatter(in, out, n, MPI_DOUBLE); }
  void all_gather(const float* in, float* out, size_t n) override {
    MPI_Request req;
    begin("all_gather");
    check(MPI_Iallgather(in, to_int(n, "all_gather"), MPI_FLOAT, out, int(n), MPI_FLOAT, comm_, &req), "MPI_Iallgather");
    wait(req, "all_gather");
  }
  void broadcast(void* data, size_t bytes, int root) override {
    if (root < 0 || root >= size_) throw std::invalid_argument("broadcast: root " + std::to_string(root) + " is not a rank of " + std::to_string(size_));
    auto* p = static_cast<char*>(data);
    do {
      size_t k = std::min(bytes, kMaxChunk);
      MPI_Request req;
      begin("broadcast");
      check(MPI_Ibcast(p, int(k), MPI_BYTE, root, comm_, &req), "MPI_Ibcast");
      wait(req, "broadcast");
      p += k, bytes -= k;
    } while (bytes > 0);
  }
  void barrier() override {
    MPI_Request req;
    begin("barrier");
    check(MPI_Ibarrier(comm_, &req), "MPI_Ibarrier");
    wait(req, "barrier");
  }
  std::chrono::milliseconds set_timeout(std::chrono::milliseconds timeout) override { return std::exchange(timeout_, timeout); }
  void all_to_all(const void* send, const size_t* send_counts, void* recv, const size_t* recv_counts) override {
    const size_t n = static_cast<size_t>(size_);
    std::vector<int> sc(n), sd(n), rc(n), rd(n);
    size_t so = 0, ro = 0;
    for (size_t r = 0; r < size_t(size_); ++r) {
      sc[r] = to_int(send_counts[r], "all_to_all"), sd[r] = to_int(so, "all_to_all");
      rc[r] = to_int(recv_counts[r], "all_to_all"), rd[r] = to_int(ro, "all_to_all");
      so += send_counts[r], ro += recv_counts[r];
    }
    MPI_Request req;
    begin("all_to_all");
    check(MPI_Ialltoallv(send, sc.data(), sd.data(), MPI_BYTE, recv, rc.data(), rd.data(), MPI_BYTE, comm_, &req), "MPI_Ialltoallv");
    wait(req, "all_to_all");
  }

 private:
  void reduce_scatter(const void* in, void* out, size_t n, MPI_Datatype type) {
    MPI_Request req;
    begin("reduce_scatter");
    check(MPI_Ireduce_scatter_block(in, out, to_int(n, "reduce_scatter"), type, MPI_SUM, comm_, &req), "MPI_Ireduce_scatter_block");
    wait(req, "reduce_scatter");
  }
  void all_reduce(void* data, size_t n, MPI_Datatype type) {
    int elem = 0;
    MPI_Type_size(type, &elem);
    auto* p = static_cast<char*>(data);
    while (n > 0) {
      size_t k = std::min(n, kMaxChunk);
      MPI_Request req;
      begin("all_reduce");
      check(MPI_Iallreduce(MPI_IN_PLACE, p, int(k), type, MPI_SUM, comm_, &req), "MPI_Iallreduce");
      wait(req, "all_reduce");
      p += k * size_t(elem), n -= k;
    }
  }

  void begin(const char* op) {
    if (failed_) throw CommError(std::string("mpi ") + op + ": an earlier collective failed on rank " + std::to_string(rank_) + "; the job cannot go on");
    ++sequence_;
  }

  void check(int rc, const char* call) {
    if (rc == MPI_SUCCESS) return;
    mark_failed();
    throw CommError(std::string(call) + " on rank " + std::to_string(rank_) + ": " + mpi_error_text(rc));
  }

  // Tests the request until it completes or the deadline passes. The first polls spin (a
  // collective between busy ranks completes in microseconds); then short sleeps leave the cores
  // to ranks still computing.
  // Open MPI progresses a non-blocking collective only inside MPI_Test: a large all-reduce is
  // many rounds, and a pause between tests delays every one of them (sleeping 50 us after the
  // first 2,000 tests made an 8 MB all-reduce 2.6 times slower than MPI_Allreduce). So the
  // wait spins, as the blocking call would, and only a rank left waiting longer than
  // kSpinFor (a peer still computing or writing a checkpoint) starts to sleep between tests.
  void wait(MPI_Request& req, const char* op) {
    static constexpr auto kSpinFor = std::chrono::milliseconds(200);
    const auto start = Clock::now();
    const auto deadline = start + timeout_;
    bool sleeping = false;
    for (long polls = 0;; ++polls) {
      int done = 0;
      int rc = MPI_Test(&req, &done, MPI_STATUS_IGNORE);
      if (rc != MPI_SUCCESS) {
        mark_failed();
        throw CommError("mpi " + std::string(op) + " (collective #" + std::to_string(sequence_) + ") failed on rank " +
                        std::to_string(rank_) + ": " + mpi_error_text(rc));
      }
      if (done) return;
      if ((polls & 255) == 255) {
        const auto now = Clock::now();
        if (now > deadline) throw timed_out(op);
        sleeping = now - start > kSpinFor;
      }
      if (sleeping) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  // Tells every rank this one arrived at collective #sequence_, listens for the others for a
  // moment, and names the ranks it never heard from.
  CommError timed_out(const char* op) {
    mark_failed();
    unsigned long long mine = sequence_;
    std::vector<MPI_Request> sends;
    for (int r = 0; r < size_; ++r) {
      if (r == rank_) continue;
      MPI_Request s;
      if (MPI_Isend(&mine, 1, MPI_UNSIGNED_LONG_LONG, r, kArrivedTag, watch_, &s) == MPI_SUCCESS) sends.push_back(s);
    }
    std::set<int> heard = {rank_};
    const auto listen_until = Clock::now() + std::min<std::chrono::milliseconds>(timeout_, std::chrono::seconds(3));
    while (Clock::now() < listen_until && int(heard.size()) < size_) {
      int flag = 0;
      MPI_Status st;
      if (MPI_Iprobe(MPI_ANY_SOURCE, kArrivedTag, watch_, &flag, &st) != MPI_SUCCESS) break;
      if (!flag) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        continue;
      }
      unsigned long long theirs = 0;
      MPI_Recv(&theirs, 1, MPI_UNSIGNED_LONG_LONG, st.MPI_SOURCE, kArrivedTag, watch_, MPI_STATUS_IGNORE);
      if (theirs == mine) heard.insert(st.MPI_SOURCE);
    }
    std::string missing;
    for (int r = 0; r < size_; ++r)
      if (!heard.count(r)) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
    double secs = std::chrono::duration<double>(timeout_).count();
    char limit[32];
    std::snprintf(limit, sizeof limit, "%g s", secs);
    std::string msg = "mpi " + std::string(op) + " (collective #" + std::to_string(sequence_) + ") timed out after " + limit +
                      " on rank " + std::to_string(rank_) + " of " + std::to_string(size_) + ": ";
    if (missing.empty())
      msg += "every rank arrived but the collective did not complete (transport stalled)";
    else
      msg += "rank " + missing + " never arrived (dead, stopped, or stuck outside the collective)";
    return CommError(msg);
  }

  void mark_failed() {
    failed_ = true;
    std::lock_guard lock(g_mpi_mutex);
    g_failed = true;
  }

  void free_comms() {
    if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
    if (watch_ != MPI_COMM_NULL) MPI_Comm_free(&watch_);
  }

  MPI_Comm comm_ = MPI_COMM_NULL, watch_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  std::chrono::milliseconds timeout_;
  unsigned long long sequence_ = 0;
  bool failed_ = false;
};

}  // namespace

std::unique_ptr<Communicator> open_mpi_communicator(int expected_size, int expected_rank, const CommOptions& options) {
  return std::make_unique<MpiCommunicator>(expected_size, expected_rank, options);
}

}  // namespace nemokit::rt
