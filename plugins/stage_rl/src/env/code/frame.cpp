#include "env/code/frame.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace nemokit::rl::code {

bool send_frame(int fd, const nlohmann::json& message) {
  std::string body = message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  uint32_t n = static_cast<uint32_t>(body.size());
  std::string data(reinterpret_cast<const char*>(&n), 4);
  data += body;
  size_t off = 0;
  while (off < data.size()) {
    // MSG_NOSIGNAL: a dead peer is an error return, not SIGPIPE for the whole process.
    ssize_t w = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    off += static_cast<size_t>(w);
  }
  return true;
}

namespace {
bool read_exact(int fd, char* dst, size_t len, std::chrono::steady_clock::time_point deadline) {
  size_t off = 0;
  while (off < len) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return false;
    if (r == 0) continue;
    ssize_t n = ::read(fd, dst + off, len - off);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}
}  // namespace

std::optional<nlohmann::json> recv_frame(int fd, std::chrono::steady_clock::time_point deadline) {
  uint32_t n = 0;
  if (!read_exact(fd, reinterpret_cast<char*>(&n), 4, deadline) || n > kMaxFrame) return std::nullopt;
  std::string body(n, '\0');
  if (!read_exact(fd, body.data(), n, deadline)) return std::nullopt;
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

}  // namespace nemokit::rl::code
