#pragma once

#include <signal.h>

#include <initializer_list>
#include <vector>

namespace nemokit {

// Turns signals into bytes on a pipe that a poll() loop can wait on, while alive. A handler (a
// process-wide disposition) rather than a blocked mask + signalfd: libraries may have started
// threads of their own (a BLAS thread pool at load time), and a signal blocked only in this
// thread would reach one of those and end the process. One SignalPipe at a time.
class SignalPipe {
 public:
  explicit SignalPipe(std::initializer_list<int> signals);
  ~SignalPipe();
  SignalPipe(const SignalPipe&) = delete;
  SignalPipe& operator=(const SignalPipe&) = delete;

  int fd() const { return read_fd_; }
  // The signals received since the last call, in order (never blocks).
  std::vector<int> take();
  // Waits up to `ms` for a signal; returns it, or 0.
  int wait(int ms);

 private:
  int read_fd_ = -1, write_fd_ = -1;
  std::vector<std::pair<int, struct sigaction>> saved_;
};

}  // namespace nemokit
