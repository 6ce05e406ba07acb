#pragma once
// Work that must not touch this process: mounts in a private mount namespace,
// chroot, extraction into a folder. It runs in a forked child; an exception
// there comes back here as a BuildError with the same message.
#include <sys/types.h>

#include <functional>
#include <string>

namespace nemokit::dockerfile {

// Runs `fn` in a child process and waits for it. `unshare_flags` (CLONE_NEW*)
// are applied in the child first; with CLONE_NEWNS the child's mounts are made
// private so nothing it mounts is seen outside. Throws BuildError(what + ": " +
// message) when fn throws or the child dies. While it waits, SIGINT and SIGTERM sent to this
// process are passed on to the child (one child at a time: not for several threads at once), and
// the child dies with this process.
void run_in_child(const std::function<void()>& fn, const std::string& what, int unshare_flags = 0);

// The same for work with a result: what `fn` returns in the child comes back from here.
std::string run_in_child_for(const std::function<std::string()>& fn, const std::string& what, int unshare_flags = 0);

// For the init of a new PID namespace: reaps every child (orphans are re-parented to it) until
// `cmd` ends, then exits with cmd's status (128 + signal when it was killed).
[[noreturn]] void reap_until_exit(pid_t cmd);

}  // namespace nemokit::dockerfile
