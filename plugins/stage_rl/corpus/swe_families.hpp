// The bug families of the swe tasks (make_swe_tasks.cpp): small POSIX sh functions, each with one
// wrong line (a flipped comparison, an off-by-one bound, a wrong operator or expansion) and its
// fix, plus a reference in C++ that says what the fixed function prints for given arguments.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace swe {

using Args = std::vector<std::string>;

struct Family {
  const char* kind;                 // "flipped_comparison", "off_by_one", ... (recorded as "bug")
  const char* what;                 // what the function does, the comment above it ("{f}" = its name)
  std::vector<const char*> names;   // the function names a variant may use
  std::vector<const char*> body;    // the function's lines; "{f}" = its name
  size_t bug_line;                  // index in body of the wrong line
  const char* fixed;                // its correct text
  // Arguments for a test case from a hash (different hashes give different cases); cases must
  // make the wrong line show (the generator checks the buggy version fails and the fix passes).
  std::function<Args(uint64_t)> args;
  std::function<std::string(const Args&)> expected;  // what the fixed function prints
};

const std::vector<Family>& families();

}  // namespace swe
