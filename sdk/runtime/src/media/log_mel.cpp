// Log-mel features, the same numbers as librosa.feature.melspectrogram followed by
// log(max(floor, S)):
//   - frames: with center, n_fft/2 zeros on both sides (librosa >= 0.10's pad_mode="constant");
//     frame t is padded[t*hop, t*hop + n_fft)
//   - window: periodic Hann of win_length (scipy.signal.get_window("hann", win_length)), zero
//     padded to n_fft in the middle (librosa.util.pad_center)
//   - power spectrum |rfft|^2 of the windowed frame, bins 0..n_fft/2
//   - mel filters: librosa.filters.mel(htk=False, norm="slaney") - triangles between Slaney mel
//     points, each scaled to unit area (2 / (f_right - f_left)), stored in float32 as librosa does
// The FFT runs in double: a 400-point float FFT loses about 1e-6 of the frame's peak per bin,
// which is a large relative error in quiet bins once the log is taken.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "nemokit/runtime/media/audio.hpp"

namespace nemokit::rt::media {

using cd = std::complex<double>;

// ---------------------------------------------------------------------------------------------
// Complex FFT: recursive decimation in time. A transform of size m = p * q splits its input
// (read at `stride` from the caller's array) into p interleaved subsequences of size q,
// transforms each into out[j*q .. j*q+q), then combines them with one radix-p butterfly per k:
//   X[k + q*r] = sum_j (W_m^{j*k} Y_j[k]) W_p^{j*r},   W_m = exp(-2 pi i / m).
// Every W_m^x is twiddle_[x * stride] since m = n / stride.

Fft::Fft(int n) : n_(n) {
  if (n < 1) throw std::invalid_argument("Fft: size must be at least 1, got " + std::to_string(n));
  // Radix 2, 3 and 5 have hand-written butterflies; other primes use the direct sum.
  int rest = n;
  for (int p : {2, 3, 5}) {
    while (rest % p == 0) {
      factors_.push_back(p);
      rest /= p;
    }
  }
  for (int p = 7; rest > 1; p += 2) {
    if (int64_t(p) * p > rest) p = rest;  // what is left is prime
    while (rest % p == 0) {
      factors_.push_back(p);
      rest /= p;
    }
  }
  twiddle_.resize(static_cast<size_t>(n));
  for (int k = 0; k < n; ++k) {
    const double a = -2 * M_PI * double(k) / double(n);
    twiddle_[size_t(k)] = cd(std::cos(a), std::sin(a));
  }
}

void Fft::forward(const cd* in, cd* out) const {
  if (n_ == 1) {
    out[0] = in[0];
    return;
  }
  transform(in, out, n_, 1, 0);
}

void Fft::transform(const cd* in, cd* out, int m, int stride, size_t level) const {
  const int p = factors_[level];
  const int q = m / p;
  if (q == 1) {
    for (int j = 0; j < p; ++j) out[j] = in[size_t(j) * stride];
  } else {
    for (int j = 0; j < p; ++j) transform(in + size_t(j) * stride, out + size_t(j) * q, q, stride * p, level + 1);
  }
  butterfly(out, p, q, stride);
}

void Fft::butterfly(cd* out, int p, int q, int stride) const {
  const cd* w = twiddle_.data();
  auto times_minus_i = [](cd z) { return cd(z.imag(), -z.real()); };
  if (p == 2) {
    for (int k = 0; k < q; ++k) {
      const cd a0 = out[k], a1 = out[k + q] * w[size_t(k) * stride];
      out[k] = a0 + a1;
      out[k + q] = a0 - a1;
    }
  } else if (p == 3) {
    // X1,2 = a0 - (a1 + a2)/2 -/+ i sin(2pi/3) (a1 - a2)
    const double s = std::sin(2 * M_PI / 3);
    for (int k = 0; k < q; ++k) {
      const cd a0 = out[k];
      const cd a1 = out[k + q] * w[size_t(k) * stride];
      const cd a2 = out[k + 2 * q] * w[size_t(2 * k) * stride];
      const cd sum = a1 + a2, mid = a0 - 0.5 * sum, rot = times_minus_i(s * (a1 - a2));
      out[k] = a0 + sum;
      out[k + q] = mid + rot;
      out[k + 2 * q] = mid - rot;
    }
  } else if (p == 5) {
    // Pair a1 with a4 and a2 with a3: their sums take the cosines, their differences the sines.
    const double c1 = std::cos(2 * M_PI / 5), c2 = std::cos(4 * M_PI / 5);
    const double s1 = std::sin(2 * M_PI / 5), s2 = std::sin(4 * M_PI / 5);
    for (int k = 0; k < q; ++k) {
      const cd a0 = out[k];
      const cd a1 = out[k + q] * w[size_t(k) * stride];
      const cd a2 = out[k + 2 * q] * w[size_t(2 * k) * stride];
      const cd a3 = out[k + 3 * q] * w[size_t(3 * k) * stride];
      const cd a4 = out[k + 4 * q] * w[size_t(4 * k) * stride];
      const cd b1 = a1 + a4, b2 = a2 + a3, d1 = a1 - a4, d2 = a2 - a3;
      const cd e1 = a0 + c1 * b1 + c2 * b2, e2 = a0 + c2 * b1 + c1 * b2;
      const cd r1 = times_minus_i(s1 * d1 + s2 * d2), r2 = times_minus_i(s2 * d1 - s1 * d2);
      out[k] = a0 + b1 + b2;
      out[k + q] = e1 + r1;
      out[k + 4 * q] = e1 - r1;
      out[k + 2 * q] = e2 + r2;
      out[k + 3 * q] = e2 - r2;
    }
  } else {
    // Any other prime: the direct p-point DFT, W_p^y = twiddle_[(y mod p) * n / p].
    const size_t step = size_t(n_ / p);
    std::vector<cd> a(static_cast<size_t>(p));
    for (int k = 0; k < q; ++k) {
      for (int j = 0; j < p; ++j) a[size_t(j)] = out[k + j * q] * w[size_t(j) * k * stride];
      for (int r = 0; r < p; ++r) {
        cd sum = a[0];
        for (int j = 1; j < p; ++j) sum += a[size_t(j)] * w[size_t((int64_t(j) * r) % p) * step];
        out[k + r * q] = sum;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Real FFT. For even n, pack z[j] = x[2j] + i x[2j+1] and take Z = FFT_{n/2}(z). The even and
// odd halves' transforms are E[k] = (Z[k] + conj Z[h-k]) / 2 and O[k] = (Z[k] - conj Z[h-k]) / 2i,
// and X[k] = E[k] + exp(-2 pi i k / n) O[k] for k = 0..h (Z[h] = Z[0]).

RealFft::RealFft(int n) : n_(n), half_(n >= 2 && n % 2 == 0 ? n / 2 : std::max(n, 1)) {
  if (n < 1) throw std::invalid_argument("RealFft: size must be at least 1, got " + std::to_string(n));
  if (n % 2 == 0) {
    split_.resize(size_t(n / 2 + 1));
    for (int k = 0; k <= n / 2; ++k) {
      const double a = -2 * M_PI * double(k) / double(n);
      split_[size_t(k)] = cd(std::cos(a), std::sin(a));
    }
  }
}

void RealFft::forward(const double* x, cd* X) const {
  if (n_ % 2 != 0) {
    std::vector<cd> in(static_cast<size_t>(n_)), out(static_cast<size_t>(n_));
    for (int j = 0; j < n_; ++j) in[size_t(j)] = x[j];
    half_.forward(in.data(), out.data());
    for (int k = 0; k < bins(); ++k) X[k] = out[size_t(k)];
    return;
  }
  const int h = n_ / 2;
  std::vector<cd> z(static_cast<size_t>(h)), Z(static_cast<size_t>(h));
  for (int j = 0; j < h; ++j) z[size_t(j)] = cd(x[2 * j], x[2 * j + 1]);
  half_.forward(z.data(), Z.data());
  for (int k = 0; k <= h; ++k) {
    const cd zk = Z[size_t(k % h)], zr = std::conj(Z[size_t((h - k) % h)]);
    const cd even = 0.5 * (zk + zr);
    const cd odd = cd(0, -0.5) * (zk - zr);
    X[k] = even + split_[size_t(k)] * odd;
  }
}

// ---------------------------------------------------------------------------------------------
// Slaney's mel scale (librosa.hz_to_mel / mel_to_hz with htk=False): linear below 1 kHz (one
// mel per 200/3 Hz), logarithmic above it (27 mels per factor 6.4 in frequency).

namespace {

constexpr double kMelLinearHz = 200.0 / 3;
constexpr double kMelBreakHz = 1000;
constexpr double kMelBreak = kMelBreakHz / kMelLinearHz;  // 15
const double kMelLogStep = std::log(6.4) / 27;

double hz_to_mel(double hz) {
  return hz >= kMelBreakHz ? kMelBreak + std::log(hz / kMelBreakHz) / kMelLogStep : hz / kMelLinearHz;
}

double mel_to_hz(double mel) {
  return mel >= kMelBreak ? kMelBreakHz * std::exp(kMelLogStep * (mel - kMelBreak)) : mel * kMelLinearHz;
}

const LogMelOptions& validated(const LogMelOptions& o) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("log-mel options: " + what); };
  if (o.sample_rate <= 0) fail("sample_rate must be positive, got " + std::to_string(o.sample_rate));
  if (o.win_length <= 0) fail("win_length must be positive, got " + std::to_string(o.win_length));
  if (o.n_fft < o.win_length)
    fail("n_fft (" + std::to_string(o.n_fft) + ") must be at least win_length (" + std::to_string(o.win_length) + ")");
  if (o.hop_length <= 0) fail("hop_length must be positive, got " + std::to_string(o.hop_length));
  if (o.n_mels <= 0) fail("n_mels must be positive, got " + std::to_string(o.n_mels));
  if (!(o.f_min >= 0) || !(o.f_min < o.f_max) || !(o.f_max <= o.sample_rate / 2.0))
    fail("need 0 <= f_min < f_max <= sample_rate / 2, got f_min " + std::to_string(o.f_min) + ", f_max " +
         std::to_string(o.f_max) + ", sample_rate " + std::to_string(o.sample_rate));
  if (!(o.floor > 0)) fail("floor must be positive, got " + std::to_string(o.floor));
  return o;
}

}  // namespace

LogMel::LogMel(const LogMelOptions& options)
    : opt_(validated(options)), fft_(options.n_fft) {
  const int n_fft = opt_.n_fft, bins = n_fft / 2 + 1, n_mels = opt_.n_mels;

  // Periodic Hann: the first win_length points of a (win_length + 1)-point symmetric window,
  // which is what a DFT of length win_length treats as one period.
  window_.assign(size_t(n_fft), 0.0);
  const int left = (n_fft - opt_.win_length) / 2;
  for (int i = 0; i < opt_.win_length; ++i)
    window_[size_t(left + i)] = 0.5 - 0.5 * std::cos(2 * M_PI * i / opt_.win_length);

  // n_mels + 2 points evenly spaced in mel from f_min to f_max; filter m rises from point m to
  // m+1 and falls to m+2.
  std::vector<double> mel_hz(size_t(n_mels + 2));
  const double mel_lo = hz_to_mel(opt_.f_min), mel_hi = hz_to_mel(opt_.f_max);
  for (int i = 0; i < n_mels + 2; ++i)
    mel_hz[size_t(i)] = mel_to_hz(mel_lo + (mel_hi - mel_lo) * i / (n_mels + 1));

  filters_.assign(size_t(n_mels) * bins, 0.0f);
  band_begin_.assign(size_t(n_mels), 0);
  band_end_.assign(size_t(n_mels), 0);
  for (int m = 0; m < n_mels; ++m) {
    const double lo = mel_hz[size_t(m)], mid = mel_hz[size_t(m + 1)], hi = mel_hz[size_t(m + 2)];
    const double area = 2.0 / (hi - lo);  // Slaney normalization: each triangle has unit area
    int first = bins, last = 0;
    for (int b = 0; b < bins; ++b) {
      const double f = double(opt_.sample_rate) * b / n_fft;  // librosa.fft_frequencies
      const double rise = (f - lo) / (mid - lo), fall = (hi - f) / (hi - mid);
      const double v = std::max(0.0, std::min(rise, fall)) * area;
      filters_[size_t(m) * bins + b] = float(v);
      if (filters_[size_t(m) * bins + b] != 0.0f) {
        first = std::min(first, b);
        last = b + 1;
      }
    }
    // A filter narrower than a bin spacing has no weight (librosa warns); its row stays empty.
    band_begin_[size_t(m)] = first < last ? first : 0;
    band_end_[size_t(m)] = first < last ? last : 0;
  }
}

int64_t LogMel::frames(int64_t n_samples) const {
  const int64_t padded = n_samples + (opt_.center ? 2 * int64_t(opt_.n_fft / 2) : 0);
  if (padded < opt_.n_fft) return 0;
  return 1 + (padded - opt_.n_fft) / opt_.hop_length;
}

std::vector<float> LogMel::compute(const std::vector<float>& samples, int64_t* frames_out) const {
  const int n_fft = opt_.n_fft, bins = n_fft / 2 + 1, n_mels = opt_.n_mels;
  const int64_t n = int64_t(samples.size());
  const int64_t n_frames = frames(n);
  const int64_t offset = opt_.center ? n_fft / 2 : 0;  // padded index i is sample i - offset
  const double log_floor = std::log(double(opt_.floor));

  std::vector<float> out(size_t(n_frames) * n_mels);
  std::vector<double> frame(static_cast<size_t>(n_fft));
  std::vector<cd> spectrum(static_cast<size_t>(bins));
  std::vector<double> power(static_cast<size_t>(bins));
  for (int64_t t = 0; t < n_frames; ++t) {
    const int64_t start = t * opt_.hop_length - offset;
    for (int i = 0; i < n_fft; ++i) {
      const int64_t s = start + i;
      frame[size_t(i)] = (s >= 0 && s < n) ? window_[size_t(i)] * samples[size_t(s)] : 0.0;
    }
    fft_.forward(frame.data(), spectrum.data());
    for (int b = 0; b < bins; ++b) power[size_t(b)] = std::norm(spectrum[size_t(b)]);
    float* row = out.data() + t * n_mels;
    for (int m = 0; m < n_mels; ++m) {
      const float* weights = filters_.data() + size_t(m) * bins;
      double s = 0;
      for (int b = band_begin_[size_t(m)]; b < band_end_[size_t(m)]; ++b) s += double(weights[b]) * power[size_t(b)];
      row[m] = float(s > opt_.floor ? std::log(s) : log_floor);
    }
  }
  if (frames_out) *frames_out = n_frames;
  return out;
}

std::vector<float> log_mel(const std::vector<float>& samples, const LogMelOptions& options, int64_t* frames_out) {
  return LogMel(options).compute(samples, frames_out);
}

}  // namespace nemokit::rt::media
