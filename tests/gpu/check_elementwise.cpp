// Elementwise kernels against the CPU reference.
#include <string>

#include "elementwise.cuh"
#include "nemokit/runtime/kernels.hpp"
#include "op_check.hpp"

namespace cpu = nemokit::rt::kernels;
namespace gpu = nemokit::rt::cuda;
using namespace nemokit::gpucheck;

GPU_OP_CASE(relu2) {
  const int64_t n = 100003;  // not a multiple of the block size
  auto x = c.uniform(n), dy = c.uniform(n), dx0 = c.uniform(n);
  DeviceArray<__nv_bfloat16> dx_d(n), dy_d(n), y_d(n), x_d(n);
  x_d.upload(to_bf16(x));
  dy_d.upload(to_bf16(dy));
  dx_d.upload(to_bf16(dx0));
  y_d.poison();
  gpu::relu2_forward(y_d.get(), x_d.get(), n, nullptr);
  gpu::relu2_backward(dx_d.get(), dy_d.get(), x_d.get(), n, nullptr);

  std::vector<float> y(n), dx = dx0;
  cpu::relu2_forward(y.data(), x.data(), n);
  cpu::relu2_backward(dx.data(), dy.data(), x.data(), n);
  c.expect_close("y", y_d.download(), y, kBf16Out);
  c.expect_close("dx", dx_d.download(), dx, kBf16Out);
}

GPU_OP_CASE(silu) {
  for (const size_t n : {size_t(100000), size_t(100003)}) {  // 16-byte path, then one value per thread
    auto x = c.normal(n, 4.0f), dy = c.uniform(n), dx0 = c.uniform(n);
    DeviceArray<__nv_bfloat16> x_d(n), y_d(n), dy_d(n), dx_d(n);
    x_d.upload(to_bf16(x));
    dy_d.upload(to_bf16(dy));
    dx_d.upload(to_bf16(dx0));
    y_d.poison();
    gpu::silu_forward(y_d.get(), x_d.get(), int64_t(n), nullptr);
    gpu::silu_backward(dx_d.get(), dy_d.get(), x_d.get(), int64_t(n), nullptr);
    std::vector<float> y(n), dx = dx0;
    for (size_t i = 0; i < n; ++i) {
      y[i] = cpu::silu(x[i]);
      dx[i] += dy[i] * cpu::silu_grad(x[i]);
    }
    const std::string tag = "(n " + std::to_string(n) + ")";
    c.expect_close("silu y" + tag, y_d.download(), y, kBf16Out);
    c.expect_close("silu dx" + tag, dx_d.download(), dx, kBf16Out);
  }
}
