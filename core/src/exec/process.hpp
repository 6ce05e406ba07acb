#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace nemokit {

struct CommandResult {
  int exit_code = -1;   // 128+N when a signal N ended it
  std::string out, err;
};

// Runs argv[0] (looked up on PATH) without a shell and collects its output. Throws
// std::runtime_error naming the program when it cannot be started.
CommandResult run_command(const std::vector<std::string>& argv);

// The absolute path of the running nemokit binary (/proc/self/exe).
std::filesystem::path self_executable();

// True when `program` is found on PATH.
bool on_path(const std::string& program);

// 128+N for a process that a signal N ended, else its exit status.
int exit_code_of_wait_status(int status);

}  // namespace nemokit
