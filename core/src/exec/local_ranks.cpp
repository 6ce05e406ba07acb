#include "exec/local_ranks.hpp"
#include "exec/mpirun_tags.hpp"

#include "exec/signal_pipe.hpp"
#include "exec/process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "nemokit/runtime/fd_io.hpp"

extern char** environ;

namespace nemokit {

namespace {

const int kForwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

struct Rank {
  int rank = 0;
  pid_t pid = -1;
  int out_fd = -1, err_fd = -1, log_fd = -1;
  std::string out_partial, err_partial;
  TaggedStream out_tagged, err_tagged;  // mpirun's own streams (through_mpirun)
  bool running = false;
  int exit_code = 0;
};

// Passes complete lines of `data` (plus the unfinished rest kept in `partial`) to `fd` with the
// rank prefix, so two ranks' lines never interleave mid-line.
void emit_lines(int fd, std::string& partial, const char* data, size_t n, const std::string& prefix, bool flush_all) {
  partial.append(data, n);
  size_t start = 0;
  for (size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string line = prefix + partial.substr(start, nl + 1 - start);
    rt::write_all(fd, line.data(), line.size());
  }
  partial.erase(0, start);
  if (flush_all && !partial.empty()) {
    std::string line = prefix + partial + "\n";
    rt::write_all(fd, line.data(), line.size());
    partial.clear();
  }
}

// The processes whose parent is `parent`: the ranks mpirun started, read from /proc.
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "stat");
    std::string stat;
    std::getline(in, stat);
    size_t close = stat.rfind(')');  // the command name may hold spaces and parentheses
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 1));
    std::string state;
    long ppid = 0;
    if (rest >> state >> ppid && ppid == parent) out.push_back(pid_t(std::stol(name)));
  }
  return out;
}

std::vector<std::string> rank_environment(const LocalRanks& spec, int rank, int port) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    std::string name = kv.substr(0, kv.find('='));
    if (name == "RANK" || name == "LOCAL_RANK" || name == "WORLD_SIZE" || name == "LOCAL_WORLD_SIZE" ||
        name == "MASTER_ADDR" || name == "MASTER_PORT")
      continue;
    env.push_back(kv);
  }
  if (spec.mpirun.empty()) {
    env.push_back("RANK=" + std::to_string(rank));
    env.push_back("LOCAL_RANK=" + std::to_string(rank));
  } else {
    // Open MPI refuses root without these (containers and CI run as root), and its single-copy
    // shared memory (CMA) needs ptrace rights that containers often withhold.
    env.push_back("OMPI_ALLOW_RUN_AS_ROOT=1");
    env.push_back("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1");
    if (!std::getenv("OMPI_MCA_btl_vader_single_copy_mechanism")) env.push_back("OMPI_MCA_btl_vader_single_copy_mechanism=none");
  }
  env.push_back("WORLD_SIZE=" + std::to_string(spec.nproc));
  env.push_back("LOCAL_WORLD_SIZE=" + std::to_string(spec.nproc));
  env.push_back("MASTER_ADDR=" + spec.master_addr);
  env.push_back("MASTER_PORT=" + std::to_string(port));
  return env;
}

void start_rank(const LocalRanks& spec, Rank& r, int port) {
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0)
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  std::filesystem::path log = spec.log_dir / (spec.mpirun.empty() ? "rank-" + std::to_string(r.rank) + ".log" : std::string("mpirun.log"));
  r.log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (r.log_fd < 0) throw std::runtime_error(log.string() + ": cannot open log: " + std::strerror(errno));
  // Everything the child needs is built before fork: after it only async-signal-safe calls.
  std::vector<std::string> env = rank_environment(spec, r.rank, port);
  std::vector<char*> envp, argv;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string exe = spec.exe.string();
  std::vector<std::string> args = spec.args;
  if (!spec.mpirun.empty()) {
    // --bind-to none: a rank's thread pool needs more than the one core mpirun would pin it to.
    args = {"-n", std::to_string(spec.nproc), "--oversubscribe", "--bind-to", "none", "--tag-output", exe};
    args.insert(args.end(), spec.args.begin(), spec.args.end());
    exe = spec.mpirun.string();
  }
  argv.push_back(exe.data());
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    setpgid(0, 0);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    for (int sig : kForwarded) signal(sig, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    execve(exe.c_str(), argv.data(), envp.data());
    const char msg[] = "nemokit: cannot exec the rank program\n";
    (void)!::write(2, msg, sizeof msg - 1);
    _exit(127);
  }
  setpgid(pid, pid);  // also here: no window where a signal to the group misses the child
  close(out_pipe[1]);
  close(err_pipe[1]);
  r.pid = pid;
  r.out_fd = out_pipe[0];
  r.err_fd = err_pipe[0];
  r.running = true;
}

}  // namespace

int pick_free_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    throw std::runtime_error(std::string("cannot find a free port: ") + std::strerror(errno));
  }
  int port = ntohs(a.sin_port);
  close(fd);
  return port;
}

int run_local_ranks(const LocalRanks& spec) {
  if (spec.nproc < 1) throw std::runtime_error("run_local_ranks: nproc must be at least 1");
  std::filesystem::create_directories(spec.log_dir);
  int port = spec.master_port ? spec.master_port : pick_free_port();

  SignalPipe signals({SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD});

  const bool through_mpirun = !spec.mpirun.empty();
  std::vector<Rank> ranks(static_cast<size_t>(through_mpirun ? 1 : spec.nproc));
  std::vector<int> rank_logs;  // through mpirun: rank-R.log of each rank, written from its tagged lines
  if (through_mpirun)
    for (int i = 0; i < spec.nproc; ++i) {
      std::filesystem::path log = spec.log_dir / ("rank-" + std::to_string(i) + ".log");
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd < 0) {
        for (int open_fd : rank_logs) close(open_fd);
        throw std::runtime_error(log.string() + ": cannot open log: " + std::strerror(errno));
      }
      rank_logs.push_back(fd);
    }
  int first_failure = 0;
  bool stopping = false;
  auto stop_deadline = std::chrono::steady_clock::time_point::max();
  // Through mpirun the ranks get the signal themselves, as forked ranks do: mpirun would answer
  // SIGINT/SIGTERM by ending them its own way (exit code 1, no checkpoint), and it returns the
  // first failing rank's code (130, 75, ...) when they exit. SIGKILL goes to mpirun as well.
  auto signal_all = [&](int sig) {
    for (auto& r : ranks) {
      if (!r.running) continue;
      if (through_mpirun)
        for (pid_t child : children_of(r.pid)) kill(child, sig);
      if (!through_mpirun || sig == SIGKILL) kill(r.pid, sig);
    }
  };
  auto begin_stop = [&](int sig) {
    signal_all(sig);
    if (!stopping) stop_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(spec.grace_seconds);
    stopping = true;
  };

  try {
    for (size_t i = 0; i < ranks.size(); ++i) {
      ranks[i].rank = int(i);
      start_rank(spec, ranks[i], port);
    }
  } catch (...) {
    begin_stop(SIGTERM);
    for (auto& r : ranks)
      if (r.running) waitpid(r.pid, nullptr, 0);
    throw;
  }

  auto anything_open = [&] {
    for (auto& r : ranks)
      if (r.running || r.out_fd >= 0 || r.err_fd >= 0) return true;
    return false;
  };
  char buf[8192];
  while (anything_open()) {
    std::vector<pollfd> fds = {{signals.fd(), POLLIN, 0}};
    std::vector<std::pair<Rank*, bool>> owners = {{nullptr, false}};
    for (auto& r : ranks) {
      if (r.out_fd >= 0) { fds.push_back({r.out_fd, POLLIN, 0}); owners.push_back({&r, true}); }
      if (r.err_fd >= 0) { fds.push_back({r.err_fd, POLLIN, 0}); owners.push_back({&r, false}); }
    }
    int timeout_ms = stopping ? 200 : -1;
    if (poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) break;
    if (stopping && std::chrono::steady_clock::now() > stop_deadline) {
      signal_all(SIGKILL);
      stop_deadline = std::chrono::steady_clock::time_point::max();
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      Rank& r = *owners[i].first;
      bool is_out = owners[i].second;
      int& fd = is_out ? r.out_fd : r.err_fd;
      ssize_t n = ::read(fd, buf, sizeof buf);
      std::string prefix = spec.nproc > 1 ? "[" + std::to_string(r.rank) + "] " : "";
      std::string& partial = is_out ? r.out_partial : r.err_partial;
      TaggedStream& tagged = is_out ? r.out_tagged : r.err_tagged;
      if (n > 0 && through_mpirun) {
        emit_tagged_lines(is_out ? 1 : 2, tagged, buf, static_cast<size_t>(n), rank_logs, r.log_fd, false);
      } else if (n > 0) {
        rt::write_all(r.log_fd, buf, static_cast<size_t>(n));
        emit_lines(is_out ? 1 : 2, partial, buf, static_cast<size_t>(n), prefix, false);
      } else if (n == 0 || errno != EINTR) {
        if (through_mpirun)
          emit_tagged_lines(is_out ? 1 : 2, tagged, "", 0, rank_logs, r.log_fd, true);
        else
          emit_lines(is_out ? 1 : 2, partial, "", 0, prefix, true);
        close(fd);
        fd = -1;
      }
    }
    if (fds[0].revents & POLLIN) {
      for (int sig : signals.take()) {
        if (sig == SIGCHLD) continue;  // reaped below
        if ((sig == SIGINT || sig == SIGTERM) && stopping) {
          signal_all(SIGKILL);
        } else if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGQUIT) {
          begin_stop(sig);
        } else {
          signal_all(sig);  // USR1/USR2: the stage decides (checkpoint, dump state, ...)
        }
      }
    }
    for (auto& r : ranks) {
      if (!r.running) continue;
      int status = 0;
      pid_t got = waitpid(r.pid, &status, WNOHANG);
      if (got != r.pid) continue;
      r.running = false;
      r.exit_code = exit_code_of_wait_status(status);
      if (r.exit_code != 0 && first_failure == 0) {
        first_failure = r.exit_code;
        if (!stopping) {
          std::string who = through_mpirun ? "mpirun" : "rank " + std::to_string(r.rank);
          std::string msg = "nemokit: " + who + " exited with code " + std::to_string(r.exit_code) + "; stopping the other ranks\n";
          rt::write_all(2, msg.data(), msg.size());
          begin_stop(SIGTERM);
        }
      }
    }
  }
  for (auto& r : ranks)
    if (r.log_fd >= 0) close(r.log_fd);
  for (int fd : rank_logs) close(fd);
  return first_failure;
}

std::filesystem::path mpi_launcher() {
  const char* choice = std::getenv("NEMOKIT_LAUNCHER");
  if (choice && std::string(choice) == "fork") return {};
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  for (size_t start = 0; start <= dirs.size();) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::filesystem::path candidate = std::filesystem::path(dirs.substr(start, end - start)) / "mpirun";
    if (end > start && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return {};
}

}  // namespace nemokit
