// Encode throughput: tokenizer_bench TOKENIZER.json CORPUS.txt [--threads N] [--repeat R]
// Encodes every line of the corpus with encode_batch, once to warm up and then R timed passes,
// and prints one JSON line: bytes, tokens, best seconds, MB/s and a digest of the ids (so the
// driver script can check the peer produced the same ids).

#include <nemokit/runtime/tokenizer.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: tokenizer_bench TOKENIZER.json CORPUS.txt [--threads N] [--repeat R]\n";
    return 2;
  }
  int threads = 0, repeat = 3;
  for (int i = 3; i + 1 < argc; i += 2) {
    const std::string opt = argv[i];
    if (opt == "--threads") threads = std::stoi(argv[i + 1]);
    else if (opt == "--repeat") repeat = std::stoi(argv[i + 1]);
  }
  try {
    const auto tok = nemokit::rt::Tokenizer::load(argv[1]);
    std::ifstream in(argv[2], std::ios::binary);
    if (!in) throw std::runtime_error(std::string(argv[2]) + ": cannot open");
    std::vector<std::string> lines;
    size_t bytes = 0;
    for (std::string l; std::getline(in, l);) {
      bytes += l.size();
      lines.push_back(std::move(l));
    }
    auto ids = tok.encode_batch(lines, threads);  // warm-up (caches, page faults)
    double best = 1e30;
    for (int r = 0; r < repeat; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      ids = tok.encode_batch(lines, threads);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::min(best, s);
    }
    // FNV-1a over the ids, with a separator per line, matching bench_encode.py's digest.
    uint64_t digest = 1469598103934665603ULL;
    size_t tokens = 0;
    auto mix = [&](uint64_t v) { digest = (digest ^ v) * 1099511628211ULL; };
    for (const auto& row : ids) {
      for (int32_t id : row) mix(uint64_t(uint32_t(id)));
      mix(0xFFFFFFFFULL);
      tokens += row.size();
    }
    const unsigned used = threads > 0 ? unsigned(threads) : std::thread::hardware_concurrency();
    std::printf(
        "{\"bytes\": %zu, \"lines\": %zu, \"tokens\": %zu, \"seconds\": %.6f, \"mb_per_s\": %.3f, "
        "\"threads\": %u, \"digest\": \"%016llx\"}\n",
        bytes, lines.size(), tokens, best, bytes / best / 1e6, used, (unsigned long long)digest);
  } catch (const std::exception& e) {
    std::cerr << "tokenizer_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
