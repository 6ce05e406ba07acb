#include "exec/mpirun_tags.hpp"

#include <stdexcept>

#include "nemokit/runtime/fd_io.hpp"

namespace nemokit {

namespace {

// The tag "[J,R]<stdout>:" at `at`: its rank R and where it ends, or -1.
int tag_at(const std::string& s, size_t at, size_t& end) {
  if (at >= s.size() || s[at] != '[') return -1;
  size_t i = at + 1;
  auto digits = [&] {
    const size_t from = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i > from;
  };
  if (!digits() || i >= s.size() || s[i] != ',') return -1;
  const size_t rank_from = ++i;
  if (!digits() || s.compare(i, 5, "]<std") != 0) return -1;
  const size_t rank_to = i;
  const size_t close = s.find(">:", i);
  if (close == std::string::npos || close - i > 12) return -1;
  end = close + 2;
  try {
    return std::stoi(s.substr(rank_from, rank_to - rank_from));
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace

void emit_tagged_lines(int fd, TaggedStream& stream, const char* data, size_t n, const std::vector<int>& rank_logs,
                       int launcher_log, bool flush_all) {
  std::string& partial = stream.partial;
  partial.append(data, n);
  if (flush_all && !partial.empty() && partial.back() != '\n') partial += '\n';
  stream.rank_text.resize(rank_logs.size());
  auto emit_rank = [&](size_t rank) {
    std::string& text = stream.rank_text[rank];
    const std::string shown = "[" + std::to_string(rank) + "] " + text;
    rt::write_all(rank_logs[rank], text.data(), text.size());
    rt::write_all(fd, shown.data(), shown.size());
    text.clear();
  };
  size_t start = 0;
  for (size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
    const std::string line = partial.substr(start, nl + 1 - start);
    size_t end = 0;
    if (tag_at(line, 0, end) < 0) {  // mpirun's own
      rt::write_all(launcher_log, line.data(), line.size());
      rt::write_all(fd, line.data(), line.size());
      continue;
    }
    for (size_t at = 0; at < line.size();) {
      const int rank = tag_at(line, at, end);
      size_t next = end;
      while (next < line.size()) {  // this piece runs to the next tag or the line's end
        size_t ignored = 0;
        if (line[next] == '[' && tag_at(line, next, ignored) >= 0) break;
        ++next;
      }
      if (rank >= 0 && size_t(rank) < rank_logs.size()) {
        stream.rank_text[size_t(rank)].append(line, end, next - end);
        if (line[next - 1] == '\n') emit_rank(size_t(rank));
      } else {
        rt::write_all(fd, line.data() + at, next - at);
      }
      at = next;
    }
  }
  partial.erase(0, start);
  if (flush_all)
    for (size_t r = 0; r < stream.rank_text.size(); ++r)
      if (!stream.rank_text[r].empty()) {
        stream.rank_text[r] += '\n';
        emit_rank(r);
      }
}

}  // namespace nemokit
