// TensorBoard event files: CRC-32C against the published check values, and what MetricsLog
// writes beside metrics.jsonl read back record by record with both CRCs checked
// (tests/support/tfevents_reader.hpp decodes the protobuf on its own). That PyPI tensorboard's
// reader loads such a file is checked by tests/report/check_tfevents.py.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "nemokit/runtime/run/metric_scalars.hpp"
#include "nemokit/runtime/run/metrics_log.hpp"
#include "nemokit/runtime/run/tfevents.hpp"
#include "support/tfevents_reader.hpp"

namespace fs = std::filesystem;
using nemokit::test::read_tfevents;

TEST(runtime_tfevents, Crc32cMatchesTheCheckValuesOfRfc3720) {
  EXPECT_EQ(nemokit::rt::crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(nemokit::rt::crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(nemokit::rt::crc32c(std::string(32, '\xFF')), 0x62A8AB43u);
  // Continuing a CRC over a split buffer gives the CRC of the whole.
  EXPECT_EQ(nemokit::rt::crc32c("56789", nemokit::rt::crc32c("1234")), 0xE3069283u);
  const uint32_t c = 0xE3069283u;
  EXPECT_EQ(nemokit::rt::masked_crc32c("123456789"), ((c >> 15) | (c << 17)) + 0xa282ead8u);
}

TEST(runtime_tfevents, MetricsLogWritesEveryNumberOfEveryLineAsScalars) {
  const fs::path dir = fs::path(NEMOKIT_BINARY_DIR) / "runtime_tfevents_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const double before = nemokit::rt::wall_time_now();
  {
    nemokit::rt::MetricsLog log(dir / "metrics.jsonl");
    EXPECT_TRUE(log.events_path().empty());  // nothing logged yet, no file
    log.write({{"step", 1}, {"loss", 2.5}, {"lr", 3e-4}, {"done", true}});
    log.write({{"phase", "reward_model"}, {"step", 7}, {"val", {{"accuracy", 0.75}, {"pairs", 40}}}});
    log.write({{"step", 8}, {"sample", "text only"}, {"samples", {1, 2}}});  // no numbers: no event
    log.write({{"step", 9}, {"reward", {{"arith", 0.125}}}, {"tokens_per_s", 1234.5}});
    EXPECT_EQ(log.events_path().parent_path(), dir);
  }
  auto files = nemokit::test::tfevents_files(dir);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].filename().string().rfind("events.out.tfevents.", 0), 0u) << files[0];
  auto events = read_tfevents(files[0]);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  for (const auto& e : events) {
    EXPECT_GE(e.wall_time, before - 1);
    EXPECT_LE(e.wall_time, nemokit::rt::wall_time_now() + 1);
  }
  EXPECT_EQ(events[1].step, 1);
  ASSERT_EQ(events[1].values.size(), 2u);
  EXPECT_EQ(events[1].values[0], std::make_pair(std::string("loss"), 2.5f));
  EXPECT_EQ(events[1].values[1], std::make_pair(std::string("lr"), 3e-4f));
  EXPECT_EQ(events[2].step, 9);
  ASSERT_EQ(events[2].values.size(), 2u);
  EXPECT_EQ(events[2].values[0], std::make_pair(std::string("reward/arith"), 0.125f));
  EXPECT_EQ(events[2].values[1], std::make_pair(std::string("tokens_per_s"), 1234.5f));

  // The phase's lines, in a file of their own below (their steps restart; TensorBoard would
  // drop a run's events past a step that goes back).
  auto phase = nemokit::test::tfevents_files(dir / "reward_model");
  ASSERT_EQ(phase.size(), 1u);
  auto rm = read_tfevents(phase[0]);
  ASSERT_EQ(rm.size(), 2u);
  EXPECT_EQ(rm[0].file_version, "brain.Event:2");
  EXPECT_EQ(rm[1].step, 7);
  ASSERT_EQ(rm[1].values.size(), 2u);
  EXPECT_EQ(rm[1].values[0], std::make_pair(std::string("reward_model/val/accuracy"), 0.75f));
  EXPECT_EQ(rm[1].values[1], std::make_pair(std::string("reward_model/val/pairs"), 40.0f));
}

TEST(runtime_tfevents, ACorruptedRecordIsRefusedByItsCrc) {
  const fs::path dir = fs::path(NEMOKIT_BINARY_DIR) / "runtime_tfevents_corrupt";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string bytes = nemokit::rt::tfrecord(nemokit::rt::file_version_event(1.0)) +
                      nemokit::rt::tfrecord(nemokit::rt::scalars_event(2.0, 3, {{"loss", 1.0}}));
  {
    std::ofstream(dir / "good.tfevents", std::ios::binary) << bytes;
  }
  ASSERT_EQ(read_tfevents(dir / "good.tfevents").size(), 2u);
  bytes[bytes.size() - 6] ^= 0x01;  // a bit of the last record's float
  std::ofstream(dir / "bad.tfevents", std::ios::binary) << bytes;
  EXPECT_THROW(read_tfevents(dir / "bad.tfevents"), std::runtime_error);
}

TEST(runtime_tfevents, NegativeAndLargeStepsRoundTrip) {
  const fs::path dir = fs::path(NEMOKIT_BINARY_DIR) / "runtime_tfevents_steps";
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    std::ofstream out(dir / "steps.tfevents", std::ios::binary);
    for (int64_t s : {int64_t(-1), int64_t(0), int64_t(1) << 40})
      out << nemokit::rt::tfrecord(nemokit::rt::scalars_event(1.0, s, {{"x", double(s)}}));
  }
  auto events = read_tfevents(dir / "steps.tfevents");
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].step, -1);
  EXPECT_EQ(events[1].step, 0);
  EXPECT_EQ(events[2].step, int64_t(1) << 40);
}
