#include "nemokit/runtime/fd_io.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace nemokit::rt {

bool write_all(int fd, const void* bytes, size_t size) noexcept {
  const auto* p = static_cast<const char*>(bytes);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return false;
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

void write_all(int fd, const void* bytes, size_t size, const std::filesystem::path& path) {
  if (!write_all(fd, bytes, size)) throw std::runtime_error(path.string() + ": write failed: " + std::strerror(errno));
}

void pump_until_eof(std::span<const int> fds, const PumpSink& sink) {
  std::vector<pollfd> polled;
  for (int fd : fds) polled.push_back({fd, POLLIN, 0});
  size_t open_fds = polled.size();
  char buf[65536];
  while (open_fds > 0) {
    if (::poll(polled.data(), polled.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (size_t i = 0; i < polled.size(); ++i) {
      if (polled[i].fd < 0 || !(polled[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::read(polled[i].fd, buf, sizeof buf);
      if (n > 0) {
        sink(i, buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        polled[i].fd = -1;  // poll() skips negative descriptors
        --open_fds;
      }
    }
  }
}

}  // namespace nemokit::rt
