// A squashfs file mounted read-only through the kernel (a loop device; needs root) for the
// scope's life, so a test reads an image as pyxis/enroot would.
#pragma once

#include <sys/mount.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "support/process.hpp"

namespace nemokit::test {

class SquashfsMount {
 public:
  explicit SquashfsMount(const std::filesystem::path& image) {
    char tmpl[] = "/tmp/nemokit-sqsh-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
    dir_ = tmpl;
    RunResult r = run({"mount", "-t", "squashfs", "-o", "loop,ro", image.string(), dir_.string()});
    if (r.exit_code != 0) {
      ::rmdir(dir_.c_str());
      throw std::runtime_error("mount " + image.string() + ": " + r.err);
    }
  }
  SquashfsMount(const SquashfsMount&) = delete;
  SquashfsMount& operator=(const SquashfsMount&) = delete;
  ~SquashfsMount() {
    // Something scanning /tmp can hold the mount busy for a moment; retry, then detach lazily so
    // no mount outlives the test.
    for (int attempt = 0; attempt < 20; ++attempt) {
      if (::umount2(dir_.c_str(), 0) == 0) {
        ::rmdir(dir_.c_str());
        return;
      }
      ::usleep(100 * 1000);
    }
    if (::umount2(dir_.c_str(), MNT_DETACH) == 0) ::rmdir(dir_.c_str());
  }

  // The image's root folder.
  const std::filesystem::path& root() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

}  // namespace nemokit::test
