// Writing a tokenizer back out: the JSON document and the atomic file write.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "tokenizer_impl.hpp"

namespace nemokit::rt {
namespace tok {

void write_file_atomically(const std::filesystem::path& path, std::string_view data) {
  const auto fail = [&](const std::string& what) {
    throw std::runtime_error(path.string() + ": " + what + ": " + std::strerror(errno));
  };
  const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  std::string tmpl = (dir / ("." + path.filename().string() + ".tmp.XXXXXX")).string();
  const int fd = ::mkstemp(tmpl.data());
  if (fd < 0) fail("cannot create a temporary file beside it");
  auto cleanup = [&] {
    ::close(fd);
    ::unlink(tmpl.c_str());
  };
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      cleanup();
      errno = err;
      fail("write failed");
    }
    done += size_t(n);
  }
  // mkstemp creates 0600; a tokenizer is an ordinary shared file.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd, 0666 & ~mask);
  if (::fsync(fd) != 0) {
    const int err = errno;
    cleanup();
    errno = err;
    fail("fsync failed");
  }
  ::close(fd);
  if (::rename(tmpl.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmpl.c_str());
    errno = err;
    fail("rename failed");
  }
  // The rename is only durable once the folder entry is on disk too.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace tok

std::string Tokenizer::to_json() const { return impl_->json.dump(2, ' ', false) + "\n"; }

void Tokenizer::save(const std::filesystem::path& path) const {
  tok::write_file_atomically(path, to_json());
}

}  // namespace nemokit::rt
