#include "nemokit/runtime/run/tfevents.hpp"

#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace nemokit::rt {

namespace {

const std::array<uint32_t, 256>& crc32c_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

// Protobuf wire format, the few pieces an Event needs.
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(char(uint8_t(v) | 0x80));
    v >>= 7;
  }
  out.push_back(char(uint8_t(v)));
}
void put_key(std::string& out, uint32_t field, uint32_t wire_type) { put_varint(out, (uint64_t(field) << 3) | wire_type); }
template <class T>
void put_little_endian(std::string& out, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back(char(uint8_t(v >> (8 * i))));
}
void put_double(std::string& out, uint32_t field, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  put_key(out, field, 1);  // 64-bit
  put_little_endian(out, bits);
}
void put_float(std::string& out, uint32_t field, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  put_key(out, field, 5);  // 32-bit
  put_little_endian(out, bits);
}
void put_bytes(std::string& out, uint32_t field, std::string_view bytes) {
  put_key(out, field, 2);  // length-delimited
  put_varint(out, bytes.size());
  out.append(bytes);
}

std::string event_head(double wall_time, int64_t step) {
  std::string e;
  put_double(e, 1, wall_time);
  if (step != 0) {  // proto3 leaves a zero out
    put_key(e, 2, 0);
    put_varint(e, uint64_t(step));  // int64: two's complement, ten bytes when negative
  }
  return e;
}

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return "localhost";
  return buf;
}

}  // namespace

uint32_t crc32c(std::string_view bytes, uint32_t crc) {
  const auto& t = crc32c_table();
  crc = ~crc;
  for (unsigned char b : bytes) crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

uint32_t masked_crc32c(std::string_view bytes) {
  const uint32_t c = crc32c(bytes);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

std::string tfrecord(std::string_view payload) {
  std::string length;
  put_little_endian(length, uint64_t(payload.size()));
  std::string r = length;
  put_little_endian(r, masked_crc32c(length));
  r.append(payload);
  put_little_endian(r, masked_crc32c(payload));
  return r;
}

std::string file_version_event(double wall_time) {
  std::string e = event_head(wall_time, 0);
  put_bytes(e, 3, "brain.Event:2");
  return e;
}

std::string scalars_event(double wall_time, int64_t step, const Scalars& values) {
  std::string summary;
  for (const auto& [tag, v] : values) {
    std::string value;
    put_bytes(value, 1, tag);
    put_float(value, 2, float(v));
    put_bytes(summary, 1, value);
  }
  std::string e = event_head(wall_time, step);
  put_bytes(e, 5, summary);
  return e;
}

std::string tfevents_file_name(double wall_time) {
  static std::atomic<int> counter{0};
  return "events.out.tfevents." + std::to_string(int64_t(wall_time)) + "." + host_name() + "." + std::to_string(getpid()) +
         "." + std::to_string(counter++);
}

double wall_time_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

TfEventsWriter::TfEventsWriter(const std::filesystem::path& dir) {
  const double now = wall_time_now();
  path_ = dir / tfevents_file_name(now);
  out_.open(path_, std::ios::binary | std::ios::trunc);
  if (!out_) throw std::runtime_error(path_.string() + ": cannot open for writing");
  write_record(file_version_event(now));
}

void TfEventsWriter::write_scalars(int64_t step, const Scalars& values, double wall_time) {
  if (!values.empty()) write_record(scalars_event(wall_time, step, values));
}

void TfEventsWriter::write_record(std::string_view payload) {
  const std::string r = tfrecord(payload);
  out_.write(r.data(), std::streamsize(r.size()));
  out_.flush();
  if (!out_) throw std::runtime_error(path_.string() + ": write failed");
}

}  // namespace nemokit::rt
