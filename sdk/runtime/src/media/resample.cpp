// Rational-ratio resampling with a Kaiser-windowed sinc (polyphase).
//
// With g = gcd(from, to), L = to / g and M = from / g, output sample n sits at input position
// t = n * M / L = i0 + p / L: an integer input index i0 and one of L phases p. Each output is
// sum_k x[i0 + k] * h(p / L - k), where h is an ideal low-pass at cutoff fc (cycles per input
// sample) times a Kaiser window that reaches zero kZeroCrossings sinc lobes out. The taps depend
// only on the phase, so for the usual rates (22050 -> 16000 has L = 320) they are tabulated once.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <string>

#include "nemokit/runtime/media/audio.hpp"

namespace nemokit::rt::media {

namespace {

// 64 zero crossings and beta 10 give a stopband near -100 dB and a transition band about 5%
// of the output Nyquist wide; the 0.95 rolloff puts that band just below the Nyquist, so
// nothing above it folds back audibly while speech up to ~0.9 of it passes flat.
constexpr double kZeroCrossings = 64;
constexpr double kBeta = 10;
constexpr double kRolloff = 0.95;
// Phase tables larger than this (unusual coprime rates) are not stored; taps are then computed
// per output sample.
constexpr int64_t kMaxTableEntries = int64_t(1) << 20;

// Modified Bessel function of the first kind, order 0: sum_k ((x/2)^k / k!)^2.
double bessel_i0(double x) {
  double sum = 1, term = 1;
  const double q = x * x / 4;
  for (int k = 1; k < 500; ++k) {
    term *= q / (double(k) * k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

struct Kernel {
  double fc = 0;    // cutoff, cycles per input sample
  double half = 0;  // window half-width in input samples
  int reach = 0;    // taps run over k = -reach .. reach
  double inv_i0_beta = 0;

  int taps() const { return 2 * reach + 1; }

  // Taps for fractional position frac in [0, 1): out[k + reach] = h(frac - k).
  void fill(double frac, double* out) const {
    for (int k = -reach; k <= reach; ++k) {
      const double d = frac - k;
      double v = 0;
      if (std::abs(d) < half) {
        const double arg = 2 * fc * d;
        const double sinc = arg == 0 ? 1.0 : std::sin(M_PI * arg) / (M_PI * arg);
        const double r = d / half;
        v = 2 * fc * sinc * bessel_i0(kBeta * std::sqrt(1 - r * r)) * inv_i0_beta;
      }
      out[k + reach] = v;
    }
  }
};

}  // namespace

std::vector<float> resample(const std::vector<float>& x, int from_rate, int to_rate) {
  if (from_rate <= 0 || to_rate <= 0)
    throw std::invalid_argument("resample: rates must be positive (from " + std::to_string(from_rate) +
                                " Hz to " + std::to_string(to_rate) + " Hz)");
  if (from_rate == to_rate) return x;

  const int64_t g = std::gcd(from_rate, to_rate);
  const int64_t L = to_rate / g, M = from_rate / g;
  // Downsampling must cut at the output Nyquist (to/from of the input's); upsampling at the
  // input's own, to remove the images between the original samples.
  Kernel kernel;
  kernel.fc = 0.5 * std::min(1.0, double(to_rate) / from_rate) * kRolloff;
  kernel.half = kZeroCrossings / (2 * kernel.fc);
  kernel.reach = int(std::ceil(kernel.half));
  kernel.inv_i0_beta = 1 / bessel_i0(kBeta);
  const int taps = kernel.taps();

  const bool tabulated = L * taps <= kMaxTableEntries;
  std::vector<double> table;
  if (tabulated) {
    table.resize(size_t(L * taps));
    for (int64_t p = 0; p < L; ++p) kernel.fill(double(p) / double(L), table.data() + p * taps);
  }
  std::vector<double> scratch(tabulated ? 0 : size_t(taps));

  // ceil(n * L / M) without overflow for any input length.
  const int64_t n_in = int64_t(x.size());
  const int64_t n_out = (n_in / M) * L + (n_in % M * L + M - 1) / M;
  std::vector<float> y(static_cast<size_t>(n_out));
  int64_t i0 = 0, phase = 0;  // input position of output n: i0 + phase / L
  for (int64_t n = 0; n < n_out; ++n) {
    const double* h;
    if (tabulated) {
      h = table.data() + phase * taps;
    } else {
      kernel.fill(double(phase) / double(L), scratch.data());
      h = scratch.data();
    }
    // Samples outside the signal are zero: clip the tap range to [0, n_in).
    const int64_t k_begin = std::max<int64_t>(-kernel.reach, -i0);
    const int64_t k_end = std::min<int64_t>(kernel.reach, n_in - 1 - i0);
    double acc = 0;
    for (int64_t k = k_begin; k <= k_end; ++k) acc += h[k + kernel.reach] * x[size_t(i0 + k)];
    y[size_t(n)] = float(acc);
    phase += M;
    i0 += phase / L;
    phase %= L;
  }
  return y;
}

}  // namespace nemokit::rt::media
