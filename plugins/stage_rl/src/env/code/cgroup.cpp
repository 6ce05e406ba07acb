#include "env/code/cgroup.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

namespace nemokit::rl::code {
namespace fs = std::filesystem;

namespace {
std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

bool has_word(const std::string& list, const std::string& word) {
  std::stringstream ss(list);
  std::string w;
  while (ss >> w)
    if (w == word) return true;
  return false;
}
}  // namespace

std::unique_ptr<Cgroup> Cgroup::create(uint64_t memory_bytes, int max_processes, std::string& why_not) {
  // Pure v2 (/sys/fs/cgroup) or the hybrid layout's unified hierarchy.
  fs::path mount;
  for (const char* m : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"})
    if (fs::exists(fs::path(m) / "cgroup.controllers")) {
      mount = m;
      break;
    }
  if (mount.empty()) return why_not = "no cgroup v2 hierarchy", nullptr;
  std::string self, line;
  std::ifstream in("/proc/self/cgroup");
  while (std::getline(in, line))
    if (line.rfind("0::", 0) == 0) self = line.substr(3);
  if (self.empty()) return why_not = "this process is in no cgroup v2 group", nullptr;
  fs::path parent = mount / fs::path(self).relative_path();
  static std::atomic<unsigned> counter{0};
  fs::path dir = parent / ("nemokit-rl-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
  std::error_code ec;
  if (!fs::create_directory(dir, ec)) return why_not = "cannot make " + dir.string() + ": " + ec.message(), nullptr;
  std::unique_ptr<Cgroup> g(new Cgroup(dir));
  std::string controllers = read_file(dir / "cgroup.controllers");
  if (!has_word(controllers, "memory") || !has_word(controllers, "pids"))
    return why_not = parent.string() + " does not delegate the memory and pids controllers", nullptr;
  if (!write_file(dir / "memory.max", std::to_string(memory_bytes)) ||
      !write_file(dir / "pids.max", std::to_string(max_processes)))
    return why_not = "cannot set the limits of " + dir.string(), nullptr;
  if (fs::exists(dir / "memory.swap.max")) write_file(dir / "memory.swap.max", "0");
  return g;
}

bool Cgroup::enter() const { return write_file(dir_ / "cgroup.procs", "0"); }

Cgroup::~Cgroup() {
  // The group empties a moment after its last process is reaped.
  for (int i = 0; i < 50; ++i) {
    std::error_code ec;
    if (fs::remove(dir_, ec) || !fs::exists(dir_)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace nemokit::rl::code
