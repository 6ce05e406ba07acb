#include "nemokit/runtime/data/durable_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace nemokit::rt {
namespace {

std::runtime_error sys_error(const std::filesystem::path& path, const char* what) {
  return std::runtime_error(path.string() + ": " + what + ": " + std::strerror(errno));
}

void fsync_path(const std::filesystem::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) throw sys_error(path, "cannot open to sync");
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  errno = saved;
  // Some filesystems refuse fsync on folders; the rename is still atomic there.
  if (rc != 0 && !(flags & O_DIRECTORY && (errno == EINVAL || errno == EROFS)))
    throw sys_error(path, "fsync failed");
}

}  // namespace

std::filesystem::path temp_path_beside(const std::filesystem::path& final_path) {
  static std::atomic<unsigned long> counter{0};
  std::filesystem::path tmp = final_path;
  tmp += ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  return tmp;
}

void write_all(int fd, const void* bytes, size_t size, const std::filesystem::path& path) {
  const auto* p = static_cast<const char*>(bytes);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw sys_error(path, "write failed");
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
}

void commit_temp_file(const std::filesystem::path& tmp, const std::filesystem::path& final_path) {
  fsync_path(tmp, O_RDONLY);
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) throw sys_error(final_path, "rename failed");
  std::filesystem::path dir = final_path.parent_path();
  fsync_path(dir.empty() ? std::filesystem::path(".") : dir, O_RDONLY | O_DIRECTORY);
}

void write_file_atomically(const std::filesystem::path& path, std::string_view contents) {
  const auto tmp = temp_path_beside(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw sys_error(tmp, "cannot create");
  try {
    write_all(fd, contents.data(), contents.size(), tmp);
    const int rc = ::close(fd);
    fd = -1;
    if (rc != 0) throw sys_error(tmp, "close failed");
    commit_temp_file(tmp, path);
  } catch (...) {
    if (fd >= 0) ::close(fd);
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw;
  }
}

}  // namespace nemokit::rt
