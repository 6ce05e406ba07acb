// Runs the built `nemokit` as a user would: a real process, real environment, real files.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

#include "support/files.hpp"
#include "support/nemokit_binary.hpp"
#include "support/process.hpp"
#include "support/remove_when_passed.hpp"

namespace nemokit::test {

struct CliResult {
  int rc = -1;
  std::string out, err;
};

// A fresh folder under the temporary area for one test, removed when the test passes.
inline std::filesystem::path temp_folder(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("nemokit-test-" + std::to_string(::getpid()) + "-" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  remove_when_passed(dir);
  return dir;
}

// `args` is shell text appended to the binary; `env` is prepended (e.g. "NEMOKIT_PLUGIN_PATH=x").
inline CliResult run_cli(const std::string& args, const std::string& env = "", const std::string& cwd = "") {
  const std::string cmd = "exec env " + env + " '" + nemokit_binary().string() + "' " + args;
  RunResult r = run({"/bin/sh", "-c", cmd}, {cwd, {}, ""});
  return {r.exit_code, r.out, r.err};
}

}  // namespace nemokit::test
