// gpu_train_bench: training-step throughput of the GPU trainer (sdk/runtime/src/cuda/model:
// GpuNemotronH + GpuTrainer, bf16 passes, fp32 masters and AdamW) on one GPU. Run by
// bench_train_gpu.py, which times transformers' NemotronH on the same weights and tokens.
//
//   gpu_train_bench MODEL_DIR TOKENS.bin BATCH SEQ WARMUP STEPS
//
// MODEL_DIR holds config.json and model.safetensors (loaded as rt::load_pretrained does);
// TOKENS.bin is int32 [BATCH, SEQ]: each row is the input, and its ids shifted by one the
// targets (the last position has none), as transformers' labels = input_ids. Prints one JSON line: the first step's loss (compared with the peer's), the median
// step time of the timed steps, tokens/s, and the model's training FLOPs per token (mfu_flops.hpp).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <cuda_runtime.h>
#include <nlohmann/json.hpp>

#include "gpu_trainer.hpp"
#include "mfu_flops.hpp"
#include "nemokit/runtime/checkpoint.hpp"
#include "nemokit/runtime/optim.hpp"

namespace rt = nemokit::rt;

int main(int argc, char** argv) {
  if (argc != 7) {
    std::cerr << "usage: gpu_train_bench MODEL_DIR TOKENS.bin BATCH SEQ WARMUP STEPS\n";
    return 2;
  }
  try {
    const std::string dir = argv[1];
    const int64_t B = std::stoll(argv[3]), T = std::stoll(argv[4]);
    const int warmup = std::stoi(argv[5]), steps = std::stoi(argv[6]);
    rt::Batch batch;
    batch.batch = B, batch.seq = T;
    batch.input_ids.resize(size_t(B * T));
    std::ifstream in(argv[2], std::ios::binary);
    if (!in.read(reinterpret_cast<char*>(batch.input_ids.data()), std::streamsize(batch.input_ids.size() * sizeof(int32_t))))
      throw std::runtime_error(std::string(argv[2]) + ": fewer than BATCH x SEQ int32 ids");
    batch.targets.assign(batch.input_ids.size(), -1);
    for (int64_t r = 0; r < B; ++r)
      for (int64_t t = 0; t + 1 < T; ++t) batch.targets[size_t(r * T + t)] = batch.input_ids[size_t(r * T + t + 1)];

    std::unique_ptr<rt::NemotronH> model = rt::load_pretrained(dir);
    rt::AdamWConfig ac;
    ac.weight_decay = 0.0f;  // the peer's AdamW runs with the same settings
    rt::AdamW optimizer(model->parameters(), ac);
    rt::TrainOptions to;
    to.max_grad_norm = 1.0;
    to.expert_bias_rate = model->config().n_routed_experts > 0 ? 1e-3f : 0.0f;
    rt::cuda::GpuTrainer trainer(*model, optimizer, to);

    float first_loss = 0;
    std::vector<double> secs;
    for (int s = 0; s < warmup + steps; ++s) {
      if (cudaDeviceSynchronize() != cudaSuccess) throw std::runtime_error("cudaDeviceSynchronize failed");
      const auto t0 = std::chrono::steady_clock::now();
      const rt::TrainStepStats st = trainer.step(1e-4f, {batch});
      if (cudaDeviceSynchronize() != cudaSuccess) throw std::runtime_error("cudaDeviceSynchronize failed");
      if (s == 0) first_loss = st.loss;
      if (s >= warmup) secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(secs.begin(), secs.end());
    const double step_s = secs.empty() ? 0.0 : secs[secs.size() / 2];
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    nlohmann::json out = {{"first_loss", first_loss},
                          {"step_s", step_s},
                          {"tokens_per_s", step_s > 0 ? double(B * T) / step_s : 0.0},
                          {"flops_per_token", nemokit::bench::training_flops_per_token(model->config(), T)},
                          {"parameters", double(model->config().parameter_count())},
                          {"gpu_memory_used_gib", double(total_b - free_b) / double(1ull << 30)}};
    std::cout << out.dump() << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "gpu_train_bench: " << e.what() << "\n";
    return 1;
  }
}
