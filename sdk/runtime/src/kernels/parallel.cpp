#include "nemokit/runtime/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace nemokit::rt {
namespace {

thread_local bool in_worker = false;

// One job at a time: the caller publishes fn and a generation number, workers take their
// fixed slice, and the caller runs slice 0 itself. Kernels issue many short jobs, so both
// sides poll briefly (yielding the core between polls) before sleeping on the condition
// variable: a busy pool skips most wake-up latency, and on an oversubscribed machine the
// polling thread hands its core to the thread it waits for instead of holding it.
class Pool {
 public:
  explicit Pool(int threads) { resize(threads); }
  ~Pool() { stop(); }

  int size() const { return threads_; }

  void resize(int threads) {
    stop();
    threads_ = std::max(1, threads);
    quit_ = false;
    for (int i = 1; i < threads_; ++i) workers_.emplace_back([this, i] { loop(i); });
  }

  void run(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
    std::lock_guard<std::mutex> serial(run_mutex_);
    job_ = &fn;
    n_ = n;
    pending_.store(threads_ - 1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    in_worker = true;
    slice(0);
    in_worker = false;
    spin_until([this] { return pending_.load(std::memory_order_acquire) == 0; });
    if (pending_.load(std::memory_order_acquire) != 0) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
    }
    job_ = nullptr;
  }

 private:
  // Polls `ready` for up to ~50 microseconds, giving the core away between polls (the thread
  // waited for may be runnable without a core of its own); the caller then sleeps.
  template <class Ready> static void spin_until(Ready ready) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
    for (int i = 0;; ++i) {
      if (ready()) return;
      std::this_thread::yield();
      if ((i & 15) == 15 && std::chrono::steady_clock::now() > deadline) return;
    }
  }

  void slice(int index) {
    int64_t per = (n_ + threads_ - 1) / threads_;
    int64_t begin = std::min<int64_t>(n_, per * index);
    int64_t end = std::min<int64_t>(n_, begin + per);
    if (begin < end) (*job_)(begin, end);
  }

  void loop(int index) {
    in_worker = true;
    uint64_t seen = 0;
    for (;;) {
      spin_until([&] { return quit_ || generation_.load(std::memory_order_acquire) != seen; });
      if (generation_.load(std::memory_order_acquire) == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return quit_ || generation_.load(std::memory_order_acquire) != seen; });
      }
      if (quit_) return;
      seen = generation_.load(std::memory_order_acquire);
      slice(index);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mutex_);
        done_.notify_one();
      }
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      quit_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  int threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_, mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t n_ = 0;
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> quit_{false};
};

int default_threads() {
  if (const char* env = std::getenv("NEMOKIT_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

Pool& pool() {
  static Pool instance(default_threads());
  return instance;
}

}  // namespace

int num_threads() { return pool().size(); }

void set_num_threads(int threads) {
  if (threads != pool().size()) pool().resize(threads);
}

void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (in_worker || pool().size() == 1 || n == 1) {
    fn(0, n);
    return;
  }
  pool().run(n, fn);
}

}  // namespace nemokit::rt
