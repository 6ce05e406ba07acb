#include "exec/signal_pipe.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace nemokit {

namespace {
volatile sig_atomic_t g_write_fd = -1;

extern "C" void on_signal(int sig) {
  int saved = errno;
  unsigned char b = static_cast<unsigned char>(sig);
  if (g_write_fd >= 0) (void)!::write(g_write_fd, &b, 1);
  errno = saved;
}
}  // namespace

SignalPipe::SignalPipe(std::initializer_list<int> signals) {
  int p[2];
  if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  read_fd_ = p[0];
  write_fd_ = p[1];
  g_write_fd = write_fd_;
  for (int sig : signals) {
    struct sigaction sa {}, old {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | (sig == SIGCHLD ? SA_NOCLDSTOP : 0);
    sigaction(sig, &sa, &old);
    saved_.emplace_back(sig, old);
  }
}

SignalPipe::~SignalPipe() {
  for (auto& [sig, old] : saved_) sigaction(sig, &old, nullptr);
  g_write_fd = -1;
  close(read_fd_);
  close(write_fd_);
}

std::vector<int> SignalPipe::take() {
  std::vector<int> out;
  unsigned char buf[64];
  for (;;) {
    ssize_t n = ::read(read_fd_, buf, sizeof buf);
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) out.push_back(buf[i]);
  }
  return out;
}

int SignalPipe::wait(int ms) {
  pollfd p{read_fd_, POLLIN, 0};
  if (poll(&p, 1, ms) <= 0) return 0;
  std::vector<int> got = take();
  return got.empty() ? 0 : got.front();
}

}  // namespace nemokit
