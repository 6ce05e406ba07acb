// The runtime's CUDA path lives in libnemokit_runtime_cuda.so beside this library, opened on
// first use: nemokit starts without loading CUDA, cuBLAS or NCCL, and a machine without them
// gets a sentence instead of a loader error. The module's entry points are extern "C" so they
// are found by name; they take the runtime's own C++ types (one build makes both).
#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "cuda_module.hpp"
#include "nccl_comm.hpp"
#include "nemokit/runtime/dist.hpp"

namespace nemokit::rt {
namespace {

struct CudaModule {
  void* handle = nullptr;
  std::string error;
};

const CudaModule& cuda_module() {
  static CudaModule m;
  static std::once_flag once;
  std::call_once(once, [] {
    Dl_info self{};
    if (!::dladdr(reinterpret_cast<void*>(&cuda_module), &self) || !self.dli_fname) {
      m.error = "cannot locate libnemokit_runtime";
      return;
    }
    auto path = std::filesystem::path(self.dli_fname).parent_path() / "libnemokit_runtime_cuda.so";
    // Another build of the module: the tests' emulated one (tests/gpu) runs the CUDA path on the CPU.
    if (const char* other = std::getenv("NEMOKIT_CUDA_MODULE"); other && *other) {
      path = other;
      if (!std::filesystem::exists(path)) {
        m.error = "NEMOKIT_CUDA_MODULE names " + path.string() + ", which does not exist";
        return;
      }
    }
    if (!std::filesystem::exists(path)) {
      m.error = "this nemokit was built without CUDA (" + path.string() + " is absent)";
      return;
    }
    m.handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!m.handle) m.error = std::string("cannot load the CUDA path: ") + ::dlerror();
  });
  return m;
}

}  // namespace

void* cuda_symbol(const char* name, std::string& why) {
  const CudaModule& m = cuda_module();
  if (!m.handle) {
    why = m.error;
    return nullptr;
  }
  if (void* sym = ::dlsym(m.handle, name)) return sym;
  why = std::string("the CUDA path was built without ") + name;
  return nullptr;
}

namespace {

using NcclProbeFn = void(const RankInfo*, size_t, std::string*);
using OpenNcclFn = void(const RankInfo*, const CommOptions*, std::unique_ptr<Communicator>*, std::string*);

}  // namespace

std::string nccl_unavailable() {
  std::string why;
  cuda_entry<NcclProbeFn>("nemokit_rt_cuda_nccl_allreduce_probe", why);
  return why;
}

std::string nccl_allreduce_probe(const RankInfo& self, size_t bytes) {
  std::string why;
  auto* probe = cuda_entry<NcclProbeFn>("nemokit_rt_cuda_nccl_allreduce_probe", why);
  if (!probe) return "nccl probe: " + why;
  std::string line;
  probe(&self, bytes, &line);
  return line;
}

std::unique_ptr<Communicator> open_nccl_communicator(const RankInfo& self, const CommOptions& options) {
  static const std::string kPrefix = "device cuda requested but no CUDA device / NCCL module could not be loaded: ";
  std::string why;
  auto* open = cuda_entry<OpenNcclFn>("nemokit_rt_cuda_open_nccl_communicator", why);
  if (!open) throw std::runtime_error(kPrefix + why);
  std::unique_ptr<Communicator> comm;
  open(&self, &options, &comm, &why);
  if (!comm) throw std::runtime_error(kPrefix + (why.empty() ? "the NCCL backend gave no reason" : why));
  return comm;
}

}  // namespace nemokit::rt
