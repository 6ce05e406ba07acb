#pragma once

namespace nemokit::rt {
// The runtime library's version, for `nemokit --version` and checkpoint provenance.
const char* runtime_version();
}  // namespace nemokit::rt
