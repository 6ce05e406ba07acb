#include "nemokit/dockerfile/exec_command.hpp"

#include <fcntl.h>
#include <linux/loop.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "nemokit/dockerfile/child.hpp"
#include "nemokit/dockerfile/dockerfile.hpp"
#include "nemokit/dockerfile/exec_image.hpp"
#include "nemokit/dockerfile/mounts.hpp"
#include "nemokit/dockerfile/rootfs_path.hpp"
#include "nemokit/dockerfile/user_namespace.hpp"

extern char** environ;

namespace nemokit::dockerfile {
namespace fs = std::filesystem;

namespace {

const char* kUsage =
    "usage: nemokit exec IMAGE_OR_SQSH [--mount SRC:DST[:ro]]... [--env K=V]... [--] [CMD [ARG]...]\n"
    "IMAGE is a name under <build_cache_dir>/containers (NAME.sqsh), or a path to a .sqsh file.\n";

struct Usage : BuildError {
  using BuildError::BuildError;
};

[[noreturn]] void sys_fail(const std::string& what) { throw BuildError(what + ": " + std::strerror(errno)); }

struct ExecArgs {
  fs::path image;
  std::vector<BindMount> binds;
  std::vector<std::string> env;
  std::vector<std::string> command;
};

ExecArgs parse(const std::vector<std::string>& args, const fs::path& cache) {
  ExecArgs a;
  std::string image;
  size_t i = 1;
  for (; i < args.size(); ++i) {
    const std::string& w = args[i];
    if (w == "--") {
      ++i;
      break;
    }
    auto value = [&](const std::string& flag) -> std::string {
      if (w.rfind(flag + "=", 0) == 0) return w.substr(flag.size() + 1);
      if (i + 1 >= args.size()) throw Usage(flag + " needs a value");
      return args[++i];
    };
    if (w == "--mount" || w.rfind("--mount=", 0) == 0) {
      std::string m = value("--mount");
      std::vector<std::string> parts;
      std::stringstream ss(m);
      std::string p;
      while (std::getline(ss, p, ':')) parts.push_back(p);
      if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty() ||
          (parts.size() == 3 && parts[2] != "ro" && parts[2] != "rw"))
        throw Usage("--mount " + m + ": expected SRC:DST[:ro|rw]");
      if (parts[1][0] != '/') throw Usage("--mount " + m + ": the destination must be an absolute path");
      a.binds.push_back({fs::absolute(parts[0]), parts[1], parts.size() == 3 && parts[2] == "ro"});
    } else if (w == "--env" || w.rfind("--env=", 0) == 0) {
      std::string e = value("--env");
      if (e.find('=') == std::string::npos || e[0] == '=') throw Usage("--env " + e + ": expected K=V");
      a.env.push_back(e);
    } else if (w == "-h" || w == "--help") {
      throw Usage("");
    } else if (!w.empty() && w[0] == '-' && image.empty()) {
      throw Usage("unknown option " + w);
    } else if (image.empty()) {
      image = w;
    } else {
      break;  // the command starts here
    }
  }
  for (; i < args.size(); ++i) a.command.push_back(args[i]);
  if (image.empty()) throw Usage("no image given");
  if (image.find('/') != std::string::npos || (image.size() > 5 && image.substr(image.size() - 5) == ".sqsh"))
    a.image = fs::absolute(image);
  else
    a.image = cache / "containers" / (image + ".sqsh");
  if (!fs::is_regular_file(a.image)) throw BuildError(a.image.string() + ": no such image file");
  return a;
}

// Host environment, then the image's /etc/environment on top (as enroot does).
std::vector<std::string> container_env(const fs::path& root, const std::vector<std::string>& extra) {
  std::map<std::string, std::string> env;
  std::vector<std::string> order;
  auto put = [&](const std::string& kv) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return;
    std::string k = kv.substr(0, eq);
    if (!env.count(k)) order.push_back(k);
    env[k] = kv.substr(eq + 1);
  };
  for (char** e = environ; *e; ++e) put(*e);
  std::ifstream in(resolve_in_root(root, "/etc/environment", true));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind("export ", 0) == 0) line = line.substr(7);
    put(line);
  }
  for (auto& e : extra) put(e);
  std::vector<std::string> out;
  for (auto& k : order) out.push_back(k + "=" + env[k]);
  return out;
}

[[noreturn]] void container_init(const ExecArgs& a, const fs::path& base, const fs::path& root) {
  try {
    ContainerMounts m;
    for (auto [host, name] : {std::pair{"/etc/resolv.conf", "resolv.conf"}, std::pair{"/etc/hosts", "hosts"}}) {
      std::error_code ec;
      fs::copy_file(host, base / name, fs::copy_options::overwrite_existing, ec);
      if (!ec) (std::string(name) == "hosts" ? m.hosts : m.resolv_conf) = base / name;
    }
    m.binds = a.binds;
    mount_container_fs(root, m);
    std::vector<std::string> env = container_env(root, a.env);
    enter_root(root);
    std::vector<std::string> argv = {"/bin/sh", "-c", ". /etc/rc", "sh"};
    argv.insert(argv.end(), a.command.begin(), a.command.end());
    pid_t cmd = fork();
    if (cmd < 0) sys_fail("fork");
    if (cmd == 0) {
      std::vector<char*> av, ev;
      for (auto& s : argv) av.push_back(const_cast<char*>(s.c_str()));
      av.push_back(nullptr);
      for (auto& s : env) ev.push_back(const_cast<char*>(s.c_str()));
      ev.push_back(nullptr);
      execve("/bin/sh", av.data(), ev.data());
      std::cerr << "nemokit exec: /bin/sh in the image: " << std::strerror(errno) << "\n";
      _exit(127);
    }
    reap_until_exit(cmd);
  } catch (const std::exception& e) {
    std::cerr << "nemokit exec: " << e.what() << "\n";
    _exit(125);
  }
}

int wait_code(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return 1;
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

// New mount, PID and IPC namespaces; the image read-only under a tmpfs overlay; its /etc/rc runs
// the command.
int run_container(const ExecArgs& a, const fs::path& build_cache_dir) {
  char tmpl[] = "/tmp/nemokit-exec-XXXXXX";
  if (!mkdtemp(tmpl)) sys_fail("mkdtemp");
  fs::path base = tmpl;
  std::cout.flush();
  pid_t pid = fork();
  if (pid < 0) sys_fail("fork");
  if (pid == 0) {
    try {
      if (unshare(CLONE_NEWNS) != 0) sys_fail("unshare");
      if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) sys_fail("making mounts private");
      if (mount("tmpfs", base.c_str(), "tmpfs", 0, "mode=700") != 0) sys_fail("tmpfs");
      for (auto d : {"lower", "upper", "work", "root"}) fs::create_directory(base / d);
      ImageLower lower = show_image(a.image, base / "lower", build_cache_dir);
      mount_overlay(base / "root", {lower.dir}, base / "upper", base / "work");
      // The PID namespace only now: its first child is its PID 1, which must be the container's
      // init, not a squashfuse that show_image started.
      if (unshare(CLONE_NEWPID | CLONE_NEWIPC) != 0) sys_fail("unshare");
      pid_t init = fork();
      if (init < 0) sys_fail("fork");
      if (init == 0) container_init(a, base, base / "root");
      _exit(wait_code(init));
    } catch (const std::exception& e) {
      std::cerr << "nemokit exec: " << e.what() << "\n";
      _exit(125);
    }
  }
  int code = wait_code(pid);
  std::error_code ec;
  fs::remove(base, ec);
  return code;
}

}  // namespace

LoopDevice attach_loop_device(const fs::path& file) {
  int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (ctl < 0) sys_fail("/dev/loop-control");
  int file_fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (file_fd < 0) {
    close(ctl);
    sys_fail(file.string());
  }
  for (int attempt = 0; attempt < 16; ++attempt) {
    int n = ioctl(ctl, LOOP_CTL_GET_FREE);
    if (n < 0) break;
    std::string dev = "/dev/loop" + std::to_string(n);
    int loop = open(dev.c_str(), O_RDONLY | O_CLOEXEC);
    if (loop < 0) continue;
    struct loop_config config {};
    config.fd = uint32_t(file_fd);
    config.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR;
    std::strncpy(reinterpret_cast<char*>(config.info.lo_file_name), file.c_str(), LO_NAME_SIZE - 1);
    int rc = ioctl(loop, LOOP_CONFIGURE, &config);
    int err = errno;
    if (rc == 0) {
      close(ctl);
      close(file_fd);
      return LoopDevice{dev, loop};
    }
    close(loop);
    if (err != EBUSY) {
      errno = err;
      break;
    }
  }
  close(ctl);
  close(file_fd);
  sys_fail("attaching " + file.string() + " to a loop device");
}

int exec_command(const std::vector<std::string>& args, const fs::path& build_cache_dir) {
  ExecArgs a;
  try {
    a = parse(args, build_cache_dir);
  } catch (const Usage& e) {
    if (*e.what()) std::cerr << "nemokit exec: " << e.what() << "\n";
    (*e.what() ? std::cerr : std::cout) << kUsage;  // asked for (--help): the usage is the output
    return *e.what() ? 2 : 0;
  }
  // Root mounts the image as it always has; an ordinary user runs it as root of a user
  // namespace (rootless, as `enroot start --root`), the image shown as exec_image.hpp says.
  if (geteuid() != 0) return run_as_namespace_root([&] { return run_container(a, build_cache_dir); }, "nemokit exec");
  return run_container(a, build_cache_dir);
}

}  // namespace nemokit::dockerfile
