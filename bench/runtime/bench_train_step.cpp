// Forward+backward throughput of the CPU runtime on a checkpoint folder and an inputs file
// (input_ids and targets, I64 [batch, seq]); bench_train_step.py runs it beside PyTorch.
// Prints one JSON line: tokens per second (best of the timed passes) and the loss.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "nemokit/runtime/checkpoint.hpp"
#include "nemokit/runtime/parallel.hpp"
#include "nemokit/runtime/safetensors.hpp"

using namespace nemokit::rt;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: runtime_bench MODEL_DIR INPUTS.safetensors [REPEAT]\n");
    return 2;
  }
  try {
    auto model = load_pretrained(argv[1]);
    auto inputs = SafetensorsFile::open(argv[2]);
    int repeat = argc > 3 ? std::atoi(argv[3]) : 5;
    Tensor ids = inputs.load("input_ids"), targets = inputs.load("targets");
    Batch b;
    b.batch = ids.size(0), b.seq = ids.size(1);
    for (int64_t i = 0; i < ids.numel(); ++i) b.input_ids.push_back(int32_t(ids.data<int64_t>()[i]));
    for (int64_t i = 0; i < targets.numel(); ++i) b.targets.push_back(int32_t(targets.data<int64_t>()[i]));
    double best = 1e30;
    float loss = 0;
    for (int r = 0; r <= repeat; ++r) {  // pass 0 warms up
      model->zero_grad();
      auto t0 = std::chrono::steady_clock::now();
      loss = model->forward_backward(b, LossOptions{}, true).loss;
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (r > 0 && s < best) best = s;
    }
    std::printf("{\"tokens_per_s\": %.1f, \"seconds\": %.5f, \"loss\": %.6f, \"threads\": %d}\n",
                double(b.batch * b.seq) / best, best, loss, num_threads());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "runtime_bench: %s\n", e.what());
    return 1;
  }
}
