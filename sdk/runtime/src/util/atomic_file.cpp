#include "nemokit/runtime/atomic_file.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace nemokit::rt {
namespace fs = std::filesystem;

static std::runtime_error io_error(const std::string& what, const std::string& path) {
  return std::runtime_error(path + ": " + what + ": " + std::strerror(errno));
}

void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw io_error("cannot open for fsync", path);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw io_error("fsync failed", path);
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw io_error("cannot create", tmp);
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw io_error("write failed", tmp);
    }
    done += size_t(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw io_error("cannot flush", tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    throw io_error("cannot rename into place", path);
  }
  fs::path parent = fs::path(path).parent_path();
  fsync_path(parent.empty() ? "." : parent.string());
}

void replace_dir_atomic(const std::string& tmp_dir, const std::string& final_dir) {
  fsync_path(tmp_dir);
  if (fs::exists(final_dir)) {
    // Swap both names in one step; the old contents end up under tmp_dir and go away.
    if (::renameat2(AT_FDCWD, tmp_dir.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_EXCHANGE) != 0)
      throw io_error("cannot swap into place", final_dir);
    std::error_code ec;
    fs::remove_all(tmp_dir, ec);
  } else if (::rename(tmp_dir.c_str(), final_dir.c_str()) != 0) {
    throw io_error("cannot rename into place", final_dir);
  }
  fs::path parent = fs::path(final_dir).parent_path();
  fsync_path(parent.empty() ? "." : parent.string());
}

}  // namespace nemokit::rt
