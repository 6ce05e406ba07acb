#pragma once
// TensorBoard event files, written natively: each record is TFRecord framing (little-endian
// uint64 length, masked CRC32C of those 8 bytes, the payload, masked CRC32C of the payload)
// around a hand-encoded `Event` protobuf (wall_time = 1, step = 2, file_version = 3, summary =
// 5 holding `Value`s of tag = 1, simple_value = 2). The first record of a file is the
// "brain.Event:2" file_version event TensorBoard's loaders expect. No protobuf library needed.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nemokit::rt {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), continuing from `crc`.
uint32_t crc32c(std::string_view bytes, uint32_t crc = 0);
// TFRecord's mask: rotate right by 15 bits, add 0xa282ead8 (a CRC stored beside the data it
// covers would otherwise make CRCs of CRCs degenerate).
uint32_t masked_crc32c(std::string_view bytes);

// One framed record around `payload`.
std::string tfrecord(std::string_view payload);

using Scalars = std::vector<std::pair<std::string, double>>;
// Serialized `Event`s.
std::string file_version_event(double wall_time);
std::string scalars_event(double wall_time, int64_t step, const Scalars& values);  // simple_value is a float

// "events.out.tfevents.<unix seconds>.<host>.<pid>.<n>": the name TensorBoard's directory
// loader picks up; pid and a per-process counter keep two writers in one folder apart.
std::string tfevents_file_name(double wall_time);

// Seconds since the epoch, with the sub-second part, as Event.wall_time holds it.
double wall_time_now();

// An event file in `dir`, created with its file_version record; every write is flushed at once
// so a killed run keeps every step it logged.
class TfEventsWriter {
 public:
  explicit TfEventsWriter(const std::filesystem::path& dir);
  void write_scalars(int64_t step, const Scalars& values, double wall_time);
  const std::filesystem::path& path() const { return path_; }

 private:
  void write_record(std::string_view payload);
  std::filesystem::path path_;
  std::ofstream out_;
};

}  // namespace nemokit::rt
