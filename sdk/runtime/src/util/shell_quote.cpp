#include "nemokit/runtime/shell_quote.hpp"

namespace nemokit::rt {

std::string shell_quote(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

}  // namespace nemokit::rt
