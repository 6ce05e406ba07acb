// How far two runs' checkpoints are apart: the worst per-tensor relative error between two
// safetensors files holding the same tensors, as the data- and expert-parallel tests bound it.
#pragma once

#include "nemokit/runtime/safetensors.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <utility>

namespace nemokit::test {

inline double relative_error(double a, double b) { return std::abs(a - b) / std::max(std::abs(a), 1e-30); }

// max over tensors of |b - a| / |a| (L2 norms), and that tensor's name; a tensor one file lacks
// is a test failure.
inline std::pair<double, std::string> worst_tensor_error(const std::filesystem::path& a_path,
                                                         const std::filesystem::path& b_path) {
  auto fa = nemokit::rt::SafetensorsFile::open(a_path.string());
  auto fb = nemokit::rt::SafetensorsFile::open(b_path.string());
  EXPECT_EQ(fa.entries().size(), fb.entries().size()) << a_path << " vs " << b_path;
  double worst = 0;
  std::string worst_name;
  for (const auto& e : fa.entries()) {
    if (!fb.find(e.name)) {
      ADD_FAILURE() << b_path << " lacks " << e.name;
      continue;
    }
    nemokit::rt::Tensor a = fa.load_f32(e.name), b = fb.load_f32(e.name);
    EXPECT_EQ(a.numel(), b.numel()) << e.name;
    if (a.numel() != b.numel()) continue;
    double diff = 0, norm = 0;
    for (int64_t i = 0; i < a.numel(); ++i) {
      double d = double(a.f32()[i]) - double(b.f32()[i]);
      diff += d * d;
      norm += double(a.f32()[i]) * double(a.f32()[i]);
    }
    double rel = norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
    if (rel > worst) worst = rel, worst_name = e.name;
  }
  return {worst, worst_name};
}

}  // namespace nemokit::test
