// data_prep_bench CONFIG_JSON OUT_DIR [--repeat N]
// Runs the pretraining data prep (run_pretrain_data_prep) on a [data] table given as JSON and
// prints one JSON line: tokens, documents, best wall seconds of N runs, tokens/s. bench_prep.py
// runs it beside Hugging Face tokenizers.

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "prep/data_prep.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: data_prep_bench CONFIG_JSON OUT_DIR [--repeat N]\n";
    return 2;
  }
  int repeat = 3;
  if (argc == 5 && std::string(argv[3]) == "--repeat") repeat = std::max(1, std::stoi(argv[4]));
  std::ifstream in(argv[1]);
  if (!in) {
    std::cerr << argv[1] << ": cannot open\n";
    return 1;
  }
  const auto config = nlohmann::json::parse(in);
  double best = 1e300;
  for (int r = 0; r < repeat; ++r) {
    std::ostringstream log;
    const auto t0 = std::chrono::steady_clock::now();
    const int rc = nemokit::pretrain::run_pretrain_data_prep(config, argv[2], log);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (rc != 0) {
      std::cerr << log.str();
      return rc;
    }
    best = std::min(best, secs);
  }
  std::ifstream meta_in(std::string(argv[2]) + "/metadata.json");
  const auto meta = nlohmann::json::parse(meta_in);
  const auto tokens = meta["total_tokens"].get<uint64_t>();
  std::cout << nlohmann::json{{"tokens", tokens},
                              {"documents", meta["documents"]},
                              {"seconds", best},
                              {"tokens_per_s", static_cast<double>(tokens) / best}}
                   .dump()
            << "\n";
  return 0;
}
