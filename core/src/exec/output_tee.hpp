#pragma once

#include <filesystem>
#include <thread>

namespace nemokit {

// While alive, everything this process writes to stdout and stderr (its own code, plugins,
// printf or iostreams) also goes to a log file, appended. Lets a stage that runs in this process
// leave its log in the job folder like the ranks started as separate processes do.
class OutputTee {
 public:
  explicit OutputTee(const std::filesystem::path& log_file);
  ~OutputTee();
  OutputTee(const OutputTee&) = delete;
  OutputTee& operator=(const OutputTee&) = delete;

 private:
  int saved_out_ = -1, saved_err_ = -1, log_fd_ = -1;
  int out_read_ = -1, err_read_ = -1;
  std::thread pump_;
};

}  // namespace nemokit
