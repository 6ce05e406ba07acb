// mpirun --tag-output's streams back to each rank's lines (the local executor, local_ranks.cpp).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace nemokit {

// mpirun's tagged output on one of its streams: the unsplit rest of the last read, and each
// rank's text since its last newline.
struct TaggedStream {
  std::string partial;
  std::vector<std::string> rank_text;
};

// mpirun prefixes every piece a rank writes with "[JOB,R]<stdout>:" (or <stderr>), so a line
// written in pieces arrives as "[J,R]<stderr>:exiting with code [J,R]<stderr>:5[J,R]<stderr>:\n",
// and two ranks' pieces may share a line. Takes `n` more bytes of the stream: each piece joins its
// rank's text, and a rank's line goes out when its newline arrives, "[R] text" on `fd` and
// "text" on rank_logs[R]; mpirun's own lines go out as they are, on `fd` and `launcher_log`.
// flush_all (at the stream's end): everything left, each unfinished line ended.
void emit_tagged_lines(int fd, TaggedStream& stream, const char* data, size_t n, const std::vector<int>& rank_logs,
                       int launcher_log, bool flush_all);

}  // namespace nemokit
