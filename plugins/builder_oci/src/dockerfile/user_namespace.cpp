// Entering a user namespace as an ordinary user. Process layout: this process (the host user)
// forks a child; the child unshares a user namespace and waits; this process maps it (newuidmap
// and newgidmap are setuid root and check /etc/subuid and /etc/subgid for us); the child becomes
// uid 0 there and does the work. The child is forked, not exec'd: it is single-threaded, as
// unshare(CLONE_NEWUSER) requires, and it keeps the request already parsed.
#include "nemokit/dockerfile/user_namespace.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <tuple>

#include "nemokit/dockerfile/dockerfile.hpp"
#include "nemokit/runtime/fd_io.hpp"

namespace nemokit::dockerfile {
namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Lines of /proc/self/uid_map as (inside, outside, count).
std::vector<std::array<unsigned long, 3>> uid_map() {
  std::vector<std::array<unsigned long, 3>> out;
  std::istringstream in(read_text("/proc/self/uid_map"));
  unsigned long a, b, c;
  while (in >> a >> b >> c) out.push_back({a, b, c});
  return out;
}

// Runs argv (no shell); returns its exit code, with its stderr in `err`.
int run_tool(const std::vector<std::string>& argv, std::string& err) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) throw BuildError("pipe: " + std::string(std::strerror(errno)));
  pid_t pid = fork();
  if (pid < 0) throw BuildError("fork: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    dup2(p[1], 2);
    std::vector<char*> av;
    for (auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
    av.push_back(nullptr);
    execv(av[0], av.data());
    _exit(127);
  }
  close(p[1]);
  char buf[1024];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) err.append(buf, size_t(n));
  close(p[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// "newuidmap PID 0 ID 1 1 START COUNT ..." : 0 is the user, 1.. the ranges in order.
std::vector<std::string> map_args(const fs::path& tool, pid_t pid, uint32_t id, const std::vector<IdRange>& ranges) {
  std::vector<std::string> a = {tool.string(), std::to_string(pid), "0", std::to_string(id), "1"};
  uint64_t next = 1;
  for (auto& r : ranges) {
    a.insert(a.end(), {std::to_string(next), std::to_string(r.start), std::to_string(r.count)});
    next += r.count;
  }
  return a;
}

const char* kRangeHint =
    "to keep them, an administrator adds a range: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ";

// Why unshare(CLONE_NEWUSER) failed, and what an administrator changes.
std::string userns_disabled(int err) {
  std::string why = std::string("user namespaces are not available to this user (unshare: ") + std::strerror(err) + ")";
  if (trimmed(read_text("/proc/sys/user/max_user_namespaces")) == "0")
    return why + ": user.max_user_namespaces is 0; an administrator enables them with `sysctl -w user.max_user_namespaces=15000`";
  // The count of namespaces is checked against the limit of every namespace above this one too.
  if (err == ENOSPC)
    return why + ": the limit of user namespaces is reached (user.max_user_namespaces, here or in a namespace above " +
           "this one); an administrator raises it with `sysctl -w user.max_user_namespaces=15000`";
  if (trimmed(read_text("/proc/sys/kernel/unprivileged_userns_clone")) == "0")
    return why + ": an administrator enables them with `sysctl -w kernel.unprivileged_userns_clone=1`";
  if (trimmed(read_text("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")) == "1")
    return why + ": AppArmor restricts them; an administrator sets `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`";
  return why + "; run as root, or ask an administrator to enable unprivileged user namespaces";
}

}  // namespace

fs::path find_program(const std::string& name) {
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  path += ":/usr/bin:/usr/sbin:/bin:/sbin";
  std::istringstream dirs(path);
  std::string d;
  while (std::getline(dirs, d, ':'))
    if (!d.empty() && access((fs::path(d) / name).c_str(), X_OK) == 0) return fs::path(d) / name;
  return {};
}

// Read each time, never cached: run_as_namespace_root's child is forked from a process that
// was outside.
bool in_user_namespace() {
  auto m = uid_map();
  return !(m.size() == 1 && m[0][0] == 0 && m[0][1] == 0 && m[0][2] == 4294967295ul);
}

bool setgroups_denied() { return trimmed(read_text("/proc/self/setgroups")) == "deny"; }

bool single_uid_namespace() {
  auto m = uid_map();
  return in_user_namespace() && m.size() == 1 && m[0][2] == 1;
}

// Such a step most likely tried to change an owner (chown, apt's _apt user, USER app).
std::string single_uid_hint() {
  if (!single_uid_namespace()) return "";
  return std::string(
             " (this rootless build maps only your own uid, as you have no range in /etc/subuid and /etc/subgid, so "
             "commands that switch or change owners fail; ") +
         kRangeHint + "USER)";
}

int run_as_namespace_root(const std::function<int()>& fn, const std::string& what) {
  uid_t uid = getuid();
  gid_t gid = getgid();
  struct passwd* pw = getpwuid(uid);
  std::string user = pw ? pw->pw_name : std::to_string(uid);
  auto subuids = subordinate_ranges("/etc/subuid", user, uid);
  auto subgids = subordinate_ranges("/etc/subgid", user, uid);
  bool full = !subuids.empty() && !subgids.empty();
  fs::path newuidmap, newgidmap;
  if (full) {
    newuidmap = find_program("newuidmap");
    newgidmap = find_program("newgidmap");
    if (newuidmap.empty() || newgidmap.empty())
      throw BuildError(what + " as an ordinary user needs newuidmap and newgidmap to map " + user +
                       "'s range from /etc/subuid: install Debian's uidmap package (apt-get install uidmap)");
  } else {
    std::cerr << "warning: " << user << " has no range in " << (subuids.empty() ? "/etc/subuid" : "/etc/subgid") << ": " << what
              << " runs in a user namespace that maps " << user
              << " alone, so files the image gives to other users become root's and commands that change owners fail; "
              << kRangeHint << user << "\n";
  }
  std::cout.flush();
  std::cerr.flush();
  int ready[2], go[2], err[2];
  if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(go, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
    throw BuildError("pipe: " + std::string(std::strerror(errno)));
  pid_t parent = getpid();
  pid_t child = fork();
  if (child < 0) throw BuildError("fork: " + std::string(std::strerror(errno)));
  if (child == 0) {
    close(ready[0]);
    close(go[1]);
    close(err[0]);
    // The work stops with the user's nemokit (Ctrl-C, a killed job).
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(125);
    int e = unshare(CLONE_NEWUSER) == 0 ? 0 : errno;
    rt::write_all(ready[1], &e, sizeof e);
    close(ready[1]);
    if (e != 0) _exit(125);
    char ok = 0;
    if (read(go[0], &ok, 1) != 1 || ok != 1) _exit(125);
    std::string message;
    int code = 1;
    try {
      if (!full) {
        // A process may map its own ids into its namespace without help, once setgroups is off.
        auto put = [](const char* file, const std::string& text) {
          int fd = open(file, O_WRONLY | O_CLOEXEC);
          if (fd < 0 || !rt::write_all(fd, text)) throw BuildError(std::string("writing ") + file + ": " + std::strerror(errno));
          close(fd);
        };
        put("/proc/self/setgroups", "deny");
        put("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1\n");
        put("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1\n");
      }
      if (setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0)
        throw BuildError("becoming root in the user namespace: " + std::string(std::strerror(errno)));
      if (!setgroups_denied() && setgroups(0, nullptr) != 0)
        throw BuildError("setgroups in the user namespace: " + std::string(std::strerror(errno)));
      code = fn();
    } catch (const std::exception& ex) {
      message = *ex.what() ? ex.what() : "failed";
    }
    std::cout.flush();
    std::cerr.flush();
    if (!message.empty()) rt::write_all(err[1], message);
    _exit(message.empty() ? code : 1);
  }
  close(ready[1]);
  close(go[0]);
  close(err[1]);
  auto reap = [&] {
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  };
  auto abandon = [&](const std::string& why) {
    close(go[1]);
    close(err[0]);
    kill(child, SIGKILL);
    reap();
    throw BuildError(why);
  };
  int e = -1;
  ssize_t got = 0;
  while ((got = read(ready[0], &e, sizeof e)) < 0 && errno == EINTR) {}
  close(ready[0]);
  if (got != sizeof e) abandon(what + ": the user namespace's process ended early");
  if (e != 0) abandon(what + ": " + userns_disabled(e));
  if (full) {
    for (auto [tool, id, ranges, file] : {std::tuple{newuidmap, uint32_t(uid), subuids, "/etc/subuid"},
                                          std::tuple{newgidmap, uint32_t(gid), subgids, "/etc/subgid"}}) {
      std::string out;
      if (run_tool(map_args(tool, child, id, ranges), out) != 0)
        abandon(what + ": " + tool.filename().string() + " failed to map " + user + "'s range from " + file + ": " +
                trimmed(out) + " (is " + tool.string() + " setuid root, as Debian's uidmap package installs it?)");
    }
  }
  char ok = 1;
  rt::write_all(go[1], &ok, 1);
  close(go[1]);
  std::string message;
  const int fds[] = {err[0]};
  rt::pump_until_eof(fds, [&](size_t, const char* data, size_t size) { message.append(data, size); });
  close(err[0]);
  int code = reap();
  if (!message.empty()) throw BuildError(message);
  return code;
}

}  // namespace nemokit::dockerfile
