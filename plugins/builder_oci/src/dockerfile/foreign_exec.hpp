#pragma once
// Whether RUN can execute programs of an image's platform here: natively (the machine's own
// architecture), or through a binfmt_misc handler such as Debian's qemu-user-static registers.
// Without one the kernel answers "exec format error" from deep inside the sandbox; the builder
// asks first and says what is missing at the RUN line. Private to src/dockerfile.
#include <optional>
#include <string>

#include "nemokit/oci/platform.hpp"

namespace nemokit::dockerfile {

// nullopt when programs of `platform` run on this machine; else why not and what to do.
// `binfmt_dir` is /proc/sys/fs/binfmt_misc (a parameter for tests).
std::optional<std::string> foreign_exec_problem(const oci::Platform& platform,
                                                const std::string& binfmt_dir = "/proc/sys/fs/binfmt_misc");

}  // namespace nemokit::dockerfile
