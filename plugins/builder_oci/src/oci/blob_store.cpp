#include "nemokit/oci/blob_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "nemokit/oci/error.hpp"

namespace nemokit::oci {

std::optional<std::string> normalize_member_path(const std::string& path) {
  if (path.empty() || path[0] == '/') return std::nullopt;
  std::string out;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string part = path.substr(i, j - i);
    i = j + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") return std::nullopt;
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

void read_exact_at(int fd, uint64_t offset, void* buf, size_t size, const std::string& what) {
  auto p = static_cast<char*>(buf);
  while (size > 0) {
    ssize_t n = ::pread(fd, p, size, off_t(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(what + ": read failed: " + std::strerror(errno));
    }
    if (n == 0) throw Error(what + ": file is truncated");
    p += n;
    size -= size_t(n);
    offset += uint64_t(n);
  }
}

std::string BlobStore::read_text(const std::string& relpath, uint64_t max_size) const {
  auto range = find(relpath);
  if (!range) throw Error(describe() + ": missing " + relpath);
  if (range->size > max_size) throw Error(range->name + ": unexpectedly large (" + std::to_string(range->size) + " bytes)");
  int fd = ::open(range->file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(range->name + ": " + std::strerror(errno));
  std::string text(range->size, '\0');
  try {
    read_exact_at(fd, range->offset, text.data(), text.size(), range->name);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  return text;
}

namespace {

class DirectoryStore : public BlobStore {
 public:
  explicit DirectoryStore(std::filesystem::path dir) : dir_(std::move(dir)) {}

  std::optional<BlobRange> find(const std::string& relpath) const override {
    auto norm = normalize_member_path(relpath);
    if (!norm) throw Error(describe() + ": path leaves the image root: " + relpath);
    auto full = dir_ / *norm;
    // A blob reached through a symlink could point anywhere on this machine.
    struct stat st;
    if (::lstat(full.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    return BlobRange{full, 0, uint64_t(st.st_size), full.string()};
  }
  std::string describe() const override { return dir_.string(); }

 private:
  std::filesystem::path dir_;
};

}  // namespace

std::unique_ptr<BlobStore> open_directory_store(const std::filesystem::path& dir) {
  return std::make_unique<DirectoryStore>(dir);
}

}  // namespace nemokit::oci
