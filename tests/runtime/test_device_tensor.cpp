// Tensors on the GPU: storage from the CUDA module, copies both ways, clone, zero and dtype
// conversion on the device. On a machine without a GPU (or a build without CUDA) asking for
// CUDA storage fails at once with the reason; the GPU half runs where one is visible (and in
// bench/gpu/check.sh).
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "nemokit/runtime/tensor.hpp"

namespace rt = nemokit::rt;

namespace {

bool have_gpu() { return ::access("/dev/nvidia0", F_OK) == 0 && ::access("/dev/nvidiactl", F_OK) == 0; }

rt::Tensor counting(std::vector<int64_t> shape) {
  rt::Tensor t = rt::Tensor::empty(std::move(shape));
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = 0.25f * float(i) - 3.0f;
  return t;
}

}  // namespace

TEST(DeviceTensor, CpuCopyIsItsOwnStorage) {
  rt::Tensor a = counting({3, 5});
  rt::Tensor b = a.to(rt::Device::cpu);
  ASSERT_NE(a.raw(), b.raw());
  EXPECT_EQ(b.shape(), a.shape());
  for (int64_t i = 0; i < a.numel(); ++i) EXPECT_EQ(b.f32()[i], a.f32()[i]);
}

TEST(DeviceTensor, WithoutAGpuCudaStorageFailsWithTheReason) {
  if (have_gpu()) GTEST_SKIP() << "a GPU is visible: the round trip below runs instead";
  for (auto attempt : {+[] { rt::Tensor::empty({2, 3}, rt::DType::bf16, rt::Device::cuda); },
                       +[] { counting({4}).to(rt::Device::cuda); }}) {
    try {
      attempt();
      FAIL() << "CUDA storage without a GPU";
    } catch (const std::runtime_error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("on cuda: "), std::string::npos) << m;
      EXPECT_TRUE(m.find("no CUDA device is visible") != std::string::npos ||
                  m.find("built without CUDA") != std::string::npos || m.find("cannot load the CUDA path") != std::string::npos)
          << m;
    }
  }
}

TEST(DeviceTensor, RoundTripCloneZeroAndConvertOnTheGpu) {
  if (!have_gpu()) GTEST_SKIP() << "no GPU visible (/dev/nvidia0)";
  rt::Tensor host = counting({7, 9});
  rt::Tensor dev = host.to(rt::Device::cuda);
  EXPECT_EQ(dev.device(), rt::Device::cuda);
  EXPECT_THROW(dev.f32(), std::runtime_error);  // host access to device memory is refused
  rt::Tensor copy = dev.clone();
  ASSERT_NE(copy.raw(), dev.raw());
  dev.zero();
  rt::Tensor zeros = dev.to(rt::Device::cpu), back = copy.to(rt::Device::cpu);
  for (int64_t i = 0; i < host.numel(); ++i) {
    EXPECT_EQ(back.f32()[i], host.f32()[i]) << i;
    EXPECT_EQ(zeros.f32()[i], 0.0f) << i;
  }
  rt::Tensor bf = copy.to(rt::DType::bf16);
  EXPECT_EQ(bf.device(), rt::Device::cuda);
  rt::Tensor bf_host = bf.to(rt::Device::cpu), want = host.to(rt::DType::bf16);
  for (int64_t i = 0; i < host.numel(); ++i) EXPECT_EQ(bf_host.data<uint16_t>()[i], want.data<uint16_t>()[i]) << i;
  // An empty tensor moves too.
  EXPECT_EQ(rt::Tensor::empty({0, 4}).to(rt::Device::cuda).to(rt::Device::cpu).numel(), 0);
}
