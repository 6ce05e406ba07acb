// The descriptor helpers everything shares: write_all through short writes and failures, and
// pump_until_eof over several pipes at once, none blocking another.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <thread>

#include "nemokit/runtime/fd_io.hpp"

using namespace nemokit::rt;

namespace {

std::string drain(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, size_t(n));
  return out;
}

}  // namespace

TEST(runtime_fd_io, WriteAllWritesEverythingThroughAFullPipe) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  // More than a pipe holds at once: the writer sees short writes while the reader drains.
  const std::string big(1 << 20, 'x');
  std::string got;
  std::thread reader([&] { got = drain(p[0]); });
  EXPECT_TRUE(write_all(p[1], big));
  ::close(p[1]);
  reader.join();
  ::close(p[0]);
  EXPECT_EQ(got, big);
}

TEST(runtime_fd_io, WriteAllReportsAFailure) {
  EXPECT_FALSE(write_all(-1, "x"));
  EXPECT_EQ(errno, EBADF);
  try {
    write_all(-1, "x", 1, "/some/file");
    FAIL() << "no error for a bad descriptor";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/some/file: write failed"), std::string::npos) << e.what();
  }
}

TEST(runtime_fd_io, PumpReadsEveryPipeToItsEnd) {
  int a[2], b[2];
  ASSERT_EQ(::pipe(a), 0);
  ASSERT_EQ(::pipe(b), 0);
  // The second pipe gets more than a pipe holds before the first ends: a pump that read the
  // first to its end before the second would never return.
  std::thread writer([&] {
    write_all(a[1], "first ");
    write_all(b[1], std::string(1 << 20, 'b'));
    write_all(a[1], "and last");
    ::close(a[1]);
    ::close(b[1]);
  });
  std::string got[2];
  const int fds[2] = {a[0], b[0]};
  pump_until_eof(fds, [&](size_t i, const char* data, size_t n) { got[i].append(data, n); });
  writer.join();
  ::close(a[0]);
  ::close(b[0]);
  EXPECT_EQ(got[0], "first and last");
  EXPECT_EQ(got[1], std::string(1 << 20, 'b'));
}
