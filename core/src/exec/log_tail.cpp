#include "exec/log_tail.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "nemokit/runtime/fd_io.hpp"

namespace nemokit {

size_t LogTail::pump() {
  int fd = ::open(file_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  size_t copied = 0;
  char buf[65536];
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, offset_);
    if (n <= 0) break;
    rt::write_all(fd_, buf, static_cast<size_t>(n));
    offset_ += n;
    copied += static_cast<size_t>(n);
  }
  ::close(fd);
  return copied;
}

}  // namespace nemokit
