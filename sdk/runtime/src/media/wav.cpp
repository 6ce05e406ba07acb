// RIFF/WAVE reading. The file is a 12-byte header ("RIFF", size, "WAVE") and a list of chunks
// (4-byte id, 4-byte little-endian size, payload, a pad byte when the size is odd). We need
// "fmt " (how samples are stored) and "data" (the samples); everything else is skipped. No size
// read from the file is trusted: each is checked against the bytes actually present before use,
// so the largest allocation is bounded by the file itself.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "nemokit/runtime/media/audio.hpp"

namespace nemokit::rt::media {

namespace {

constexpr uint16_t kFormatPcm = 0x0001;
constexpr uint16_t kFormatFloat = 0x0003;
constexpr uint16_t kFormatExtensible = 0xFFFE;

// The 14 bytes after the format tag in every KSDATAFORMAT_SUBTYPE_* GUID
// (xxxxxxxx-0000-0010-8000-00aa00389b71).
constexpr unsigned char kSubtypeTail[14] = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                            0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};

uint16_t u16(const unsigned char* p) { return uint16_t(p[0] | (p[1] << 8)); }
uint32_t u32(const unsigned char* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}

std::string hex4(uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%04X", unsigned(v));
  return buf;
}

// Names for the format tags people meet in practice, so the error says what the file is.
std::string format_name(uint16_t tag) {
  switch (tag) {
    case 0x0002: return " (ADPCM)";
    case 0x0006: return " (A-law)";
    case 0x0007: return " (mu-law)";
    case 0x0011: return " (IMA ADPCM)";
    case 0x0031: return " (GSM 6.10)";
    case 0x0050: return " (MPEG)";
    case 0x0055: return " (MP3)";
    case 0x00FF: return " (AAC)";
    case 0xF1AC: return " (FLAC)";
    default: return "";
  }
}

// A chunk id as text, with anything unprintable escaped (hostile ids end up in messages).
std::string chunk_id(const unsigned char* p) {
  std::string s;
  for (int i = 0; i < 4; ++i) {
    if (p[i] >= 0x20 && p[i] < 0x7F) {
      s += char(p[i]);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", unsigned(p[i]));
      s += buf;
    }
  }
  return s;
}

struct Format {
  uint16_t tag = 0;  // kFormatPcm or kFormatFloat after resolving WAVE_FORMAT_EXTENSIBLE
  int channels = 0;
  int sample_rate = 0;
  int block_align = 0;
  int bits = 0;
};

Format parse_fmt(const unsigned char* p, uint32_t size, const std::string& name) {
  auto fail = [&](const std::string& what) { throw std::runtime_error(name + ": " + what); };
  if (size < 16) fail("fmt chunk is " + std::to_string(size) + " bytes, needs at least 16");
  Format f;
  f.tag = u16(p);
  f.channels = u16(p + 2);
  const uint32_t rate = u32(p + 4);
  f.block_align = u16(p + 12);
  f.bits = u16(p + 14);
  if (f.tag == kFormatExtensible) {
    // cbSize (2), valid bits (2), channel mask (4), subformat GUID (16).
    if (size < 40)
      fail("WAVE_FORMAT_EXTENSIBLE fmt chunk is " + std::to_string(size) + " bytes, needs 40");
    const unsigned char* guid = p + 24;
    const uint16_t sub = u16(guid);
    if (std::memcmp(guid + 2, kSubtypeTail, sizeof kSubtypeTail) != 0)
      fail("unsupported WAVE_FORMAT_EXTENSIBLE subformat (not a KSDATAFORMAT_SUBTYPE GUID)");
    if (sub != kFormatPcm && sub != kFormatFloat)
      fail("unsupported WAVE_FORMAT_EXTENSIBLE subformat " + hex4(sub) + format_name(sub));
    f.tag = sub;
  }
  if (f.tag != kFormatPcm && f.tag != kFormatFloat)
    fail("unsupported sample format " + hex4(f.tag) + format_name(f.tag) +
         "; PCM (0x0001) and IEEE float (0x0003) are read");
  if (f.channels == 0) fail("fmt chunk says 0 channels");
  if (rate == 0 || rate > 0x7FFFFFFF) fail("fmt chunk says sample rate " + std::to_string(rate));
  f.sample_rate = int(rate);
  if (f.tag == kFormatPcm && f.bits != 8 && f.bits != 16 && f.bits != 24 && f.bits != 32)
    fail("unsupported PCM sample size " + std::to_string(f.bits) + " bits; 8, 16, 24 and 32 are read");
  if (f.tag == kFormatFloat && f.bits != 32 && f.bits != 64)
    fail("unsupported float sample size " + std::to_string(f.bits) + " bits; 32 and 64 are read");
  const int expected_align = f.channels * (f.bits / 8);
  if (f.block_align != expected_align)
    fail("fmt chunk block align " + std::to_string(f.block_align) + " does not match " +
         std::to_string(f.channels) + " channels of " + std::to_string(f.bits) + " bits (" +
         std::to_string(expected_align) + ")");
  return f;
}

// One sample as a float: integers scaled by 2^(bits-1) so full scale maps to [-1, 1).
float decode_sample(const unsigned char* p, const Format& f) {
  if (f.tag == kFormatFloat) {
    if (f.bits == 32) {
      const uint32_t v = u32(p);
      float x;
      std::memcpy(&x, &v, 4);
      return x;
    }
    const uint64_t v = uint64_t(u32(p)) | (uint64_t(u32(p + 4)) << 32);
    double x;
    std::memcpy(&x, &v, 8);
    return float(x);
  }
  switch (f.bits) {
    case 8: return (float(p[0]) - 128.0f) / 128.0f;  // 8-bit WAV is unsigned
    case 16: return float(int16_t(u16(p))) / 32768.0f;
    case 24: {
      // Sign-extend by placing the 24 bits at the top of a 32-bit word.
      const int32_t v = int32_t((uint32_t(p[0]) << 8) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 24)) >> 8;
      return float(double(v) / 8388608.0);
    }
    default: return float(double(int32_t(u32(p))) / 2147483648.0);
  }
}

}  // namespace

Waveform read_wav_bytes(std::string_view bytes, const std::string& name) {
  auto fail = [&](const std::string& what) { throw std::runtime_error(name + ": " + what); };
  const auto* base = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t size = bytes.size();
  if (size < 12) fail("too short for a RIFF/WAVE header (" + std::to_string(size) + " bytes)");
  if (std::memcmp(base, "RIFF", 4) != 0 || std::memcmp(base + 8, "WAVE", 4) != 0)
    fail("not a RIFF/WAVE file");

  // The RIFF size bounds the chunk list when it is plausible; bytes after it are not chunks.
  // A RIFF size larger than the file is common in truncated or streamed files: the chunk
  // checks below then report what is actually missing.
  size_t end = size;
  const uint64_t riff_end = uint64_t(u32(base + 4)) + 8;
  if (riff_end >= 12 && riff_end < end) end = size_t(riff_end);

  const unsigned char* fmt = nullptr;
  uint32_t fmt_size = 0;
  const unsigned char* data = nullptr;
  uint64_t data_size = 0;
  size_t pos = 12;
  // Fewer than 8 trailing bytes cannot hold a chunk header; writers leave such padding.
  while (end - pos >= 8) {
    const unsigned char* header = base + pos;
    const uint32_t chunk_size = u32(header + 4);
    const std::string id = chunk_id(header);
    const uint64_t payload = pos + 8;
    if (payload + chunk_size > size) {
      if (std::memcmp(header, "data", 4) == 0)
        fail("data chunk runs past the end of the file (" + std::to_string(chunk_size) +
             " bytes declared, " + std::to_string(size - payload) + " present)");
      fail("chunk '" + id + "' at offset " + std::to_string(pos) + " declares " +
           std::to_string(chunk_size) + " bytes, past the end of the file (" +
           std::to_string(size) + " bytes)");
    }
    if (std::memcmp(header, "fmt ", 4) == 0) {
      if (fmt) fail("more than one fmt chunk");
      fmt = base + payload;
      fmt_size = chunk_size;
    } else if (std::memcmp(header, "data", 4) == 0) {
      if (data) fail("more than one data chunk");
      data = base + payload;
      data_size = chunk_size;
    }
    // Odd-sized chunks are followed by one pad byte, which may be missing at the very end.
    pos = size_t(payload + chunk_size + (chunk_size & 1));
    if (pos >= end) break;
  }
  if (!fmt) fail("no fmt chunk");
  if (!data) fail("no data chunk");

  const Format f = parse_fmt(fmt, fmt_size, name);
  const uint64_t frames = data_size / uint64_t(f.block_align);
  const int bytes_per_sample = f.bits / 8;

  Waveform w;
  w.sample_rate = f.sample_rate;
  w.samples.resize(static_cast<size_t>(frames));
  // Averaging in double keeps many-channel files from losing low bits.
  for (uint64_t t = 0; t < frames; ++t) {
    const unsigned char* frame = data + t * uint64_t(f.block_align);
    double sum = 0;
    for (int c = 0; c < f.channels; ++c) sum += decode_sample(frame + c * bytes_per_sample, f);
    w.samples[size_t(t)] = float(sum / f.channels);
  }
  return w;
}

Waveform read_wav(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw std::runtime_error(path.string() + ": read error");
  const std::string bytes = std::move(ss).str();
  return read_wav_bytes(bytes, path.string());
}

}  // namespace nemokit::rt::media
