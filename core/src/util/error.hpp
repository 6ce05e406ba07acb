#pragma once

#include <stdexcept>
#include <string>

namespace nemokit {

// A problem with what the user gave us (a command line, a config, a profile). Its message is
// one line that names the file, line or key; main() prints it as is and exits with 2.
class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace nemokit
