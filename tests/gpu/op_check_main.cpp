// cuda_op_check: every GPU kernel against the CPU reference (see op_check.hpp), one line per case:
//   NAME <tab> ok|FAIL <tab> detail
// Exit 0 when all passed, 1 when one failed, 77 when no GPU is visible (ctest's skip).
//   cuda_op_check [--seed N] [SUBSTRING...]   (run the cases whose names contain a substring)
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <string>

#include "op_check.hpp"

namespace nemokit::gpucheck {
namespace {

std::map<std::string, CaseFn>& cases() {
  static std::map<std::string, CaseFn> all;
  return all;
}

}  // namespace

void cuda_or_throw(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

Registrar::Registrar(const char* name, CaseFn fn) { cases().emplace(name, std::move(fn)); }

std::vector<__nv_bfloat16> to_bf16(const std::vector<float>& v) {
  std::vector<__nv_bfloat16> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t bits = rt::float_to_bf16(v[i]);
    std::memcpy(&out[i], &bits, sizeof bits);
  }
  return out;
}

std::vector<float> to_float(const std::vector<__nv_bfloat16>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    uint16_t bits;
    std::memcpy(&bits, &v[i], sizeof bits);
    out[i] = rt::bf16_to_float(bits);
  }
  return out;
}

std::vector<float> round_bf16(std::vector<float> v) {
  for (float& x : v) x = rt::bf16_to_float(rt::float_to_bf16(x));
  return v;
}

std::vector<float> Checker::uniform(size_t n, float lo, float hi, bool bf16) {
  std::vector<float> v(n);
  for (float& x : v) x = lo + (hi - lo) * rng_.uniform();
  return bf16 ? round_bf16(std::move(v)) : v;
}

std::vector<float> Checker::normal(size_t n, float scale, bool bf16) {
  std::vector<float> v(n);
  for (float& x : v) x = scale * rng_.normal();
  return bf16 ? round_bf16(std::move(v)) : v;
}

std::vector<int32_t> Checker::ints(size_t n, int32_t lo, int32_t hi) {
  std::vector<int32_t> v(n);
  for (int32_t& x : v) x = lo + int32_t(rng_.next_u64() % uint64_t(hi - lo));
  return v;
}

void Checker::fail(const std::string& why) {
  if (failure_.empty()) failure_ = why;
}

void Checker::expect_close(const std::string& what, const std::vector<float>& gpu, const std::vector<float>& cpu,
                           Tolerance tol) {
  ++compared_;
  if (gpu.size() != cpu.size()) {
    fail(what + ": " + std::to_string(gpu.size()) + " values against the reference's " + std::to_string(cpu.size()));
    return;
  }
  for (size_t i = 0; i < gpu.size(); ++i) {
    const double g = gpu[i], r = cpu[i];
    if (std::isnan(g) && !std::isnan(r)) {
      fail(what + "[" + std::to_string(i) + "] is NaN (unwritten or invalid), reference " + std::to_string(r));
      return;
    }
    const double err = std::fabs(g - r);
    const double rel = err / std::max(std::fabs(r), 1e-30);
    if (err > worst_abs_) {
      worst_abs_ = err;
      worst_what_ = what;
    }
    if (std::fabs(r) > tol.atol) worst_rel_ = std::max(worst_rel_, rel);
    if (!(err <= tol.atol + tol.rtol * std::fabs(r))) {
      char line[256];
      std::snprintf(line, sizeof line, "%s[%zu] = %.6g, reference %.6g (|err| %.3g > %.3g + %.3g*|ref|)", what.c_str(),
                    i, g, r, err, tol.atol, tol.rtol);
      fail(line);
      return;
    }
  }
}

void Checker::expect_equal(const std::string& what, const std::vector<int32_t>& gpu, const std::vector<int32_t>& cpu) {
  ++compared_;
  if (gpu.size() != cpu.size()) {
    fail(what + ": " + std::to_string(gpu.size()) + " values against the reference's " + std::to_string(cpu.size()));
    return;
  }
  for (size_t i = 0; i < gpu.size(); ++i)
    if (gpu[i] != cpu[i]) {
      fail(what + "[" + std::to_string(i) + "] = " + std::to_string(gpu[i]) + ", reference " + std::to_string(cpu[i]));
      return;
    }
}

std::string Checker::summary() const {
  char line[256];
  std::snprintf(line, sizeof line, "%d outputs, max abs err %.3g (%s), max rel err %.3g", compared_, worst_abs_,
                worst_what_.empty() ? "-" : worst_what_.c_str(), worst_rel_);
  return line;
}

}  // namespace nemokit::gpucheck

int main(int argc, char** argv) {
  using namespace nemokit::gpucheck;
  uint64_t seed = 1234;
  std::vector<std::string> only;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--seed") && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 10);
    else only.emplace_back(argv[i]);
  }
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("skipped: no CUDA device visible\n");
    return 77;
  }
  int failed = 0, ran = 0;
  for (auto& [name, fn] : cases()) {
    if (!only.empty()) {
      bool wanted = false;
      for (const auto& s : only) wanted |= name.find(s) != std::string::npos;
      if (!wanted) continue;
    }
    ++ran;
    // Each case gets its own stream of random inputs, whichever cases run before it.
    Checker c(seed ^ std::hash<std::string>{}(name));
    try {
      fn(c);
    } catch (const std::exception& e) {
      c.fail(std::string("threw: ") + e.what());
    }
    std::printf("%s\t%s\t%s\n", name.c_str(), c.ok() ? "ok" : "FAIL", c.ok() ? c.summary().c_str() : c.failure().c_str());
    std::fflush(stdout);
    if (!c.ok()) ++failed;
  }
  if (ran == 0) {
    std::fprintf(stderr, "cuda_op_check: no case matches\n");
    return 2;
  }
  return failed ? 1 : 0;
}
