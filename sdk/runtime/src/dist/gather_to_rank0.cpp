// Variable-sized bytes from every rank to rank 0 over the communicator's all-to-all: the sizes
// first (rank 0 learns each sender's), then the bytes.
#include <cstdint>

#include "nemokit/runtime/comm.hpp"

namespace nemokit::rt {

std::vector<std::string> gather_to_rank0(Communicator& comm, const std::string& bytes) {
  const size_t ranks = size_t(comm.size());
  std::vector<uint64_t> size_out(ranks, 0), size_in(ranks, 0);
  size_out[0] = bytes.size();
  std::vector<size_t> eight(ranks, sizeof(uint64_t));
  comm.all_to_all(size_out.data(), eight.data(), size_in.data(), eight.data());
  std::vector<size_t> send(ranks, 0), recv(ranks, 0);
  send[0] = bytes.size();
  size_t total = 0;
  if (comm.rank() == 0)
    for (size_t s = 0; s < ranks; ++s) recv[s] = size_t(size_in[s]), total += recv[s];
  std::string received(total, '\0');
  comm.all_to_all(bytes.data(), send.data(), received.data(), recv.data());
  std::vector<std::string> out;
  if (comm.rank() != 0) return out;
  size_t at = 0;
  for (size_t s = 0; s < ranks; ++s) {
    out.push_back(received.substr(at, recv[s]));
    at += recv[s];
  }
  return out;
}

}  // namespace nemokit::rt
