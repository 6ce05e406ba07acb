// The descriptor helpers everything shares: write_all through short writes and failures.
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
