// A one-shot TCP rendezvous: rank 0 serves a blob, the others fetch it. Enough to share NCCL's
// unique id without a shared filesystem; MASTER_ADDR/MASTER_PORT are what the executors export.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "nemokit/runtime/dist.hpp"

namespace nemokit::rt {
namespace {

using Clock = std::chrono::steady_clock;

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::string where(const RankInfo& r) { return "rendezvous " + r.master_addr + ":" + std::to_string(r.master_port); }

[[noreturn]] void fail(const RankInfo& r, const std::string& what) {
  throw std::runtime_error(where(r) + " (rank " + std::to_string(r.rank) + "/" + std::to_string(r.world_size) +
                           "): " + what);
}

int ms_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? int(left) : 0;
}

// Moves exactly n bytes before the deadline, or says why not.
void transfer(const RankInfo& r, int fd, void* data, size_t n, bool sending, Clock::time_point deadline) {
  auto* p = static_cast<char*>(data);
  while (n > 0) {
    pollfd pfd{fd, short(sending ? POLLOUT : POLLIN), 0};
    int ready = ::poll(&pfd, 1, ms_left(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) fail(r, "timed out while " + std::string(sending ? "sending" : "receiving"));
    ssize_t k = sending ? ::send(fd, p, n, MSG_NOSIGNAL) : ::recv(fd, p, n, 0);
    if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (k < 0) fail(r, std::string(sending ? "send: " : "recv: ") + std::strerror(errno));
    if (k == 0) fail(r, "the other side closed the connection");
    p += k, n -= size_t(k);
  }
}

std::string serve(const RankInfo& r, const std::string& blob, Clock::time_point deadline) {
  Fd s(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  bool v6 = s.fd >= 0;
  if (!v6) s.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s.fd < 0) fail(r, std::string("socket: ") + std::strerror(errno));
  int one = 1, zero = 0;
  ::setsockopt(s.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int rc;
  if (v6) {
    ::setsockopt(s.fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);  // IPv4 peers too
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_any;
    a.sin6_port = htons(uint16_t(r.master_port));
    rc = ::bind(s.fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons(uint16_t(r.master_port));
    rc = ::bind(s.fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  if (rc != 0) fail(r, std::string("bind: ") + std::strerror(errno));
  if (::listen(s.fd, 128) != 0) fail(r, std::string("listen: ") + std::strerror(errno));
  uint64_t size = blob.size();
  for (int served = 1; served < r.world_size;) {
    pollfd pfd{s.fd, POLLIN, 0};
    int ready = ::poll(&pfd, 1, ms_left(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0)
      fail(r, "timed out: " + std::to_string(served - 1) + " of " + std::to_string(r.world_size - 1) +
                  " ranks connected");
    Fd c(::accept4(s.fd, nullptr, nullptr, SOCK_CLOEXEC));
    if (c.fd < 0) continue;
    int32_t peer = -1;
    transfer(r, c.fd, &peer, sizeof peer, false, deadline);
    transfer(r, c.fd, &size, sizeof size, true, deadline);
    transfer(r, c.fd, const_cast<char*>(blob.data()), blob.size(), true, deadline);
    // Wait for the peer's close so the blob is read before this socket goes away.
    char done;
    pollfd wait{c.fd, POLLIN, 0};
    if (::poll(&wait, 1, ms_left(deadline)) > 0) (void)::recv(c.fd, &done, 1, 0);
    ++served;
  }
  return blob;
}

std::string fetch(const RankInfo& r, Clock::time_point deadline) {
  addrinfo hints{}, *found = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  std::string port = std::to_string(r.master_port);
  std::string last = "no attempt";
  while (true) {
    if (int e = ::getaddrinfo(r.master_addr.c_str(), port.c_str(), &hints, &found); e != 0) {
      last = std::string("resolve: ") + ::gai_strerror(e);
    } else {
      for (addrinfo* a = found; a; a = a->ai_next) {
        Fd c(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
        if (c.fd < 0) continue;
        if (::connect(c.fd, a->ai_addr, a->ai_addrlen) != 0) {
          last = std::string("connect: ") + std::strerror(errno);
          continue;
        }
        ::freeaddrinfo(found);
        int32_t me = r.rank;
        uint64_t size = 0;
        transfer(r, c.fd, &me, sizeof me, true, deadline);
        transfer(r, c.fd, &size, sizeof size, false, deadline);
        if (size > (64u << 20)) fail(r, "rank 0 announced " + std::to_string(size) + " bytes");
        std::string blob(size, '\0');
        transfer(r, c.fd, blob.data(), size, false, deadline);
        return blob;
      }
      ::freeaddrinfo(found);
    }
    if (Clock::now() >= deadline) fail(r, "timed out waiting for rank 0 (" + last + ")");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // rank 0 may not listen yet
  }
}

}  // namespace

std::string broadcast_from_rank0(const RankInfo& self, const std::string& blob, std::chrono::milliseconds timeout) {
  if (self.world_size <= 1) return blob;
  if (self.rank < 0 || self.rank >= self.world_size) fail(self, "rank outside the job");
  if (self.master_port <= 0 || self.master_port > 65535) fail(self, "MASTER_PORT is not a port");
  auto deadline = Clock::now() + timeout;
  return self.rank == 0 ? serve(self, blob, deadline) : fetch(self, deadline);
}

}  // namespace nemokit::rt
