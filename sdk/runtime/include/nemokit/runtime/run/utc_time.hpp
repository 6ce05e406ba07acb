#pragma once
// Timestamps as artifact metadata records them.

#include <string>

namespace nemokit::rt {

// The current UTC time as "2026-11-30T19:41:00Z".
std::string utc_now();

}  // namespace nemokit::rt
