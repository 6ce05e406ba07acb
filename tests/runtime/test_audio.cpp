// The audio front end: log-mel features against librosa's numbers (fixtures/log_mel from
// make_log_mel_fixture.py), the FFT against a direct DFT, WAV files of every supported layout
// and malformed ones written to disk, and the resampler's passband and stopband.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "nemokit/runtime/data/npy.hpp"
#include "nemokit/runtime/media/audio.hpp"
#include "scratch_path.hpp"

using namespace nemokit::rt;
using namespace nemokit::rt::media;
namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(NEMOKIT_SOURCE_DIR) / "tests/runtime/fixtures/log_mel";

fs::path fresh_dir(const std::string& name) { return nemokit::rt::testing::fresh_dir("runtime_audio_test", name); }

// --- WAV bytes -------------------------------------------------------------------------------

std::string le16(uint32_t v) { return std::string{char(v & 0xFF), char((v >> 8) & 0xFF)}; }
std::string le32(uint32_t v) { return le16(v & 0xFFFF) + le16(v >> 16); }

std::string chunk(const std::string& id, const std::string& payload) {
  std::string c = id + le32(uint32_t(payload.size())) + payload;
  if (payload.size() % 2) c += '\0';
  return c;
}

std::string riff(const std::string& chunks) { return "RIFF" + le32(uint32_t(4 + chunks.size())) + "WAVE" + chunks; }

std::string fmt_payload(uint16_t tag, int channels, int rate, int bits) {
  const int align = channels * bits / 8;
  return le16(tag) + le16(uint16_t(channels)) + le32(uint32_t(rate)) + le32(uint32_t(rate * align)) +
         le16(uint16_t(align)) + le16(uint16_t(bits));
}

// WAVE_FORMAT_EXTENSIBLE: cbSize 22, valid bits, channel mask, KSDATAFORMAT_SUBTYPE_<sub>.
std::string fmt_extensible_payload(uint16_t sub, int channels, int rate, int bits) {
  static const unsigned char tail[14] = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                         0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};
  return fmt_payload(0xFFFE, channels, rate, bits) + le16(22) + le16(uint16_t(bits)) + le32(0) + le16(sub) +
         std::string(reinterpret_cast<const char*>(tail), 14);
}

std::string pcm24(int32_t v) {
  const uint32_t u = uint32_t(v);
  return std::string{char(u & 0xFF), char((u >> 8) & 0xFF), char((u >> 16) & 0xFF)};
}

std::string f32(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  return le32(u);
}

std::string f64(double v) {
  uint64_t u;
  std::memcpy(&u, &v, 8);
  return le32(uint32_t(u)) + le32(uint32_t(u >> 32));
}

fs::path write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  out.close();
  EXPECT_TRUE(out.good()) << path;
  return path;
}

// --- signals ---------------------------------------------------------------------------------

std::vector<float> sine(double freq, double amp, int rate, double seconds) {
  std::vector<float> x(size_t(std::lround(rate * seconds)));
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(amp * std::sin(2 * M_PI * freq * double(i) / rate));
  return x;
}

// Least-squares fit of a sin(wt) + b cos(wt) at a known frequency to y[begin, end): a
// non-integer number of periods does not leak into the estimate.
struct ToneFit {
  double a = 0, b = 0;
  double amplitude() const { return std::hypot(a, b); }
};

ToneFit fit_tone(const std::vector<float>& y, double freq, int rate, size_t begin, size_t end) {
  double ss = 0, cc = 0, sc = 0, ys = 0, yc = 0;
  for (size_t i = begin; i < end; ++i) {
    const double w = 2 * M_PI * freq * double(i) / rate, s = std::sin(w), c = std::cos(w);
    ss += s * s;
    cc += c * c;
    sc += s * c;
    ys += y[i] * s;
    yc += y[i] * c;
  }
  const double det = ss * cc - sc * sc;
  return {(ys * cc - yc * sc) / det, (yc * ss - ys * sc) / det};
}

double amplitude_at(const std::vector<float>& y, double freq, int rate, size_t begin, size_t end) {
  return fit_tone(y, freq, rate, begin, end).amplitude();
}

// RMS of what is left after subtracting the fitted tone.
double residual_rms(const std::vector<float>& y, double freq, int rate, size_t begin, size_t end) {
  const ToneFit f = fit_tone(y, freq, rate, begin, end);
  double s = 0;
  for (size_t i = begin; i < end; ++i) {
    const double w = 2 * M_PI * freq * double(i) / rate;
    const double r = y[i] - (f.a * std::sin(w) + f.b * std::cos(w));
    s += r * r;
  }
  return std::sqrt(s / double(end - begin));
}

double rms(const std::vector<float>& y, size_t begin, size_t end) {
  double s = 0;
  for (size_t i = begin; i < end; ++i) s += double(y[i]) * y[i];
  return std::sqrt(s / double(end - begin));
}

// Frequency from rising zero crossings (interpolated linearly) between the first and last one.
double zero_crossing_frequency(const std::vector<float>& y, int rate, size_t begin, size_t end) {
  double first = -1, last = -1;
  int count = 0;
  for (size_t i = begin + 1; i < end; ++i) {
    if (y[i - 1] < 0 && y[i] >= 0) {
      const double t = double(i - 1) + y[i - 1] / (y[i - 1] - y[i]);
      if (first < 0) first = t;
      last = t;
      ++count;
    }
  }
  return count > 1 ? (count - 1) * double(rate) / (last - first) : 0;
}

// --- log-mel against the fixture -------------------------------------------------------------

double max_abs_diff_to_fixture(const LogMelOptions& opt, const std::string& npy_name, int64_t expect_frames) {
  const Waveform w = read_wav(kFixtures / "speech_like_16k.wav");
  EXPECT_EQ(w.sample_rate, 16000);
  EXPECT_EQ(w.samples.size(), 9600u);
  int64_t frames = -1;
  const std::vector<float> got = log_mel(w.samples, opt, &frames);
  const NpyArray ref = read_npy(kFixtures / npy_name);
  EXPECT_EQ(ref.type, NpyType::F32);
  EXPECT_EQ(ref.shape, (std::vector<int64_t>{expect_frames, opt.n_mels}));
  EXPECT_EQ(frames, expect_frames);
  EXPECT_EQ(int64_t(got.size()), ref.numel());
  if (int64_t(got.size()) != ref.numel()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(double(got[i]) - ref.as<float>()[i]));
  return worst;
}

TEST(runtime_audio, LogMelMatchesLibrosaFixture) {
  const double err = max_abs_diff_to_fixture(LogMelOptions{}, "speech_like_16k.npy", 61);
  std::printf("log-mel vs fixture (n_fft 400, 80 mels): max abs error %.3g\n", err);
  EXPECT_LT(err, 1e-4);
}

TEST(runtime_audio, LogMelShortWindowUncenteredMatchesLibrosaFixture) {
  LogMelOptions opt;
  opt.n_fft = 512;
  opt.win_length = 320;
  opt.hop_length = 100;
  opt.n_mels = 40;
  opt.f_min = 50;
  opt.f_max = 7600;
  opt.center = false;
  const double err = max_abs_diff_to_fixture(opt, "speech_like_16k_n512_w320_h100_m40.npy", 91);
  std::printf("log-mel vs fixture (n_fft 512, win 320, 40 mels, uncentered): max abs error %.3g\n", err);
  EXPECT_LT(err, 1e-4);
}

TEST(runtime_audio, LogMelFramesFloorAndPlanReuse) {
  const LogMel plan{LogMelOptions{}};
  EXPECT_EQ(plan.frames(0), 1);  // centered: n_fft/2 zeros each side make one frame
  EXPECT_EQ(plan.frames(159), 1);
  EXPECT_EQ(plan.frames(160), 2);
  EXPECT_EQ(plan.frames(16000), 101);
  // Silence hits the floor everywhere.
  int64_t frames = 0;
  const std::vector<float> silent = plan.compute(std::vector<float>(1600, 0.0f), &frames);
  ASSERT_EQ(frames, 11);
  for (float v : silent) EXPECT_FLOAT_EQ(v, std::log(1e-10f));
  // Each Slaney filter has unit area in Hz: sum_b w[m][b] * (sr / n_fft) ~= 1 for the filters
  // wide enough (upper bands, several bins each) for 40 Hz bins to sample the triangle well.
  const std::vector<float>& fb = plan.filters();
  ASSERT_EQ(fb.size(), size_t(80 * 201));
  for (int m = 50; m < 80; ++m) {
    double area = 0;
    for (int b = 0; b < 201; ++b) area += fb[size_t(m) * 201 + b] * 40.0;
    EXPECT_NEAR(area, 1.0, 0.02) << "mel " << m;
  }
  // A 1 kHz tone puts its largest band near 1 kHz (Slaney mel 15 of 0..~45 over 80 bands).
  const std::vector<float> tone = plan.compute(sine(1000, 0.5, 16000, 0.1), &frames);
  const float* row = tone.data() + 5 * 80;
  const int peak = int(std::max_element(row, row + 80) - row);
  EXPECT_NEAR(peak, 26, 1);
}

TEST(runtime_audio, LogMelRejectsBadOptions) {
  auto message = [](LogMelOptions o) {
    try {
      LogMel plan(o);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  LogMelOptions o;
  o.win_length = 512;
  EXPECT_NE(message(o).find("n_fft (400) must be at least win_length (512)"), std::string::npos) << message(o);
  o = {};
  o.win_length = 0;
  EXPECT_NE(message(o).find("win_length must be positive"), std::string::npos) << message(o);
  o = {};
  o.hop_length = 0;
  EXPECT_NE(message(o).find("hop_length must be positive"), std::string::npos) << message(o);
  o = {};
  o.n_mels = 0;
  EXPECT_NE(message(o).find("n_mels must be positive"), std::string::npos) << message(o);
  o = {};
  o.f_max = 9000;
  EXPECT_NE(message(o).find("0 <= f_min < f_max <= sample_rate / 2"), std::string::npos) << message(o);
  o = {};
  o.f_min = 8000;
  EXPECT_NE(message(o).find("0 <= f_min < f_max"), std::string::npos) << message(o);
  o = {};
  o.f_min = -1;
  EXPECT_NE(message(o).find("0 <= f_min"), std::string::npos) << message(o);
}

// --- FFT ---------------------------------------------------------------------------------------

std::vector<std::complex<double>> direct_dft(const std::vector<std::complex<double>>& x) {
  const size_t n = x.size();
  std::vector<std::complex<double>> X(n);
  for (size_t k = 0; k < n; ++k) {
    std::complex<long double> s = 0;
    for (size_t j = 0; j < n; ++j) {
      const long double a = -2.0L * 3.14159265358979323846264338327950288L * (long double)((j * k) % n) / n;
      s += std::complex<long double>(x[j]) * std::complex<long double>(std::cos(a), std::sin(a));
    }
    X[k] = std::complex<double>(s);
  }
  return X;
}

TEST(runtime_audio, FftMatchesDirectDft) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<int> sizes = {400, 512, 7 * 11, 1, 2, 3, 5, 6, 25, 49, 97, 121, 200, 360, 1001};
  for (int n : sizes) {
    std::vector<std::complex<double>> x(static_cast<size_t>(n)), X(static_cast<size_t>(n));
    std::vector<double> real(static_cast<size_t>(n));
    for (int j = 0; j < n; ++j) {
      x[size_t(j)] = {u(rng), u(rng)};
      real[size_t(j)] = u(rng);
    }
    const Fft fft(n);
    fft.forward(x.data(), X.data());
    const auto ref = direct_dft(x);
    double err = 0;
    for (int k = 0; k < n; ++k) err = std::max(err, std::abs(X[size_t(k)] - ref[size_t(k)]));
    EXPECT_LT(err, 1e-12 * n) << "complex n=" << n;

    const RealFft rfft(n);
    ASSERT_EQ(rfft.bins(), n / 2 + 1);
    std::vector<std::complex<double>> R(size_t(rfft.bins()));
    rfft.forward(real.data(), R.data());
    std::vector<std::complex<double>> xr(real.begin(), real.end());
    const auto rref = direct_dft(xr);
    err = 0;
    for (int k = 0; k < rfft.bins(); ++k) err = std::max(err, std::abs(R[size_t(k)] - rref[size_t(k)]));
    EXPECT_LT(err, 1e-12 * n) << "real n=" << n;
  }
  EXPECT_THROW(Fft(0), std::invalid_argument);
}

// --- WAV reading -------------------------------------------------------------------------------

void expect_samples(const Waveform& w, int rate, const std::vector<float>& expect, const std::string& what) {
  EXPECT_EQ(w.sample_rate, rate) << what;
  ASSERT_EQ(w.samples.size(), expect.size()) << what;
  for (size_t i = 0; i < expect.size(); ++i) EXPECT_FLOAT_EQ(w.samples[i], expect[i]) << what << " sample " << i;
}

TEST(runtime_audio, ReadsEveryPcmAndFloatLayout) {
  const fs::path dir = fresh_dir("layouts");
  // 8-bit is unsigned around 128.
  {
    const std::string data{char(128), char(192), char(0), char(255)};
    const auto p = write_file(dir / "u8.wav", riff(chunk("fmt ", fmt_payload(1, 1, 8000, 8)) + chunk("data", data)));
    expect_samples(read_wav(p), 8000, {0.0f, 0.5f, -1.0f, 127.0f / 128}, "8-bit");
  }
  {
    const std::string data = le16(0) + le16(16384) + le16(0x8000) + le16(0x7FFF) + le16(0xFFFF);
    const auto p = write_file(dir / "s16.wav", riff(chunk("fmt ", fmt_payload(1, 1, 16000, 16)) + chunk("data", data)));
    expect_samples(read_wav(p), 16000, {0.0f, 0.5f, -1.0f, 32767.0f / 32768, -1.0f / 32768}, "16-bit");
  }
  {
    const std::string data = pcm24(0) + pcm24(1 << 22) + pcm24(-(1 << 23)) + pcm24((1 << 23) - 1) + pcm24(-1);
    const auto p = write_file(dir / "s24.wav", riff(chunk("fmt ", fmt_payload(1, 1, 44100, 24)) + chunk("data", data)));
    expect_samples(read_wav(p), 44100, {0.0f, 0.5f, -1.0f, float(8388607.0 / 8388608), float(-1.0 / 8388608)},
                   "24-bit");
  }
  {
    const std::string data = le32(0) + le32(1u << 30) + le32(0x80000000u) + le32(0xFFFFFFFFu) + le32(0x7FFFFFFFu);
    const auto p = write_file(dir / "s32.wav", riff(chunk("fmt ", fmt_payload(1, 1, 48000, 32)) + chunk("data", data)));
    expect_samples(read_wav(p), 48000, {0.0f, 0.5f, -1.0f, float(-1.0 / 2147483648.0), 1.0f}, "32-bit");
  }
  {
    const std::string data = f32(0.25f) + f32(-0.75f) + f32(1.0f);
    const auto p = write_file(dir / "f32.wav", riff(chunk("fmt ", fmt_payload(3, 1, 22050, 32)) + chunk("data", data)));
    expect_samples(read_wav(p), 22050, {0.25f, -0.75f, 1.0f}, "float32");
  }
  {
    const std::string data = f64(0.125) + f64(-0.5);
    const auto p = write_file(dir / "f64.wav", riff(chunk("fmt ", fmt_payload(3, 1, 22050, 64)) + chunk("data", data)));
    expect_samples(read_wav(p), 22050, {0.125f, -0.5f}, "float64");
  }
  // Stereo averages the channels; an odd-sized LIST chunk (with its pad byte) sits between fmt
  // and data, and a trailing partial frame is dropped.
  {
    const std::string data = le16(16384) + le16(0) + le16(0x8000) + le16(uint16_t(-16384)) + le16(1234);
    const auto p = write_file(dir / "stereo.wav", riff(chunk("fmt ", fmt_payload(1, 2, 16000, 16)) +
                                                         chunk("LIST", "abc") + chunk("data", data)));
    expect_samples(read_wav(p), 16000, {0.25f, -0.75f}, "stereo");
  }
  // WAVE_FORMAT_EXTENSIBLE: 3 channels of 24-bit PCM, and float; data before a trailing chunk.
  {
    const std::string data = pcm24(1 << 22) + pcm24(1 << 22) + pcm24(-(1 << 23)) + pcm24(0) + pcm24(0) + pcm24(3 << 21);
    const auto p = write_file(dir / "ext24.wav", riff(chunk("fmt ", fmt_extensible_payload(1, 3, 96000, 24)) +
                                                        chunk("data", data) + chunk("id3 ", "tag")));
    expect_samples(read_wav(p), 96000, {0.0f, 0.25f}, "extensible 24-bit");
  }
  {
    const std::string data = f32(0.5f) + f32(-0.25f);
    const auto p = write_file(dir / "extf.wav", riff(chunk("fmt ", fmt_extensible_payload(3, 1, 16000, 32)) + chunk("data", data)));
    expect_samples(read_wav(p), 16000, {0.5f, -0.25f}, "extensible float");
  }
  // The committed fixture: 0.4 s at 22,050 Hz.
  const Waveform w = read_wav(kFixtures / "tones_22050.wav");
  EXPECT_EQ(w.sample_rate, 22050);
  EXPECT_EQ(w.samples.size(), 8820u);
}

TEST(runtime_audio, MalformedFilesNameTheFileAndTheProblem) {
  const fs::path dir = fresh_dir("malformed");
  const std::string fmt16 = chunk("fmt ", fmt_payload(1, 1, 16000, 16));
  const std::string data4 = chunk("data", le16(1) + le16(2));
  struct Case {
    std::string file, bytes, problem;
  };
  std::string zero_channels = fmt_payload(1, 1, 16000, 16);
  zero_channels[2] = 0;  // channel count
  std::string past_eof = riff(fmt16 + "data" + le32(1000) + le16(1) + le16(2));
  const std::vector<Case> cases = {
      {"truncated_header.wav", std::string("RIFF\x10\x00", 6), "too short for a RIFF/WAVE header (6 bytes)"},
      {"not_riff.wav", "RIFX" + le32(4) + "WAVE" + fmt16 + data4, "not a RIFF/WAVE file"},
      {"avi.wav", "RIFF" + le32(4) + "AVI " + fmt16 + data4, "not a RIFF/WAVE file"},
      {"data_past_eof.wav", past_eof, "data chunk runs past the end of the file (1000 bytes declared, 4 present)"},
      {"no_fmt.wav", riff(data4), "no fmt chunk"},
      {"no_data.wav", riff(fmt16), "no data chunk"},
      {"zero_channels.wav", riff(chunk("fmt ", zero_channels) + data4), "fmt chunk says 0 channels"},
      {"adpcm.wav", riff(chunk("fmt ", fmt_payload(2, 1, 16000, 16)) + data4), "unsupported sample format 0x0002 (ADPCM)"},
      {"mulaw.wav", riff(chunk("fmt ", fmt_payload(7, 1, 8000, 8)) + data4), "unsupported sample format 0x0007 (mu-law)"},
      {"ext_adpcm.wav", riff(chunk("fmt ", fmt_extensible_payload(2, 1, 16000, 16)) + data4),
       "unsupported WAVE_FORMAT_EXTENSIBLE subformat 0x0002 (ADPCM)"},
      {"ext_short.wav", riff(chunk("fmt ", fmt_payload(0xFFFE, 1, 16000, 16)) + data4),
       "WAVE_FORMAT_EXTENSIBLE fmt chunk is 16 bytes, needs 40"},
      {"absurd_chunk.wav", riff("LIST" + le32(0xFFFFFFF0u) + "junk" + fmt16 + data4),
       "chunk 'LIST' at offset 12 declares 4294967280 bytes, past the end of the file"},
      {"absurd_data.wav", riff(fmt16 + "data" + le32(0xFFFFFFFFu) + le16(1)),
       "data chunk runs past the end of the file (4294967295 bytes declared, 2 present)"},
      {"short_fmt.wav", riff(chunk("fmt ", fmt_payload(1, 1, 16000, 16).substr(0, 10)) + data4),
       "fmt chunk is 10 bytes, needs at least 16"},
      {"pcm12.wav", riff(chunk("fmt ", fmt_payload(1, 1, 16000, 12)) + data4), "unsupported PCM sample size 12 bits"},
      {"float16.wav", riff(chunk("fmt ", fmt_payload(3, 1, 16000, 16)) + data4), "unsupported float sample size 16 bits"},
      {"zero_rate.wav", riff(chunk("fmt ", fmt_payload(1, 1, 0, 16)) + data4), "fmt chunk says sample rate 0"},
      {"bad_align.wav", riff(chunk("fmt ", fmt_payload(1, 2, 16000, 16).substr(0, 12) + le16(3) + le16(16)) + data4),
       "fmt chunk block align 3 does not match 2 channels of 16 bits (4)"},
      {"two_data.wav", riff(fmt16 + data4 + data4), "more than one data chunk"},
      {"binary_id.wav", riff(std::string("\x01\x02zz", 4) + le32(100) + fmt16), "chunk '\\x01\\x02zz' at offset 12"},
  };
  for (const Case& c : cases) {
    const fs::path p = write_file(dir / c.file, c.bytes);
    try {
      read_wav(p);
      ADD_FAILURE() << c.file << ": no error";
    } catch (const std::runtime_error& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind(p.string() + ": ", 0), 0u) << msg;
      EXPECT_NE(msg.find(c.problem), std::string::npos) << c.file << ": " << msg;
    }
  }
  try {
    read_wav(dir / "missing.wav");
    ADD_FAILURE() << "missing file read";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), (dir / "missing.wav").string() + ": cannot open");
  }
  // read_wav_bytes names the source it is given.
  try {
    read_wav_bytes("RIFF", "memory.wav");
    ADD_FAILURE() << "4 bytes read";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "memory.wav: too short for a RIFF/WAVE header (4 bytes)");
  }
  // Every prefix of a valid file is either read or rejected with a message; none crashes.
  const std::string good = riff(fmt16 + chunk("LIST", "abc") + data4);
  for (size_t n = 0; n < good.size(); ++n) {
    try {
      read_wav_bytes(std::string_view(good).substr(0, n), "prefix.wav");
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("prefix.wav: ", 0), 0u);
    }
  }
}

// --- resampling --------------------------------------------------------------------------------

TEST(runtime_audio, ResampleKeepsTheToneAndRemovesWhatCannotBeRepresented) {
  // 1 kHz at 22,050 Hz -> 16 kHz: frequency and amplitude survive.
  const std::vector<float> x = sine(1000, 0.5, 22050, 1.0);
  const std::vector<float> y = resample(x, 22050, 16000);
  ASSERT_EQ(y.size(), 16000u);
  // Skip the filter's reach at both ends, where the signal meets the zeros outside it.
  const size_t lo = 200, hi = y.size() - 200;
  const double freq = zero_crossing_frequency(y, 16000, lo, hi);
  const double amp = amplitude_at(y, 1000, 16000, lo, hi);
  std::printf("1 kHz 22050 -> 16000: %.4f Hz, amplitude %.5f (of 0.5)\n", freq, amp);
  EXPECT_NEAR(freq, 1000, 1);
  EXPECT_NEAR(amp, 0.5, 0.005);
  // What remains after removing the fitted tone is small: the sine is clean, not just present.
  const double resid = residual_rms(y, 1000, 16000, lo, hi);
  std::printf("  residual after the tone: %.2g rms\n", resid);
  EXPECT_LT(resid, 1e-3);

  // 10 kHz lies above the 8 kHz output Nyquist: attenuated by more than 40 dB (it would fold
  // to 6 kHz).
  const std::vector<float> z = resample(sine(10000, 0.5, 22050, 1.0), 22050, 16000);
  const double ratio_db = 20 * std::log10(rms(z, lo, hi) / (0.5 / std::sqrt(2.0)));
  std::printf("10 kHz 22050 -> 16000: %.1f dB\n", ratio_db);
  EXPECT_LT(ratio_db, -40);

  // Upsampling keeps the tone too.
  const std::vector<float> up = resample(sine(1000, 0.5, 16000, 0.5), 16000, 22050);
  ASSERT_EQ(up.size(), 11025u);
  EXPECT_NEAR(zero_crossing_frequency(up, 22050, 300, up.size() - 300), 1000, 1);
  EXPECT_NEAR(amplitude_at(up, 1000, 22050, 300, up.size() - 300), 0.5, 0.005);

  // Coprime rates with many phases (44,101 Hz -> 16 kHz has 16,000) compute the taps per
  // output sample instead of tabulating them; same filter, same result.
  const std::vector<float> odd = resample(sine(1000, 0.5, 44101, 0.25), 44101, 16000);
  ASSERT_EQ(odd.size(), 4000u);  // ceil(11025 * 16000 / 44101)
  EXPECT_NEAR(zero_crossing_frequency(odd, 16000, 400, 3600), 1000, 1);
  EXPECT_NEAR(amplitude_at(odd, 1000, 16000, 400, 3600), 0.5, 0.005);

  // Matching rates copy; lengths round up; bad rates are refused.
  EXPECT_EQ(resample(x, 22050, 22050), x);
  EXPECT_EQ(resample(std::vector<float>(3, 1.0f), 22050, 16000).size(), 3u);  // ceil(3 * 320 / 441)
  EXPECT_TRUE(resample({}, 22050, 16000).empty());
  EXPECT_THROW(resample(x, 0, 16000), std::invalid_argument);
}

TEST(runtime_audio, ResampleFixtureFrom22050) {
  // tones_22050.wav: 1 kHz at 0.5 plus 10 kHz at 0.25; at 16 kHz the 1 kHz tone stays and the
  // 10 kHz one (folding to 6 kHz) is gone.
  const Waveform w = read_wav(kFixtures / "tones_22050.wav");
  const std::vector<float> y = resample(w.samples, w.sample_rate, 16000);
  ASSERT_EQ(y.size(), 6400u);
  const size_t lo = 200, hi = y.size() - 200;
  EXPECT_NEAR(amplitude_at(y, 1000, 16000, lo, hi), 0.5, 0.005);
  const double alias = amplitude_at(y, 6000, 16000, lo, hi);
  std::printf("fixture: 1 kHz %.5f, 6 kHz alias %.2g (%.1f dB below the 10 kHz tone)\n",
              amplitude_at(y, 1000, 16000, lo, hi), alias, -20 * std::log10(alias / 0.25));
  EXPECT_LT(alias, 0.25 * 0.01);
  // The resampled clip's log-mel has its 1 kHz band far above the band around 6 kHz.
  int64_t frames = 0;
  const std::vector<float> feats = log_mel(y, LogMelOptions{}, &frames);
  ASSERT_EQ(frames, 41);
  const float* row = feats.data() + 20 * 80;
  EXPECT_EQ(int(std::max_element(row, row + 80) - row), 26);
}

}  // namespace
