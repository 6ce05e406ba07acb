// Runs the nemokit binary of this build as a user would: its own process, a working folder, extra
// environment, stdout and stderr captured, and a deadline so a hung run fails the test instead of
// the suite.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace nemokit::test {

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::filesystem::path nemokit_binary() { return std::filesystem::path(NEMOKIT_BINARY_DIR) / "bin" / "nemokit"; }

struct RunResult {
  int exit_code = -1;  // 128+N for signal N; -2 when the deadline passed (the process is killed)
  std::string out, err;
};

// A started nemokit; wait() collects it.
class Process {
 public:
  Process(const std::vector<std::string>& args, const std::filesystem::path& cwd,
          const std::map<std::string, std::string>& env = {}) {
    out_ = cwd / (".out-" + std::to_string(counter()));
    err_ = cwd / (".err-" + std::to_string(counter()));
    std::vector<std::string> envs;
    for (char** e = environ; *e; ++e) {
      std::string kv = *e;
      if (!env.count(kv.substr(0, kv.find('=')))) envs.push_back(kv);
    }
    for (const auto& [k, v] : env) envs.push_back(k + "=" + v);
    std::vector<std::string> argv = {nemokit_binary().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = fork();
    if (pid_ == 0) {
      if (chdir(cwd.c_str()) != 0) _exit(126);
      int o = open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), e = open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(o, 1);
      dup2(e, 2);
      int devnull = open("/dev/null", O_RDONLY);
      dup2(devnull, 0);
      std::vector<char*> a, ev;
      for (auto& s : argv) a.push_back(s.data());
      a.push_back(nullptr);
      for (auto& s : envs) ev.push_back(s.data());
      ev.push_back(nullptr);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      execve(a[0], a.data(), ev.data());
      _exit(127);
    }
  }
  pid_t pid() const { return pid_; }
  std::string out_so_far() const { return slurp(out_); }
  std::string err_so_far() const { return slurp(err_); }

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
      pid_t got = waitpid(pid_, &status, WNOHANG);
      if (got == pid_) {
        r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (std::chrono::steady_clock::now() > end) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        r.exit_code = -2;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    r.out = slurp(out_);
    r.err = slurp(err_);
    return r;
  }

 private:
  static int counter() {
    static int n = 0;
    return n++;
  }
  pid_t pid_ = -1;
  std::filesystem::path out_, err_;
};

inline RunResult run_nemokit(const std::vector<std::string>& args, const std::filesystem::path& cwd,
                       const std::map<std::string, std::string>& env = {}, double seconds = 60) {
  Process p(args, cwd, env);
  return p.wait(seconds);
}

// A fresh folder under the build tree for one test.
inline std::filesystem::path fresh_dir(const std::string& name) {
  auto d = std::filesystem::path(NEMOKIT_BINARY_DIR) / "tests" / "exec" / "work" / name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

inline void write_text(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

}  // namespace nemokit::test
