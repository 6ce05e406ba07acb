// One rank of the communicator tests (test_comm.cpp starts it under mpirun). Its argument picks
// what it does:
//   collectives  every collective with values that depend on the rank, checked; prints "rank R ok"
//   stall        rank 1 stops itself (SIGSTOP) before a barrier: the others must time out naming it
//   die          rank 1 kills itself (SIGKILL) before a barrier: the job must end naming it
//   allreduce-bench BYTES ITERS  times all_reduce_sum of BYTES of floats (bench/runtime)
//   dump PREFIX  every collective on fixed pseudo-random inputs, the results written to
//                PREFIX.rankR, so two backends' files can be compared byte for byte
//                (bench/gpu/check.sh: NCCL against MPI)
// NEMOKIT_COMM_BACKEND ("mpi", "nccl"; default automatic) picks the backend, as
// parallel.backend does for a stage.
#include <signal.h>

#include <chrono>
#include <thread>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "nemokit/runtime/comm.hpp"

using namespace nemokit::rt;

namespace {

int failures = 0;
void expect(bool ok, const std::string& what, int rank) {
  if (ok) return;
  ++failures;
  std::fprintf(stderr, "rank %d: FAILED %s\n", rank, what.c_str());
}

void collectives(Communicator& c) {
  const int r = c.rank(), n = c.size();
  // all_reduce: float, double, int64; in buckets larger than MPI's int count never matter here.
  std::vector<float> f(1000);
  for (size_t i = 0; i < f.size(); ++i) f[i] = float(r + 1) * float(i);
  c.all_reduce_sum(f.data(), f.size());
  const float ranks_sum = float(n * (n + 1) / 2);
  for (size_t i = 0; i < f.size(); ++i) expect(f[i] == ranks_sum * float(i), "all_reduce float at " + std::to_string(i), r);
  double d[2] = {0.5 * r, 1.0};
  c.all_reduce_sum(d, 2);
  expect(d[0] == 0.5 * (n * (n - 1) / 2) && d[1] == n, "all_reduce double", r);
  int64_t big[1] = {(int64_t(1) << 40) + r};
  c.all_reduce_sum(big, 1);
  expect(big[0] == n * (int64_t(1) << 40) + n * (n - 1) / 2, "all_reduce int64", r);
  // reduce_scatter: block b of rank q's input is q*100 + b; rank r's output is the sum over q.
  const size_t per = 3;
  std::vector<float> in(per * size_t(n)), out(per);
  for (int b = 0; b < n; ++b)
    for (size_t k = 0; k < per; ++k) in[size_t(b) * per + k] = float(r * 100 + b) + float(k) * 0.25f;
  c.reduce_scatter_sum(in.data(), out.data(), per);
  for (size_t k = 0; k < per; ++k)
    expect(out[k] == float(100 * n * (n - 1) / 2 + n * r) + float(n) * float(k) * 0.25f, "reduce_scatter", r);
  // The same in double (ZeRO-1's gradient exchange), with values a float could not hold.
  std::vector<double> din(per * size_t(n)), dout(per);
  for (int b = 0; b < n; ++b)
    for (size_t k = 0; k < per; ++k) din[size_t(b) * per + k] = 1e-12 * double(r + 1) + double(b) + double(k);
  c.reduce_scatter_sum(din.data(), dout.data(), per);
  for (size_t k = 0; k < per; ++k) {
    const double want = 1e-12 * double(n * (n + 1) / 2) + double(n) * double(r + int(k));
    expect(std::abs(dout[k] - want) < 1e-15 * std::abs(want) + 1e-24, "reduce_scatter double", r);
  }
  // all_gather: block q is rank q's values.
  std::vector<float> mine = {float(r), float(r) + 0.5f}, all(2 * size_t(n));
  c.all_gather(mine.data(), all.data(), 2);
  for (int q = 0; q < n; ++q) expect(all[2 * size_t(q)] == float(q) && all[2 * size_t(q) + 1] == float(q) + 0.5f, "all_gather", r);
  // broadcast from the last rank.
  char text[16] = {0};
  if (r == n - 1) std::snprintf(text, sizeof text, "from %d", r);
  c.broadcast(text, sizeof text, n - 1);
  expect(std::string(text) == "from " + std::to_string(n - 1), "broadcast", r);
  // all_to_all with counts: rank r sends q+1 bytes of value r*16+q to rank q.
  std::vector<size_t> send_counts(static_cast<size_t>(n)), recv_counts(static_cast<size_t>(n));
  std::vector<unsigned char> send, recv;
  for (int q = 0; q < n; ++q) {
    send_counts[size_t(q)] = size_t(q) + 1;
    recv_counts[size_t(q)] = size_t(r) + 1;
    send.insert(send.end(), size_t(q) + 1, (unsigned char)(r * 16 + q));
  }
  recv.resize(size_t(n) * (size_t(r) + 1));
  c.all_to_all(send.data(), send_counts.data(), recv.data(), recv_counts.data());
  for (int q = 0; q < n; ++q)
    for (size_t k = 0; k <= size_t(r); ++k)
      expect(recv[size_t(q) * (size_t(r) + 1) + k] == (unsigned char)(q * 16 + r), "all_to_all", r);
  c.barrier();
}

int bench(Communicator& c, size_t bytes, int iters) {
  std::vector<float> buf(bytes / sizeof(float), 1.0f);
  for (int i = 0; i < 3; ++i) c.all_reduce_sum(buf.data(), buf.size());
  c.barrier();
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) c.all_reduce_sum(buf.data(), buf.size());
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters;
  if (c.rank() == 0) {
    // nccl-tests' and the OSU suite's convention: algbw = bytes / time, busbw = algbw * 2(n-1)/n.
    double algbw = double(bytes) / secs / 1e9;
    std::printf("bytes %zu time_us %.2f algbw_GBps %.4f busbw_GBps %.4f\n", bytes, secs * 1e6, algbw,
                algbw * 2.0 * (c.size() - 1) / c.size());
  }
  return 0;
}

// Values that differ per rank and element and fill a float's mantissa, so a backend that
// reduced in another order or dropped an element would change the bytes.
float input(int rank, size_t i) {
  uint32_t x = uint32_t(rank) * 2654435761u + uint32_t(i) * 40503u + 12345u;
  x ^= x >> 13, x *= 0x5bd1e995u, x ^= x >> 15;
  return float(int32_t(x % 2000001u) - 1000000) / 4096.0f;
}

int dump(Communicator& c, const std::string& prefix) {
  const int r = c.rank(), n = c.size();
  const size_t count = 1000003;  // not a multiple of anything a transport chunks by
  std::ofstream out(prefix + ".rank" + std::to_string(r), std::ios::binary);
  auto write = [&](const void* p, size_t bytes) { out.write(static_cast<const char*>(p), std::streamsize(bytes)); };
  std::vector<float> f(count);
  for (size_t i = 0; i < count; ++i) f[i] = input(r, i);
  c.all_reduce_sum(f.data(), f.size());
  write(f.data(), f.size() * sizeof(float));
  std::vector<double> d(count);
  for (size_t i = 0; i < count; ++i) d[i] = double(input(r, i)) * 1e-3;
  c.all_reduce_sum(d.data(), d.size());
  write(d.data(), d.size() * sizeof(double));
  std::vector<int64_t> k(1000);
  for (size_t i = 0; i < k.size(); ++i) k[i] = (int64_t(1) << 40) * r + int64_t(i);
  c.all_reduce_sum(k.data(), k.size());
  write(k.data(), k.size() * sizeof(int64_t));
  const size_t per = 4099;
  std::vector<float> rs_in(per * size_t(n)), rs_out(per);
  for (size_t i = 0; i < rs_in.size(); ++i) rs_in[i] = input(r + 7, i);
  c.reduce_scatter_sum(rs_in.data(), rs_out.data(), per);
  write(rs_out.data(), per * sizeof(float));
  std::vector<double> drs_in(per * size_t(n)), drs_out(per);
  for (size_t i = 0; i < drs_in.size(); ++i) drs_in[i] = double(input(r + 9, i)) * 1e-12;
  c.reduce_scatter_sum(drs_in.data(), drs_out.data(), per);
  write(drs_out.data(), per * sizeof(double));
  std::vector<float> ag_in(per), ag_out(per * size_t(n));
  for (size_t i = 0; i < per; ++i) ag_in[i] = input(r + 11, i);
  c.all_gather(ag_in.data(), ag_out.data(), per);
  write(ag_out.data(), ag_out.size() * sizeof(float));
  std::vector<float> b(per);
  for (size_t i = 0; i < per; ++i) b[i] = input(r + 13, i);
  c.broadcast(b.data(), b.size() * sizeof(float), n - 1);
  write(b.data(), b.size() * sizeof(float));
  // all_to_all with uneven counts, one of them zero: rank r sends (r + q) * 37 bytes to rank q.
  std::vector<size_t> sc(static_cast<size_t>(n)), rc(static_cast<size_t>(n));
  std::vector<unsigned char> send, recv;
  for (int q = 0; q < n; ++q) {
    sc[size_t(q)] = size_t(r + q) * 37, rc[size_t(q)] = size_t(q + r) * 37;
    for (size_t i = 0; i < sc[size_t(q)]; ++i) send.push_back((unsigned char)(r * 31 + q * 7 + int(i)));
  }
  size_t total = 0;
  for (size_t x : rc) total += x;
  recv.assign(total, 0xAA);
  c.all_to_all(send.data(), sc.data(), recv.data(), rc.data());
  write(recv.data(), recv.size());
  c.barrier();
  if (!out) {
    std::fprintf(stderr, "rank %d: cannot write %s.rank%d\n", r, prefix.c_str(), r);
    return 1;
  }
  std::printf("rank %d of %d dumped (%s)\n", r, n, c.backend().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "collectives";
  try {
    CommOptions opt;
    opt.timeout = comm_timeout_from_env(std::chrono::seconds(60));
    const char* backend = std::getenv("NEMOKIT_COMM_BACKEND");
    opt.backend = parse_comm_backend(backend ? backend : "", "NEMOKIT_COMM_BACKEND");
    auto comm = open_communicator(opt);
    if (mode == "collectives") {
      collectives(*comm);
      if (failures) return 1;
      std::printf("rank %d of %d ok (%s)\n", comm->rank(), comm->size(), comm->backend().c_str());
    } else if (mode == "stall" || mode == "die") {
      comm->barrier();
      if (comm->rank() == 1) raise(mode == "stall" ? SIGSTOP : SIGKILL);
      comm->barrier();
      std::printf("rank %d passed the barrier\n", comm->rank());
    } else if (mode == "rank0-works") {
      // Rank 0 works alone for 3 s (past the collective timeout the test sets) while the others
      // wait for it: wait_for_ranks with a longer wait passes, then the same wait in a plain
      // barrier times out.
      if (comm->rank() == 0) std::this_thread::sleep_for(std::chrono::seconds(3));
      comm->wait_for_ranks(std::chrono::seconds(30));
      std::printf("rank %d waited for rank 0\n", comm->rank());
      std::fflush(stdout);
      if (comm->rank() == 0) std::this_thread::sleep_for(std::chrono::seconds(3));
      comm->barrier();
      std::printf("rank %d passed the barrier\n", comm->rank());
    } else if (mode == "dump" && argc > 2) {
      return dump(*comm, argv[2]);
    } else if (mode == "allreduce-bench" && argc > 3) {
      return bench(*comm, std::stoul(argv[2]), std::stoi(argv[3]));
    } else {
      std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
      return 2;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
