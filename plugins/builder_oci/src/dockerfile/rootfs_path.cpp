#include "nemokit/dockerfile/rootfs_path.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <vector>

#include "nemokit/dockerfile/dockerfile.hpp"

namespace nemokit::dockerfile {
namespace fs = std::filesystem;

namespace {

std::deque<std::string> components(const std::string& path) {
  std::deque<std::string> out;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string c = path.substr(i, j - i);
    if (!c.empty() && c != ".") out.push_back(c);
    i = j + 1;
  }
  return out;
}

}  // namespace

bool clean_relative(const std::string& path, std::string& out) {
  std::vector<std::string> parts;
  for (auto& c : components(path)) {
    if (c == "..") {
      if (parts.empty()) return false;
      parts.pop_back();
    } else {
      parts.push_back(c);
    }
  }
  out.clear();
  for (auto& p : parts) out += (out.empty() ? "" : "/") + p;
  return true;
}

namespace {

// Resolves a path inside root one component at a time, following symlinks as the container
// would. It keeps the host path of what is resolved so far, so each component costs one lstat
// whatever the depth (re-resolving every prefix from the root made `mkdir -p` of a deep path
// cubic in its depth).
class InRootWalk {
 public:
  InRootWalk(const fs::path& root, const std::string& whole) : root_(root), whole_(whole) { reset(); }

  // Resolves `component` below what is resolved so far; a symlink it names (or finds on the
  // way) is followed, except one that comes last when `follow_last` is false.
  void step(std::string component, bool follow_last) {
    todo_.push_back(std::move(component));
    while (!todo_.empty()) {
      std::string c = std::move(todo_.front());
      todo_.pop_front();
      if (c == "..") {
        if (!ends_.empty()) {
          ends_.pop_back();
          host_.resize(ends_.empty() ? root_length_ : ends_.back());
        }
        continue;
      }
      std::string candidate = host_ + (host_.ends_with('/') ? "" : "/") + c;
      struct stat st;
      bool last = todo_.empty();
      if (lstat(candidate.c_str(), &st) == 0 && S_ISLNK(st.st_mode) && (!last || follow_last)) {
        if (++links_ > 255) throw BuildError(whole_ + ": too many levels of symbolic links");
        std::vector<char> buf(static_cast<size_t>(st.st_size) + 1 + 4096);
        ssize_t n = readlink(candidate.c_str(), buf.data(), buf.size() - 1);
        if (n < 0) throw BuildError(candidate + ": readlink: " + std::strerror(errno));
        std::string target(buf.data(), size_t(n));
        auto parts = components(target);
        if (!target.empty() && target[0] == '/') reset();
        for (auto it = parts.rbegin(); it != parts.rend(); ++it) todo_.push_front(*it);
        continue;
      }
      host_ = std::move(candidate);
      ends_.push_back(host_.size());
    }
  }

  fs::path host() const { return ends_.empty() ? root_ : fs::path(host_); }

 private:
  void reset() {
    host_ = root_.string();
    root_length_ = host_.size();
    ends_.clear();
  }

  fs::path root_;
  std::string whole_;  // the path being resolved, for messages
  std::string host_;   // root, then each resolved component
  size_t root_length_ = 0;
  std::vector<size_t> ends_;  // host_'s length after each resolved component
  std::deque<std::string> todo_;
  int links_ = 0;
};

}  // namespace

fs::path resolve_in_root(const fs::path& root, const std::string& path, bool follow_last) {
  InRootWalk walk(root, path);
  auto parts = components(path);
  for (size_t i = 0; i < parts.size(); ++i) walk.step(parts[i], follow_last || i + 1 < parts.size());
  return walk.host();
}

fs::path mkdir_in_root(const fs::path& root, const std::string& path, unsigned uid, unsigned gid) {
  InRootWalk walk(root, path);
  std::string sofar;
  for (auto& c : components(path)) {
    sofar += "/" + c;
    walk.step(c, true);
    fs::path p = walk.host();
    struct stat st;
    if (lstat(p.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) throw BuildError(sofar + " exists and is not a folder");
      continue;
    }
    if (mkdir(p.c_str(), 0755) != 0 && errno != EEXIST) throw BuildError("mkdir " + sofar + ": " + std::strerror(errno));
    if (chown(p.c_str(), uid, gid) != 0) throw BuildError("chown " + sofar + ": " + std::strerror(errno));
  }
  return walk.host();
}

}  // namespace nemokit::dockerfile
