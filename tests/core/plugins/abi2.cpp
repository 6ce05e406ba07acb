// A plugin built for a future ABI 2: its entry alias carries major 2. The host must refuse it
// from the symbol name alone, without loading it.
#include <nemokit/plugin.h>

#include <cstdlib>

namespace {
const nemokit_plugin_v1* entry() {
  std::abort();  // the host must never call this: running it would crash the test
}
}  // namespace

extern "C" {
extern const void* nemokit_plugin_v2;
__attribute__((visibility("default"), section("nemokit"), used))
const void* nemokit_plugin_v2 = reinterpret_cast<const void*>(&entry);
}
