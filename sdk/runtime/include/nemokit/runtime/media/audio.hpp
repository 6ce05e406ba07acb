#pragma once
// The audio front end: WAV files in, log-mel features out.
//
//   Waveform w = read_wav("clip.wav");                       // mono float samples
//   auto x = resample(w.samples, w.sample_rate, 16000);      // band-limited
//   int64_t frames = 0;
//   auto feats = log_mel(x, LogMelOptions{}, &frames);       // [frames, 80] row-major
//
// log_mel reproduces librosa.feature.melspectrogram (periodic Hann window, centered frames with
// zero padding, power 2, Slaney mel scale and area normalization) followed by
// log(max(floor, S)).
#include <complex>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace nemokit::rt::media {

// Mono samples. Integer PCM maps to [-1, 1) (8-bit unsigned around 128, the others signed);
// float data is taken as written.
struct Waveform {
  int sample_rate = 0;
  std::vector<float> samples;
};

// RIFF/WAVE: PCM 8/16/24/32-bit integer and IEEE float 32/64-bit, as format tag 1 or 3 or
// WAVE_FORMAT_EXTENSIBLE with one of those subformats; channels are averaged to mono. Unknown
// chunks are skipped (with their pad byte when odd-sized); a trailing partial sample frame is
// dropped. Every size is checked against the bytes present; a malformed file throws
// std::runtime_error "<name>: <problem>".
Waveform read_wav(const std::filesystem::path& path);
// The same from bytes in memory; `name` starts the error messages.
Waveform read_wav_bytes(std::string_view bytes, const std::string& name);

// Band-limited resampling with a Kaiser-windowed sinc whose cutoff sits just below the lower of
// the two Nyquist frequencies (passband flat to about 0.9 of it, stopband beyond it). Output
// length ceil(x.size() * to_rate / from_rate); a copy of x when the rates match.
std::vector<float> resample(const std::vector<float>& x, int from_rate, int to_rate);

// A forward DFT of any size n >= 1: mixed-radix Cooley-Tukey (radix 2, 3, 5 butterflies, a
// direct sum for any other prime factor), twiddles computed once.
// X[k] = sum_j x[j] exp(-2 pi i j k / n).
class Fft {
 public:
  explicit Fft(int n);
  int size() const { return n_; }
  // out must not alias in; both hold n values.
  void forward(const std::complex<double>* in, std::complex<double>* out) const;

 private:
  void transform(const std::complex<double>* in, std::complex<double>* out, int m, int stride,
                 size_t level) const;
  void butterfly(std::complex<double>* out, int p, int q, int stride) const;

  int n_ = 0;
  std::vector<int> factors_;                 // radices, product n
  std::vector<std::complex<double>> twiddle_;  // exp(-2 pi i k / n), k < n
};

// The DFT of n real values: bins 0..n/2. Even n runs one complex FFT of n/2 and untangles the
// halves; odd n runs the complex FFT of n.
class RealFft {
 public:
  explicit RealFft(int n);
  int size() const { return n_; }
  int bins() const { return n_ / 2 + 1; }
  // x holds n values, X receives bins() values.
  void forward(const double* x, std::complex<double>* X) const;

 private:
  int n_ = 0;
  Fft half_;                                   // size n/2 (even n) or n (odd n)
  std::vector<std::complex<double>> split_;    // exp(-2 pi i k / n), k <= n/2 (even n)
};

struct LogMelOptions {
  int sample_rate = 16000;
  int n_fft = 400;
  int win_length = 400;
  int hop_length = 160;
  int n_mels = 80;
  float f_min = 0;
  float f_max = 8000;
  bool center = true;    // pad n_fft/2 zeros on both sides so frame t is centered on t*hop
  float floor = 1e-10f;  // power floor before the log
};

// A log-mel plan: window, FFT and Slaney mel filter bank built once per options.
class LogMel {
 public:
  // Throws std::invalid_argument for options outside n_fft >= win_length > 0, hop_length > 0,
  // n_mels > 0, 0 <= f_min < f_max <= sample_rate / 2, floor > 0.
  explicit LogMel(const LogMelOptions& options);

  const LogMelOptions& options() const { return opt_; }
  // Frames for `n_samples` samples: 1 + (padded - n_fft) / hop, 0 when shorter than a frame.
  int64_t frames(int64_t n_samples) const;
  // [frames, n_mels] row-major natural-log mel power; frames also written to *frames_out.
  std::vector<float> compute(const std::vector<float>& samples, int64_t* frames_out = nullptr) const;
  // The mel filter bank [n_mels, n_fft/2 + 1] row-major, as librosa.filters.mel(norm="slaney")
  // in float32.
  const std::vector<float>& filters() const { return filters_; }

 private:
  LogMelOptions opt_;
  RealFft fft_;
  std::vector<double> window_;   // n_fft: periodic Hann of win_length, centered, zeros around
  std::vector<float> filters_;   // [n_mels, bins]
  std::vector<int> band_begin_;  // per mel: first and one-past-last nonzero bin
  std::vector<int> band_end_;
};

// LogMel(options).compute(samples, frames_out).
std::vector<float> log_mel(const std::vector<float>& samples, const LogMelOptions& options,
                           int64_t* frames_out);

}  // namespace nemokit::rt::media
