// metrics.jsonl: every line is one JSON object that a strict reader parses, whatever bytes the
// model generated (a sample cut after its last token may end inside a UTF-8 character).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "nemokit/runtime/run/metrics_log.hpp"

namespace fs = std::filesystem;

TEST(runtime_metrics_log, TextCutInsideAUtf8CharacterIsWrittenWithAReplacement) {
  const fs::path dir = fs::path(NEMOKIT_BINARY_DIR) / "runtime_metrics_log_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string euro = "\xE2\x82\xAC";
  {
    nemokit::rt::MetricsLog log(dir / "metrics.jsonl");
    log.write({{"step", 1}, {"loss", 2.5}});
    log.write({{"step", 400}, {"sample", "price: " + euro + euro.substr(0, 2)}});  // ends mid-character
    log.write({{"step", 400}, {"samples", {{{"answer", "\xFF" "ok"}}}}});           // a byte no UTF-8 has
  }
  std::ifstream in(dir / "metrics.jsonl");
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["loss"], 2.5);
  EXPECT_EQ(lines[1]["sample"], "price: " + euro + "\xEF\xBF\xBD");
  EXPECT_EQ(lines[2]["samples"][0]["answer"], "\xEF\xBF\xBD" "ok");
}
