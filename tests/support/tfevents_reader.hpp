// Reads a TensorBoard event file back, independently of the writer's encoding code: the record
// framing with both CRCs checked (a mismatch fails loudly, naming the record), and the Event
// protobuf decoded field by field from the wire format (unknown fields skipped, as protobuf
// readers do).
#pragma once

#include "nemokit/runtime/run/tfevents.hpp"

#include <cstdint>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace nemokit::test {

struct TfEvent {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;
  std::vector<std::pair<std::string, float>> values;  // the summary's simple values, in order
};

namespace tfevents_detail {

struct Cursor {
  std::string_view data;
  size_t at = 0;
  bool done() const { return at >= data.size(); }
  uint8_t byte() {
    if (at >= data.size()) throw std::runtime_error("protobuf ends inside a field");
    return uint8_t(data[at++]);
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      uint8_t b = byte();
      v |= uint64_t(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    throw std::runtime_error("varint longer than ten bytes");
  }
  uint64_t fixed(int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t(byte()) << (8 * i);
    return v;
  }
  std::string_view bytes() {
    uint64_t n = varint();
    if (n > data.size() - at) throw std::runtime_error("length-delimited field runs past its message");
    std::string_view s = data.substr(at, n);
    at += n;
    return s;
  }
  void skip(uint32_t wire_type) {
    if (wire_type == 0) varint();
    else if (wire_type == 1) fixed(8);
    else if (wire_type == 2) bytes();
    else if (wire_type == 5) fixed(4);
    else throw std::runtime_error("unsupported wire type " + std::to_string(wire_type));
  }
};

inline std::pair<std::string, float> decode_value(std::string_view msg) {
  Cursor c{msg};
  std::pair<std::string, float> v{"", 0.0f};
  while (!c.done()) {
    uint64_t key = c.varint();
    if (key == ((1 << 3) | 2)) v.first = std::string(c.bytes());
    else if (key == ((2 << 3) | 5)) {
      uint32_t bits = uint32_t(c.fixed(4));
      std::memcpy(&v.second, &bits, 4);
    } else c.skip(uint32_t(key & 7));
  }
  return v;
}

inline TfEvent decode_event(std::string_view msg) {
  Cursor c{msg};
  TfEvent e;
  while (!c.done()) {
    uint64_t key = c.varint();
    if (key == ((1 << 3) | 1)) {
      uint64_t bits = c.fixed(8);
      std::memcpy(&e.wall_time, &bits, 8);
    } else if (key == ((2 << 3) | 0)) {
      e.step = int64_t(c.varint());
    } else if (key == ((3 << 3) | 2)) {
      e.file_version = std::string(c.bytes());
    } else if (key == ((5 << 3) | 2)) {
      Cursor s{c.bytes()};
      while (!s.done()) {
        uint64_t k = s.varint();
        if (k == ((1 << 3) | 2)) e.values.push_back(decode_value(s.bytes()));
        else s.skip(uint32_t(k & 7));
      }
    } else {
      c.skip(uint32_t(key & 7));
    }
  }
  return e;
}

inline uint64_t little_endian(std::string_view b) {
  uint64_t v = 0;
  for (size_t i = 0; i < b.size(); ++i) v |= uint64_t(uint8_t(b[i])) << (8 * i);
  return v;
}

}  // namespace tfevents_detail

// Every event of `file`, in order. Throws std::runtime_error naming the file and record on a
// short record or a CRC that does not match.
inline std::vector<TfEvent> read_tfevents(const std::filesystem::path& file) {
  using namespace tfevents_detail;
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error(file.string() + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string data = ss.str();
  std::vector<TfEvent> out;
  for (size_t at = 0, n = 0; at < data.size(); ++n) {
    const std::string where = file.string() + ": record " + std::to_string(n);
    if (data.size() - at < 12) throw std::runtime_error(where + ": header cut short");
    const std::string_view len_bytes(data.data() + at, 8);
    const uint64_t len = little_endian(len_bytes);
    if (uint32_t(little_endian(std::string_view(data.data() + at + 8, 4))) != rt::masked_crc32c(len_bytes))
      throw std::runtime_error(where + ": length CRC does not match");
    if (data.size() - at - 12 < len + 4) throw std::runtime_error(where + ": payload cut short");
    const std::string_view payload(data.data() + at + 12, len);
    if (uint32_t(little_endian(std::string_view(data.data() + at + 12 + len, 4))) != rt::masked_crc32c(payload))
      throw std::runtime_error(where + ": payload CRC does not match");
    out.push_back(decode_event(payload));
    at += 12 + len + 4;
  }
  return out;
}

// The event files TensorBoard would load from `dir` (names holding "tfevents"), sorted.
inline std::vector<std::filesystem::path> tfevents_files(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().filename().string().find("tfevents") != std::string::npos) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace nemokit::test
