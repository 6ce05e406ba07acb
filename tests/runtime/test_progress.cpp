// The progress display every long operation uses (nemokit/runtime/progress.hpp): plain lines at
// each multiple of `every` and at the end when the output is a file, one line redrawn in place
// (bar, rate, ETA) when it is a terminal (a real pseudo-terminal here).
#include <gtest/gtest.h>

#include <pty.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <regex>
#include <string>
#include <thread>

#include "nemokit/runtime/progress.hpp"

namespace {

using nemokit::rt::Progress;

std::string contents(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string s;
  for (int c; (c = std::fgetc(f)) != EOF;) s += char(c);
  return s;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  for (size_t b = 0, e; b < s.size(); b = e + 1) {
    e = s.find('\n', b);
    if (e == std::string::npos) e = s.size();
    out.push_back(s.substr(b, e - b));
  }
  return out;
}

}  // namespace

TEST(runtime_progress, OffATerminalALineAtEachMultipleOfEveryAndAtTheEnd) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    Progress p("step", 12, 5, Progress::Unit::count, f);
    EXPECT_FALSE(p.on_terminal());
    for (int step = 1; step <= 12; ++step) {
      p.update(step, "loss " + std::to_string(13 - step));
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    p.note("checkpoint step 12");
  }  // the destructor's finish adds nothing: step 12 was printed
  const auto lines = lines_of(contents(f));
  ASSERT_EQ(lines.size(), 5u) << contents(f);
  EXPECT_EQ(lines[0], "step 1/12 (8%) | loss 12");  // the first update has no rate yet
  EXPECT_TRUE(std::regex_match(lines[1], std::regex(R"(step 5/12 \(42%\) [0-9.]+ (step/s|s/step), eta \d+s \| loss 8)"))) << lines[1];
  EXPECT_TRUE(std::regex_match(lines[2], std::regex(R"(step 10/12 \(83%\) .*, eta \d+s \| loss 3)"))) << lines[2];
  EXPECT_TRUE(std::regex_match(lines[3], std::regex(R"(step 12/12 \(100%\) .*, eta 0s \| loss 1)"))) << lines[3];
  EXPECT_EQ(lines[4], "checkpoint step 12");
  std::fclose(f);
}

TEST(runtime_progress, BytesAreShownInUnitsAndATenthOfTheTotalApart) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    Progress p("read", 2'000'000, 0, Progress::Unit::bytes, f);
    for (int64_t n = 0; n <= 1'500'000; n += 100'000) p.update(n);
    p.finish();
    p.finish();  // once only
  }
  const auto lines = lines_of(contents(f));
  // 0 (the first), then each 200 kB passed: 200k, 400k, ... 1.4 MB, and 1.5 MB at the end.
  ASSERT_EQ(lines.size(), 9u) << contents(f);
  EXPECT_EQ(lines[0], "read 0 B/2.0 MB (0%)");
  EXPECT_TRUE(lines[1].starts_with("read 200.0 kB/2.0 MB (10%) ")) << lines[1];
  EXPECT_TRUE(std::regex_match(lines[8], std::regex(R"(read 1\.5 MB/2\.0 MB \(75%\) [0-9.]+ [kMG]?B/s, eta \d+s)"))) << lines[8];
  std::fclose(f);
}

TEST(runtime_progress, UnknownTotalShowsTheCountAndRateOnly) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    Progress p("document", 0, 100, Progress::Unit::count, f);
    p.update(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    p.update(250);
  }
  const auto lines = lines_of(contents(f));
  ASSERT_EQ(lines.size(), 2u) << contents(f);
  EXPECT_EQ(lines[0], "document 1");
  EXPECT_TRUE(std::regex_match(lines[1], std::regex(R"(document 250 [0-9.e+]+ document/s)"))) << lines[1];
  std::fclose(f);
}

TEST(runtime_progress, OnATerminalOneLineRedrawnWithBarRateAndEta) {
  int leader = -1, follower = -1;
  ASSERT_EQ(::openpty(&leader, &follower, nullptr, nullptr, nullptr), 0);
  std::FILE* tty = ::fdopen(follower, "w");
  ASSERT_NE(tty, nullptr);
  {
    Progress p("step", 10, 5, Progress::Unit::count, tty);
    EXPECT_TRUE(p.on_terminal());
    p.update(1, "loss 2.5000 | 100 tok/s");
    std::this_thread::sleep_for(std::chrono::milliseconds(120));  // past the redraw interval
    p.update(3, "loss 2.0000 | 120 tok/s");
    p.note("checkpoint step 3");
    p.update(10, "loss 1.0000 | 130 tok/s");  // the last count is always drawn
  }
  std::fclose(tty);
  std::string seen;
  char buf[4096];
  for (ssize_t n; (n = ::read(leader, buf, sizeof buf)) > 0;) {
    seen.append(buf, size_t(n));
    if (seen.find("100%") != std::string::npos && seen.back() == '\n') break;
  }
  ::close(leader);
  // The terminal turns "\n" into "\r\n".
  EXPECT_NE(seen.find("\r\033[Kstep 1/10 [##..................]  10% | loss 2.5000 | 100 tok/s"), std::string::npos) << seen;
  EXPECT_TRUE(std::regex_search(seen, std::regex(R"(\r\x1b\[Kstep 3/10 \[######\.{14}\]  30% \| [0-9.]+ (step/s|s/step) \| ETA \d+s \| loss 2\.0000)")))
      << seen;
  EXPECT_NE(seen.find("\r\033[Kcheckpoint step 3\r\n"), std::string::npos) << seen;
  EXPECT_TRUE(std::regex_search(seen, std::regex(R"(\r\x1b\[Kstep 10/10 \[#{20}\] 100% \| .* \| ETA 0s \| loss 1\.0000 \| 130 tok/s\r\n$)")))
      << seen;
}
