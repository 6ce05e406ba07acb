#include "nemokit/dockerfile/child.hpp"

#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <iostream>

#include "nemokit/dockerfile/dockerfile.hpp"
#include "nemokit/dockerfile/mounts.hpp"
#include "nemokit/runtime/fd_io.hpp"

namespace nemokit::dockerfile {

namespace {

// The child being waited for: SIGINT and SIGTERM sent to this process go on to it, so that work
// which handles them (the squashfs writer removes its partial file) gets to, and this process
// then reports how the child ended. Killed outright, this process takes the child with it
// (PDEATHSIG).
volatile sig_atomic_t g_forward_to = 0;

void forward_signal(int sig) {
  if (g_forward_to > 0) kill(pid_t(g_forward_to), sig);
}

}  // namespace

void run_in_child(const std::function<void()>& fn, const std::string& what, int unshare_flags) {
  run_in_child_for(
      [&] {
        fn();
        return std::string();
      },
      what, unshare_flags);
}

std::string run_in_child_for(const std::function<std::string()>& fn, const std::string& what, int unshare_flags) {
  int err_pipe[2], result_pipe[2];
  if (pipe2(err_pipe, O_CLOEXEC) != 0) throw BuildError(what + ": pipe: " + std::strerror(errno));
  if (pipe2(result_pipe, O_CLOEXEC) != 0) {
    close(err_pipe[0]);
    close(err_pipe[1]);
    throw BuildError(what + ": pipe: " + std::strerror(errno));
  }
  // What is buffered here would otherwise be written twice, once by each process.
  std::cout.flush();
  std::cerr.flush();
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {err_pipe[0], err_pipe[1], result_pipe[0], result_pipe[1]}) close(fd);
    throw BuildError(what + ": fork: " + std::strerror(errno));
  }
  if (pid == 0) {
    close(err_pipe[0]);
    close(result_pipe[0]);
    // The work stops with this process (a killed build leaves no child writing on).
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(125);
    std::string message, result;
    try {
      if (unshare_flags && unshare(unshare_flags) != 0) throw BuildError(std::string("unshare: ") + std::strerror(errno));
      if ((unshare_flags & CLONE_NEWNS) && mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        throw BuildError(std::string("making mounts private: ") + std::strerror(errno));
      result = fn();
      finish_overlays();
    } catch (const std::exception& e) {
      message = e.what();
      if (message.empty()) message = "failed";
    } catch (...) {
      message = "failed";
    }
    std::cout.flush();
    std::cerr.flush();
    if (!message.empty()) rt::write_all(err_pipe[1], message);
    else rt::write_all(result_pipe[1], result);
    _exit(message.empty() ? 0 : 1);
  }
  close(err_pipe[1]);
  close(result_pipe[1]);
  const sig_atomic_t outer = g_forward_to;
  g_forward_to = pid;
  struct sigaction forward {}, old_int{}, old_term{};
  forward.sa_handler = forward_signal;
  sigemptyset(&forward.sa_mask);
  sigaction(SIGINT, &forward, &old_int);
  sigaction(SIGTERM, &forward, &old_term);
  std::string message, result;
  const int fds[] = {err_pipe[0], result_pipe[0]};
  rt::pump_until_eof(fds, [&](size_t i, const char* data, size_t size) { (i == 0 ? message : result).append(data, size); });
  close(err_pipe[0]);
  close(result_pipe[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  g_forward_to = outer;
  // The child's message may name the step itself (a COPY step's errors start with its
  // "Dockerfile:2:1: COPY"): the same words twice read as two failures. An empty `what` (the
  // whole build, whose caller names it) adds nothing.
  auto named = [&](const std::string& m) { return what.empty() || m.rfind(what + ": ", 0) == 0 ? m : what + ": " + m; };
  if (!message.empty()) throw BuildError(named(message));
  if (WIFSIGNALED(status)) throw BuildError(named("killed by signal " + std::to_string(WTERMSIG(status))));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw BuildError(named("failed with exit code " + std::to_string(WEXITSTATUS(status))));
  return result;
}

void reap_until_exit(pid_t cmd) {
  while (true) {
    int status = 0;
    pid_t p = waitpid(-1, &status, 0);
    if (p < 0 && errno == EINTR) continue;
    if (p < 0) _exit(127);
    if (p == cmd) _exit(WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status));
  }
}

}  // namespace nemokit::dockerfile
