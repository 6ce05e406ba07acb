#include "nemokit/runtime/fd_io.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

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

}  // namespace nemokit::rt
