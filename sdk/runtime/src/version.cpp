#include "nemokit/runtime/version.hpp"

namespace nemokit::rt {
const char* runtime_version() { return "0.1.0"; }
}  // namespace nemokit::rt
