#include "nemokit/runtime/atomic_file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>

namespace nemokit::rt {
namespace fs = std::filesystem;

namespace {

// "<path>: <what>: <strerror(errno)>"
std::runtime_error sys_error(const fs::path& path, const std::string& what) {
  return std::runtime_error(path.string() + ": " + what + ": " + std::strerror(errno));
}

fs::path folder_of(const fs::path& path) {
  fs::path dir = path.parent_path();
  return dir.empty() ? fs::path(".") : dir;
}

// Renames `tmp` (already on disk) over `final_path`, then makes the new folder entry durable.
void rename_into_place(const fs::path& tmp, const fs::path& final_path) {
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) throw sys_error(final_path, "cannot rename into place");
  fsync_path(folder_of(final_path));
}

}  // namespace

void fsync_path(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw sys_error(path, "cannot open to sync");
  struct stat st {};
  const bool is_dir = ::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  errno = saved;
  // Some filesystems refuse fsync on folders; the rename is still atomic there.
  if (rc != 0 && !(is_dir && (errno == EINVAL || errno == EROFS))) throw sys_error(path, "fsync failed");
}

fs::path temp_path_beside(const fs::path& final_path) {
  static std::atomic<unsigned long> counter{0};
  fs::path tmp = final_path;
  tmp += ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  return tmp;
}

namespace {

// The process that owns a temp_path_beside() name "NAME.tmp-PID-N", or 0 for any other name.
pid_t temporary_owner(const std::string& name) {
  const auto at = name.rfind(".tmp-");
  if (at == std::string::npos) return 0;
  const std::string rest = name.substr(at + 5);
  const auto dash = rest.find('-');
  if (dash == 0 || dash > 9 || dash + 1 >= rest.size() || rest.find_first_not_of("0123456789-") != std::string::npos ||
      rest.find('-', dash + 1) != std::string::npos)
    return 0;
  return pid_t(std::stol(rest.substr(0, dash)));
}

}  // namespace

void remove_dead_temporaries(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const pid_t owner = temporary_owner(e.path().filename().string());
    std::error_code ignored;
    if (owner > 0 && ::kill(owner, 0) != 0 && errno == ESRCH) fs::remove(e.path(), ignored);
  }
}

void commit_temp_file(const fs::path& tmp, const fs::path& final_path) {
  fsync_path(tmp);
  rename_into_place(tmp, final_path);
}

void write_file_atomic(const fs::path& path, std::string_view bytes, unsigned mode) {
  const fs::path dir = folder_of(path);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error(dir.string() + ": cannot create folder: " + ec.message());

  const fs::path tmp = temp_path_beside(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) throw sys_error(tmp, "cannot create");
  try {
    write_all(fd, bytes.data(), bytes.size(), tmp);
    // open() applied the umask; the file gets `mode` as asked (0600 secrets, 0755 scripts).
    if (::fchmod(fd, mode) != 0) throw sys_error(tmp, "cannot set its mode");
    if (::fsync(fd) != 0) throw sys_error(tmp, "fsync failed");
    const int rc = ::close(fd);
    fd = -1;
    if (rc != 0) throw sys_error(tmp, "close failed");
    rename_into_place(tmp, path);
  } catch (...) {
    if (fd >= 0) ::close(fd);
    std::error_code ignored;
    fs::remove(tmp, ignored);  // gone already when only the folder fsync failed
    throw;
  }
}

void replace_dir_atomic(const fs::path& tmp_dir, const fs::path& final_dir) {
  fsync_path(tmp_dir);
  if (fs::exists(final_dir)) {
    // Swap both names in one step; the old contents end up under tmp_dir and go away.
    if (::renameat2(AT_FDCWD, tmp_dir.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_EXCHANGE) != 0)
      throw sys_error(final_dir, "cannot swap into place");
    std::error_code ec;
    fs::remove_all(tmp_dir, ec);
  } else if (::rename(tmp_dir.c_str(), final_dir.c_str()) != 0) {
    throw sys_error(final_dir, "cannot rename into place");
  }
  fsync_path(folder_of(final_dir));
}

fs::path fresh_temp_dir(const fs::path& final_dir) {
  std::string tmp = final_dir.lexically_normal().string();
  while (tmp.size() > 1 && tmp.back() == '/') tmp.pop_back();
  tmp += ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) throw std::runtime_error(tmp + ": cannot create the folder: " + ec.message());
  return tmp;
}

namespace {

// "<host>-<pid>-": whose temporary an AtomicOutput is, so that a later writer of the same file can
// tell one a killed process left from one a live process (maybe on another node of a shared
// file system) is still writing.
std::string owner_tag() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || !host[0]) std::strcpy(host, "localhost");
  for (char* c = host; *c; ++c)
    if (*c == '-' || *c == '/') *c = '_';
  return std::string(host) + "-" + std::to_string(::getpid()) + "-";
}

// Removes ".<name>.partial-<this host>-<pid>-XXXXXX" files of processes that are gone: a
// killed build leaves a partial squashfs of gigabytes that nothing else would ever remove.
void remove_dead_partials(const fs::path& dir, const std::string& name) {
  const std::string own = owner_tag();
  const std::string prefix = "." + name + ".partial-" + own.substr(0, own.find('-') + 1);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.size() <= prefix.size() || n.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string rest = n.substr(prefix.size());  // <pid>-XXXXXX
    const auto dash = rest.find('-');
    if (dash == 0 || dash == std::string::npos || dash > 9 || rest.find_first_not_of("0123456789") != dash) continue;
    const pid_t pid = pid_t(std::stol(rest.substr(0, dash)));
    std::error_code ignored;
    if (::kill(pid, 0) != 0 && errno == ESRCH) fs::remove(e.path(), ignored);
  }
}

}  // namespace

AtomicOutput::AtomicOutput(fs::path dest) : dest_(std::move(dest)) {
  const fs::path dir = folder_of(dest_);
  remove_dead_partials(dir, dest_.filename().string());
  std::string pattern = (dir / ("." + dest_.filename().string() + ".partial-" + owner_tag() + "XXXXXX")).string();
  const int fd = ::mkstemp(pattern.data());
  if (fd < 0) throw sys_error(dest_, "cannot create a file in " + dir.string());
  ::fchmod(fd, 0644);  // mkstemp creates 0600; the result is an ordinary shared file
  ::close(fd);
  temp_ = pattern;
}

AtomicOutput::~AtomicOutput() {
  if (!committed_) ::unlink(temp_.c_str());
}

void AtomicOutput::commit() {
  commit_temp_file(temp_, dest_);
  committed_ = true;
}

}  // namespace nemokit::rt
