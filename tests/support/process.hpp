// The one way tests run a program: its own process (no shell unless argv asks for one), a working
// folder, extra environment, stdin from a string or /dev/null, stdout and stderr captured, and a
// deadline so a hung run fails the test instead of the suite.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/files.hpp"
#include "support/nemokit_binary.hpp"

extern char** environ;

namespace nemokit::test {

struct RunResult {
  int exit_code = -1;  // 128+N for signal N; -2 when the deadline passed (the process is killed)
  std::string out, err;
};

struct RunOptions {
  std::filesystem::path cwd;                 // empty: the test's own
  std::map<std::string, std::string> env;    // set (or replace) in the inherited environment
  std::string stdin_text;                    // empty: stdin is /dev/null
};

// A started program; wait() collects it. Its output goes to files beside each other in the
// temporary folder, so it can be read while the program runs.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const RunOptions& opt = {}) {
    if (argv.empty()) throw std::invalid_argument("Process: empty argv");
    const auto base = std::filesystem::temp_directory_path() /
                      ("nemokit-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter()));
    out_ = base.string() + ".out";
    err_ = base.string() + ".err";
    in_ = base.string() + ".in";
    const bool has_stdin = !opt.stdin_text.empty();
    if (has_stdin) write_file(in_, opt.stdin_text);
    std::vector<std::string> envs;
    for (char** e = environ; *e; ++e) {
      std::string kv = *e;
      if (!opt.env.count(kv.substr(0, kv.find('=')))) envs.push_back(kv);
    }
    for (const auto& [k, v] : opt.env) envs.push_back(k + "=" + v);
    std::vector<std::string> args = argv;
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      if (!opt.cwd.empty() && ::chdir(opt.cwd.c_str()) != 0) _exit(126);
      int o = ::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int e = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int i = ::open(has_stdin ? in_.c_str() : "/dev/null", O_RDONLY);
      if (o < 0 || e < 0 || i < 0) _exit(126);
      ::dup2(i, 0);
      ::dup2(o, 1);
      ::dup2(e, 2);
      std::vector<char*> a, ev;
      for (auto& s : args) a.push_back(s.data());
      a.push_back(nullptr);
      for (auto& s : envs) ev.push_back(s.data());
      ev.push_back(nullptr);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      ::execvpe(a[0], a.data(), ev.data());
      _exit(127);
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    std::error_code ignored;
    for (const auto& f : {out_, err_, in_}) std::filesystem::remove(f, ignored);
  }

  pid_t pid() const { return pid_; }
  std::string out_so_far() const { return read_file(out_); }
  std::string err_so_far() const { return read_file(err_); }

  // Waits until `pred(stdout + stderr)` holds; false at the deadline.
  template <class Pred>
  bool wait_for_output(Pred pred, double seconds) {
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
      if (pred(out_so_far() + err_so_far())) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  RunResult wait(double seconds) {
    RunResult r;
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    int status = 0;
    for (;;) {
      pid_t got = ::waitpid(pid_, &status, WNOHANG);
      if (got == pid_) {
        r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (std::chrono::steady_clock::now() > end) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        r.exit_code = -2;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    reaped_ = true;
    r.out = read_file(out_);
    r.err = read_file(err_);
    return r;
  }

 private:
  static int counter() {
    static int n = 0;
    return n++;
  }
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::filesystem::path out_, err_, in_;
};

// Runs argv[0] (looked up on PATH) to its end, or kills it after `seconds`.
inline RunResult run(const std::vector<std::string>& argv, const RunOptions& opt = {}, double seconds = 3600) {
  Process p(argv, opt);
  return p.wait(seconds);
}

// This build's nemokit followed by `args`, as the argv of a Process or run().
inline std::vector<std::string> nemokit_argv(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {nemokit_binary().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// Runs this build's nemokit with `args` in `cwd`.
inline RunResult run_nemokit(const std::vector<std::string>& args, const std::filesystem::path& cwd,
                             const std::map<std::string, std::string>& env = {}, double seconds = 60) {
  return run(nemokit_argv(args), {cwd, env, ""}, seconds);
}

}  // namespace nemokit::test
