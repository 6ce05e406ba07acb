// mpirun --tag-output's streams back to lines (core/src/exec/mpirun_tags.cpp), on the shapes
// Open MPI writes: a rank's line in several tagged pieces, two ranks' pieces on one line, its
// own untagged lines, a tag cut by a read, and an unfinished line at the stream's end.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "exec/mpirun_tags.hpp"

namespace {

// A memory file that collects what is written to it.
struct Sink {
  int fd = memfd_create("sink", 0);
  ~Sink() { close(fd); }
  std::string text() const {
    std::string out(size_t(lseek(fd, 0, SEEK_END)), '\0');
    pread(fd, out.data(), out.size(), 0);
    return out;
  }
};

struct Streams {
  Sink shown, launcher, rank0, rank1;
  nemokit::TaggedStream stream;
  void feed(const std::string& s, bool flush = false) {
    nemokit::emit_tagged_lines(shown.fd, stream, s.data(), s.size(), {rank0.fd, rank1.fd}, launcher.fd, flush);
  }
};

}  // namespace

TEST(mpirun_tags, ALineWrittenInPiecesComesBackWhole) {
  Streams s;
  s.feed("[1,0]<stderr>:exiting with code [1,0]<stderr>:5[1,0]<stderr>:\n");
  EXPECT_EQ(s.shown.text(), "[0] exiting with code 5\n");
  EXPECT_EQ(s.rank0.text(), "exiting with code 5\n");
  EXPECT_EQ(s.launcher.text(), "");
}

TEST(mpirun_tags, TwoRanksPiecesOnOneLineGoToTheirOwnLines) {
  Streams s;
  s.feed("[7,0]<stderr>:nemokit run [7,1]<stderr>:rank one done\n[7,0]<stderr>:failed\n");
  EXPECT_EQ(s.shown.text(), "[1] rank one done\n[0] nemokit run failed\n");
  EXPECT_EQ(s.rank0.text(), "nemokit run failed\n");
  EXPECT_EQ(s.rank1.text(), "rank one done\n");
}

TEST(mpirun_tags, MpirunsOwnLinesPassAsTheyAre) {
  Streams s;
  s.feed("-----\nmpirun detected that one or more processes exited [1,0] with non-zero status\n");
  EXPECT_EQ(s.shown.text(), "-----\nmpirun detected that one or more processes exited [1,0] with non-zero status\n");
  EXPECT_EQ(s.launcher.text(), s.shown.text());
  EXPECT_EQ(s.rank0.text(), "");
}

TEST(mpirun_tags, ATagCutByAReadAndAnUnfinishedLastLine) {
  Streams s;
  s.feed("[1,1]<std");
  EXPECT_EQ(s.shown.text(), "");
  s.feed("out>:hello\n[1,1]<stdout>:no newline");
  EXPECT_EQ(s.shown.text(), "[1] hello\n");
  s.feed("", true);
  EXPECT_EQ(s.shown.text(), "[1] hello\n[1] no newline\n");
  EXPECT_EQ(s.rank1.text(), "hello\nno newline\n");
}

TEST(mpirun_tags, TextThatOnlyLooksLikeATagStaysText) {
  Streams s;
  s.feed("[1,0]<stdout>:array [3,4] and [1,0]<none>: stay\n");
  EXPECT_EQ(s.rank0.text(), "array [3,4] and [1,0]<none>: stay\n");
}
