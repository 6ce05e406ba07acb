// Device memory for rt::Tensor's CUDA storage (src/tensor/tensor.cpp opens these entries through
// the CUDA module). Memory is allocated on the calling thread's current device; copies use
// unified addressing (cudaMemcpyDefault), so one entry moves host<->device and device<->device.
// Copies and memsets synchronize: a Tensor's bytes are final when the call returns.
#include <cuda_runtime.h>

#include <string>

namespace {

bool failed(cudaError_t e, const char* what, std::string* error) {
  if (e == cudaSuccess) return false;
  *error = std::string(what) + ": " + cudaGetErrorString(e);
  return true;
}

}  // namespace

#define NEMOKIT_CUDA_ENTRY extern "C" __attribute__((visibility("default")))

// The number of visible devices, 0 with the reason in *error (no driver, no device).
NEMOKIT_CUDA_ENTRY int nemokit_rt_cuda_devices(std::string* error) {
  int devices = 0;
  const cudaError_t e = cudaGetDeviceCount(&devices);
  if (e != cudaSuccess || devices == 0) {
    // Without a driver (a machine with no GPU) the runtime says "driver version is insufficient".
    *error = "no CUDA device is visible";
    if (e != cudaSuccess && e != cudaErrorNoDevice) *error += std::string(" (") + cudaGetErrorString(e) + ")";
    return 0;
  }
  return devices;
}

NEMOKIT_CUDA_ENTRY void nemokit_rt_cuda_alloc(size_t bytes, void** out, std::string* error) {
  *out = nullptr;
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    *error = "no CUDA device is visible";
    return;
  }
  void* p = nullptr;
  if (failed(cudaMalloc(&p, bytes), ("cudaMalloc of " + std::to_string(bytes) + " bytes").c_str(), error)) return;
  *out = p;
}

NEMOKIT_CUDA_ENTRY void nemokit_rt_cuda_free(void* p) { cudaFree(p); }

NEMOKIT_CUDA_ENTRY bool nemokit_rt_cuda_copy(void* dst, const void* src, size_t bytes, std::string* error) {
  return !failed(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault), "cudaMemcpy", error);
}

NEMOKIT_CUDA_ENTRY bool nemokit_rt_cuda_memset(void* p, int value, size_t bytes, std::string* error) {
  if (failed(cudaMemset(p, value, bytes), "cudaMemset", error)) return false;
  return !failed(cudaDeviceSynchronize(), "cudaMemset (synchronize)", error);
}
