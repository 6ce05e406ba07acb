#pragma once
// The interpreter for the numpy cross-checks: Debian's python3 with Debian's python3-numpy
// (scripts/setup-deps.sh installs it). A check that cannot run says why through GTEST_SKIP,
// never passes unseen.
#include <cstdlib>
#include <string>

namespace nemokit::test {

inline const std::string& numpy_python() {
  static const std::string path = NEMOKIT_DEBIAN_PYTHON;
  return path;
}

// Empty when numpy_python() imports numpy; otherwise why the numpy check cannot run.
inline std::string numpy_skip_reason() {
  if (numpy_python().empty()) return "no /usr/bin/python3 was found when configuring: the numpy check cannot run";
  const std::string cmd = "'" + numpy_python() + "' -c 'import numpy' >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0)
    return numpy_python() + " cannot import numpy (Debian's python3-numpy; scripts/setup-deps.sh installs it)";
  return {};
}

}  // namespace nemokit::test
