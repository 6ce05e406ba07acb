#pragma once

#include <filesystem>
#include <string>

namespace nemokit {

// Copies what a growing log file gains to a descriptor: each pump() writes the bytes added since
// the last one. A file that does not exist yet is simply empty.
class LogTail {
 public:
  LogTail(std::filesystem::path file, int to_fd) : file_(std::move(file)), fd_(to_fd) {}
  size_t pump();  // bytes copied
  const std::filesystem::path& file() const { return file_; }

 private:
  std::filesystem::path file_;
  int fd_;
  long long offset_ = 0;
};

}  // namespace nemokit
