// The NCCL backend of Communicator: one GPU per rank (LOCAL_RANK modulo the visible devices),
// rank 0's ncclUniqueId shared through the MASTER_ADDR/MASTER_PORT rendezvous the probe uses.
//
// The interface takes host spans today, so every collective stages through a device buffer:
// copy in and collective on one stream, their event waited for with a deadline, then copy out.
// Issue 16's device tensors will pass device pointers and skip the two copies.
//
// Timeouts: NCCL's own calls have none (a collective whose peer died spins on the GPU forever),
// so the communicator runs in NCCL's non-blocking mode and every wait polls the stream's event
// and ncclCommGetAsyncError until the deadline, then calls ncclCommAbort (the only way to free
// a GPU stuck in a collective) and throws CommError naming the collective, its number and this
// rank. NCCL cannot say which peer is missing, so the error names the candidates.
#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "nemokit/runtime/comm.hpp"
#include "nemokit/runtime/dist.hpp"

namespace nemokit::rt {
namespace {

using Clock = std::chrono::steady_clock;

std::string seconds_text(std::chrono::milliseconds t) {
  char s[32];
  std::snprintf(s, sizeof s, "%g s", std::chrono::duration<double>(t).count());
  return s;
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(const RankInfo& self, const CommOptions& options)
      : rank_(self.rank), size_(self.world_size), timeout_(options.timeout) {
    try {
      open(self);
    } catch (...) {
      release();  // the destructor does not run for a constructor that throws
      throw;
    }
  }

 private:
  void open(const RankInfo& self) {
    int devices = 0;
    cuda(cudaGetDeviceCount(&devices), "cudaGetDeviceCount");
    if (devices == 0) throw CommError("nccl: rank " + std::to_string(rank_) + ": no CUDA device visible");
    device_ = self.local_rank % devices;
    cuda(cudaSetDevice(device_), "cudaSetDevice");

    ncclUniqueId id;
    std::memset(&id, 0, sizeof id);
    if (rank_ == 0) nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    const std::string shared = broadcast_from_rank0(self, std::string(reinterpret_cast<const char*>(&id), sizeof id), timeout_);
    if (shared.size() != sizeof id)
      throw CommError("nccl: rank 0 sent a unique id of " + std::to_string(shared.size()) + " bytes, expected " +
                      std::to_string(sizeof id));
    std::memcpy(&id, shared.data(), sizeof id);

    cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    cuda(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming), "cudaEventCreateWithFlags");
    // Non-blocking: init and every collective return at once and are waited for here, with the
    // deadline, instead of inside NCCL without one.
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    nccl(ncclCommInitRankConfig(&comm_, size_, id, rank_, &config), "ncclCommInitRankConfig");
    wait_comm_ready("init");
  }

 public:
  ~NcclCommunicator() override { release(); }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }

  void all_reduce_sum(float* d, size_t n) override { all_reduce(d, n, sizeof(float), ncclFloat); }
  void all_reduce_sum(double* d, size_t n) override { all_reduce(d, n, sizeof(double), ncclDouble); }
  void all_reduce_sum(int64_t* d, size_t n) override { all_reduce(d, n, sizeof(int64_t), ncclInt64); }

  void reduce_scatter_sum(const float* in, float* out, size_t n) override {
    reduce_scatter(in, out, n, sizeof(float), ncclFloat);
  }
  void reduce_scatter_sum(const double* in, double* out, size_t n) override {
    reduce_scatter(in, out, n, sizeof(double), ncclDouble);
  }

  void all_gather(const float* in, float* out, size_t n) override {
    const char* op = "all_gather";
    begin(op);
    const size_t in_bytes = n * sizeof(float), out_bytes = in_bytes * size_t(size_);
    char* d = staging(in_bytes + out_bytes);
    to_device(d, in, in_bytes);
    nccl(ncclAllGather(d, d + in_bytes, n, ncclFloat, comm_, stream_), "ncclAllGather");
    finish(op);
    to_host(out, d + in_bytes, out_bytes);
  }

  void broadcast(void* data, size_t bytes, int root) override {
    if (root < 0 || root >= size_)
      throw std::invalid_argument("broadcast: root " + std::to_string(root) + " is not a rank of " + std::to_string(size_));
    const char* op = "broadcast";
    begin(op);
    char* d = staging(bytes);
    if (rank_ == root) to_device(d, data, bytes);
    nccl(ncclBroadcast(d, d, bytes, ncclChar, root, comm_, stream_), "ncclBroadcast");
    finish(op);
    to_host(data, d, bytes);
  }

  std::chrono::milliseconds set_timeout(std::chrono::milliseconds timeout) override { return std::exchange(timeout_, timeout); }

  void barrier() override {
    // NCCL has no barrier: a one-element all-reduce every rank must join is one.
    const char* op = "barrier";
    begin(op);
    char* d = staging(sizeof(float));
    cuda(cudaMemsetAsync(d, 0, sizeof(float), stream_), "cudaMemsetAsync");
    nccl(ncclAllReduce(d, d, 1, ncclFloat, ncclSum, comm_, stream_), "ncclAllReduce");
    finish(op);
  }

  // NCCL has no all-to-all with counts: grouped point-to-point sends and receives are how it is
  // done (one group, so every pair proceeds at once without ordering deadlocks).
  void all_to_all(const void* send, const size_t* send_counts, void* recv, const size_t* recv_counts) override {
    const char* op = "all_to_all";
    begin(op);
    size_t send_total = 0, recv_total = 0;
    for (int r = 0; r < size_; ++r) send_total += send_counts[r], recv_total += recv_counts[r];
    char* d = staging(send_total + recv_total);
    char* d_recv = d + send_total;
    to_device(d, send, send_total);
    nccl(ncclGroupStart(), "ncclGroupStart");
    size_t so = 0, ro = 0;
    for (int r = 0; r < size_; ++r) {
      if (send_counts[r]) nccl(ncclSend(d + so, send_counts[r], ncclChar, r, comm_, stream_), "ncclSend");
      if (recv_counts[r]) nccl(ncclRecv(d_recv + ro, recv_counts[r], ncclChar, r, comm_, stream_), "ncclRecv");
      so += send_counts[r], ro += recv_counts[r];
    }
    // In non-blocking mode ncclGroupEnd may answer ncclInProgress: nccl() waits for the enqueue.
    nccl(ncclGroupEnd(), "ncclGroupEnd");
    finish(op);
    to_host(recv, d_recv, recv_total);
  }

 private:
  void release() {
    if (comm_) {
      // Finalize flushes what is queued; a peer gone since then would keep it waiting, so it
      // gets the timeout too and is aborted after it.
      const ncclResult_t r = ncclCommFinalize(comm_);
      const bool clean = (r == ncclSuccess || r == ncclInProgress) && poll_async(Clock::now() + timeout_);
      if (clean)
        ncclCommDestroy(comm_);
      else
        ncclCommAbort(comm_);
      comm_ = nullptr;
    }
    if (done_) cudaEventDestroy(done_);
    if (stream_) cudaStreamDestroy(stream_);
    if (buffer_) cudaFree(buffer_);
    done_ = nullptr, stream_ = nullptr, buffer_ = nullptr, capacity_ = 0;
  }

  void all_reduce(void* data, size_t n, size_t elem, ncclDataType_t type) {
    const char* op = "all_reduce";
    begin(op);
    char* d = staging(n * elem);
    to_device(d, data, n * elem);
    nccl(ncclAllReduce(d, d, n, type, ncclSum, comm_, stream_), "ncclAllReduce");
    finish(op);
    to_host(data, d, n * elem);
  }

  void reduce_scatter(const void* in, void* out, size_t n, size_t elem, ncclDataType_t type) {
    const char* op = "reduce_scatter";
    begin(op);
    const size_t in_bytes = n * elem * size_t(size_), out_bytes = n * elem;
    char* d = staging(in_bytes + out_bytes);
    to_device(d, in, in_bytes);
    nccl(ncclReduceScatter(d, d + in_bytes, n, type, ncclSum, comm_, stream_), "ncclReduceScatter");
    finish(op);
    to_host(out, d + in_bytes, out_bytes);
  }

  void begin(const char* op) {
    if (failed_)
      throw CommError(std::string("nccl ") + op + ": an earlier collective failed on rank " + std::to_string(rank_) +
                      "; the job cannot go on");
    ++sequence_;
    // The calling thread may not be the one that opened the communicator.
    cuda(cudaSetDevice(device_), "cudaSetDevice");
  }

  // One device buffer grown to the largest collective: cudaMalloc per call would synchronize
  // the device every time.
  char* staging(size_t bytes) {
    bytes = std::max<size_t>(bytes, 1);
    if (bytes > capacity_) {
      if (buffer_) cuda(cudaFree(buffer_), "cudaFree");
      buffer_ = nullptr, capacity_ = 0;
      cuda(cudaMalloc(reinterpret_cast<void**>(&buffer_), bytes), "cudaMalloc");
      capacity_ = bytes;
    }
    return buffer_;
  }
  void to_device(void* d, const void* h, size_t bytes) {
    if (bytes) cuda(cudaMemcpyAsync(d, h, bytes, cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync (host to device)");
  }
  // After finish(): a copy into pageable host memory blocks the thread until the stream reaches
  // it, so queued behind a collective it would wait without the deadline.
  void to_host(void* h, const void* d, size_t bytes) {
    if (!bytes) return;
    cuda(cudaMemcpyAsync(h, d, bytes, cudaMemcpyDeviceToHost, stream_), "cudaMemcpyAsync (device to host)");
    cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }

  // Waits for everything queued on the stream (copies in, the collective, copies out) with the
  // deadline. The first polls spin (a collective between busy ranks is microseconds); a rank left
  // waiting longer sleeps between polls so the peers still computing keep their cores.
  void finish(const char* op) {
    cuda(cudaEventRecord(done_, stream_), "cudaEventRecord");
    const auto start = Clock::now(), deadline = start + timeout_;
    for (long polls = 0;; ++polls) {
      cudaError_t e = cudaEventQuery(done_);
      if (e == cudaSuccess) return;
      if (e != cudaErrorNotReady) {
        fail_and_abort();
        throw CommError("nccl " + std::string(op) + " (collective #" + std::to_string(sequence_) + ") on rank " +
                        std::to_string(rank_) + ": cudaEventQuery: " + cudaGetErrorString(e));
      }
      ncclResult_t state = ncclSuccess;
      ncclCommGetAsyncError(comm_, &state);
      if (state != ncclSuccess && state != ncclInProgress) {
        fail_and_abort();
        throw CommError("nccl " + std::string(op) + " (collective #" + std::to_string(sequence_) + ") failed on rank " +
                        std::to_string(rank_) + ": " + ncclGetErrorString(state) + described(state));
      }
      const auto now = Clock::now();
      if (now > deadline) throw timed_out(op);
      if (now - start > std::chrono::milliseconds(200)) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  // Init in non-blocking mode completes when the async error leaves ncclInProgress.
  void wait_comm_ready(const char* op) {
    ncclResult_t state = ncclInProgress;
    const auto deadline = Clock::now() + timeout_;
    while (true) {
      nccl_raw(ncclCommGetAsyncError(comm_, &state), "ncclCommGetAsyncError");
      if (state == ncclSuccess) return;
      if (state != ncclInProgress) {
        fail_and_abort();
        throw CommError("nccl " + std::string(op) + " on rank " + std::to_string(rank_) + ": " + ncclGetErrorString(state) +
                        described(state));
      }
      if (Clock::now() > deadline) throw timed_out(op);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  // Polls a finalize until it settles; false on an error or when the deadline passes.
  bool poll_async(Clock::time_point deadline) {
    ncclResult_t state = ncclInProgress;
    while (Clock::now() < deadline) {
      if (ncclCommGetAsyncError(comm_, &state) != ncclSuccess) return false;
      if (state == ncclSuccess) return true;
      if (state != ncclInProgress) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }

  CommError timed_out(const char* op) {
    fail_and_abort();
    std::string others;
    for (int r = 0; r < size_; ++r)
      if (r != rank_) others += (others.empty() ? "" : ", ") + std::to_string(r);
    std::string who = size_ == 2 ? "rank " + others + " never arrived or stalled"
                                 : "one of ranks " + others + " never arrived or stalled (NCCL cannot tell which)";
    return CommError("nccl " + std::string(op) + " (collective #" + std::to_string(sequence_) + ") timed out after " +
                     seconds_text(timeout_) + " on rank " + std::to_string(rank_) + " of " + std::to_string(size_) + ": " + who +
                     "; the communicator was aborted");
  }

  std::string described(ncclResult_t state) const {
    if (state == ncclRemoteError) return " (a peer rank failed or went away)";
    if (state == ncclSystemError) return " (a system call or the network failed)";
    return "";
  }

  void fail_and_abort() {
    if (failed_) return;
    failed_ = true;
    // Abort, not destroy: destroy would wait for the collective that cannot complete.
    if (comm_) ncclCommAbort(comm_);
    comm_ = nullptr;
  }

  void cuda(cudaError_t e, const char* call) {
    if (e == cudaSuccess) return;
    fail_and_abort();
    throw CommError(std::string("nccl backend on rank ") + std::to_string(rank_) + ": " + call + ": " + cudaGetErrorString(e));
  }
  // ncclInProgress is a normal answer in non-blocking mode: the call is still being enqueued,
  // and nothing may follow it on the stream until it is (NCCL's rule), so it is waited for here,
  // under the deadline.
  void nccl(ncclResult_t e, const char* call) {
    if (e == ncclSuccess) return;
    if (e != ncclInProgress) nccl_raw(e, call);
    const auto deadline = Clock::now() + timeout_;
    ncclResult_t state = ncclInProgress;
    while (true) {
      nccl_raw(ncclCommGetAsyncError(comm_, &state), "ncclCommGetAsyncError");
      if (state == ncclSuccess) return;
      if (state != ncclInProgress) nccl_raw(state, call);
      if (Clock::now() > deadline) throw timed_out(call);
      std::this_thread::yield();
    }
  }
  void nccl_raw(ncclResult_t e, const char* call) {
    if (e == ncclSuccess) return;
    std::string why = std::string(call) + ": " + ncclGetErrorString(e) + described(e);
    if (comm_) {
      const char* last = ncclGetLastError(comm_);
      if (last && *last) why += " (" + std::string(last) + ")";
    }
    fail_and_abort();
    throw CommError("nccl backend on rank " + std::to_string(rank_) + " (collective #" + std::to_string(sequence_) + "): " + why);
  }

  int rank_ = 0, size_ = 1, device_ = 0;
  std::chrono::milliseconds timeout_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t done_ = nullptr;
  char* buffer_ = nullptr;
  size_t capacity_ = 0;
  unsigned long long sequence_ = 0;
  bool failed_ = false;
};

}  // namespace
}  // namespace nemokit::rt

// The module's entry point, opened by name from src/dist/cuda_module.cpp. Errors come back as
// text: an exception must not cross the dlopen boundary.
extern "C" __attribute__((visibility("default"))) void nemokit_rt_cuda_open_nccl_communicator(
    const nemokit::rt::RankInfo* self, const nemokit::rt::CommOptions* options, std::unique_ptr<nemokit::rt::Communicator>* out,
    std::string* error) {
  try {
    *out = std::make_unique<nemokit::rt::NcclCommunicator>(*self, *options);
  } catch (const std::exception& e) {
    *error = e.what();
  }
}
