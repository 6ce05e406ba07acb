#pragma once
// A cgroup v2 group per sandbox with memory.max and pids.max, when the host lets this process
// make one (a delegated subtree with the memory and pids controllers); otherwise the sandbox
// falls back to rlimits (README.md in src/env says which limits hold then).

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace nemokit::rl::code {

class Cgroup {
 public:
  // nullptr (and `why_not` says why) when no usable cgroup v2 hierarchy is available.
  static std::unique_ptr<Cgroup> create(uint64_t memory_bytes, int max_processes, std::string& why_not);
  ~Cgroup();
  // Moves the calling process (and so everything it starts) into the group. For a forked child.
  bool enter() const;

 private:
  explicit Cgroup(std::filesystem::path dir) : dir_(std::move(dir)) {}
  std::filesystem::path dir_;
};

}  // namespace nemokit::rl::code
