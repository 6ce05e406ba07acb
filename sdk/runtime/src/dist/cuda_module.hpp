// The CUDA module (libnemokit_runtime_cuda.so beside this library), opened on first use by
// cuda_module.cpp. Its entry points are extern "C" functions found by name.
#pragma once
#include <string>

namespace nemokit::rt {

// The module's symbol `name`, or null with `why` saying what is missing (no module in this
// build, a loader error, or a module built without that entry).
void* cuda_symbol(const char* name, std::string& why);

template <typename Fn>
Fn* cuda_entry(const char* name, std::string& why) {
  return reinterpret_cast<Fn*>(cuda_symbol(name, why));
}

}  // namespace nemokit::rt
