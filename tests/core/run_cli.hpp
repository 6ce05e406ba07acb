// Runs the built `nemokit` as a user would: a real process, real environment, real files.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace nemokit::test {

struct CliResult {
  int rc = -1;
  std::string out, err;
};

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::filesystem::path nemokit_binary() { return std::filesystem::path(NEMOKIT_BINARY_DIR) / "bin" / "nemokit"; }

// A fresh folder under the test's temporary area, removed by the caller's fixture if wanted.
inline std::filesystem::path temp_folder(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("nemokit-test-" + std::to_string(::getpid()) + "-" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// `args` is shell text appended to the binary; `env` is prepended (e.g. "NEMOKIT_PLUGIN_PATH=x").
inline CliResult run_cli(const std::string& args, const std::string& env = "", const std::string& cwd = "") {
  static int n = 0;
  auto dir = std::filesystem::temp_directory_path();
  auto out = dir / ("nemokit-cli-" + std::to_string(::getpid()) + "-" + std::to_string(++n) + ".out");
  auto err = out;
  err.replace_extension(".err");
  std::string cmd = (cwd.empty() ? "" : "cd '" + cwd + "' && ") + "env " + env + " '" + nemokit_binary().string() + "' " +
                    args + " >'" + out.string() + "' 2>'" + err.string() + "' </dev/null";
  int status = std::system(cmd.c_str());
  CliResult r;
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out);
  r.err = slurp(err);
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return r;
}

}  // namespace nemokit::test
