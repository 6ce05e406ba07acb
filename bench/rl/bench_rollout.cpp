// Rollout generation throughput of the CPU runtime; bench_rollout.py runs it beside
// transformers' generate on the same checkpoint and prompt ids.
//
//   rollout_bench render TOKENIZER.json TASKS.jsonl N OUT.json
//       N tasks spread evenly over the file, rendered as GRPO renders them (chat template,
//       generation prompt, no thinking), written as {"prompts": [[ids...], ...]}.
//   rollout_bench generate MODEL_DIR PROMPTS.json [key=value ...]
//       keys: g (samples per prompt, 8), new (max new tokens, 64), temperature (1.0),
//       top_p (0.95), top_k (0), repeat (timed runs, 3), seed (1), greedy (tokens of the
//       greedy check on the first prompt, 16).
//       The batch is every prompt repeated g times, as rl::rollout builds it, with no stop
//       tokens so every sequence makes `new` tokens. One warm-up run, then `repeat` timed
//       ones; prints one JSON line with the best run's tokens/s and the greedy tokens.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "grpo/rollout.hpp"
#include "nemokit/runtime/checkpoint.hpp"
#include "nemokit/runtime/generate.hpp"
#include "nemokit/runtime/parallel.hpp"
#include "nemokit/runtime/tokenizer.hpp"

using namespace nemokit;
using nlohmann::json;

namespace {

int run_render(const std::string& tokenizer, const std::string& tasks_path, size_t n, const std::string& out_path) {
  const rt::Tokenizer tok = rt::Tokenizer::load(tokenizer);
  std::vector<json> tasks;
  std::ifstream in(tasks_path);
  if (!in) throw std::runtime_error("cannot read " + tasks_path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) tasks.push_back(json::parse(line));
  if (tasks.size() < n) throw std::runtime_error(tasks_path + " has fewer than " + std::to_string(n) + " tasks");
  json prompts = json::array();
  for (size_t i = 0; i < n; ++i) {
    const size_t at = i * tasks.size() / n;  // spread over the file: every environment, ragged lengths
    prompts.push_back(rl::render_prompt(tasks[at], tok, false, tasks_path + ":" + std::to_string(at + 1)));
  }
  std::ofstream(out_path) << json{{"prompts", prompts}}.dump() << "\n";
  return 0;
}

int run_generate(const std::string& model_dir, const std::string& prompts_path, const std::map<std::string, std::string>& kv) {
  auto get = [&](const char* key, const char* fallback) {
    auto it = kv.find(key);
    return std::stod(it == kv.end() ? fallback : it->second);
  };
  const int64_t G = int64_t(get("g", "8"));
  const int repeat = int(get("repeat", "3"));
  rt::SamplingOptions o;
  o.max_new_tokens = int64_t(get("new", "64"));
  o.temperature = float(get("temperature", "1.0"));
  o.top_p = float(get("top_p", "0.95"));
  o.top_k = int64_t(get("top_k", "0"));
  o.seed = uint64_t(get("seed", "1"));

  auto model = rt::load_pretrained(model_dir);
  std::ifstream in(prompts_path);
  if (!in) throw std::runtime_error("cannot read " + prompts_path);
  const json doc = json::parse(in);
  std::vector<std::vector<int32_t>> prompts = doc.at("prompts").get<std::vector<std::vector<int32_t>>>();
  std::vector<std::vector<int32_t>> batch;
  for (const auto& p : prompts)
    for (int64_t g = 0; g < G; ++g) batch.push_back(p);

  double best = 1e30;
  int64_t tokens = 0;
  uint64_t digest = 0;
  for (int r = 0; r <= repeat; ++r) {  // run 0 warms up
    const auto t0 = std::chrono::steady_clock::now();
    const auto out = rt::generate(*model, batch, o);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    tokens = 0;
    digest = 1469598103934665603ull;  // FNV-1a over every sampled id: a runtime change must keep it
    for (const auto& seq : out) {
      tokens += int64_t(seq.size());
      for (int32_t id : seq) digest = (digest ^ uint64_t(uint32_t(id))) * 1099511628211ull;
    }
    if (r > 0) best = std::min(best, s);
  }

  rt::SamplingOptions greedy;
  greedy.temperature = 0;
  greedy.max_new_tokens = int64_t(get("greedy", "16"));
  const auto g = rt::generate(*model, {prompts.at(0)}, greedy).at(0);

  json line = {{"tokens_per_s", double(tokens) / best}, {"seconds", best}, {"generated_tokens", tokens},
               {"sequences", batch.size()}, {"threads", rt::num_threads()}, {"greedy", g},
               {"sample_digest", std::to_string(digest)}};
  std::printf("%s\n", line.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "render" && argc == 6) return run_render(argv[2], argv[3], size_t(std::stoul(argv[4])), argv[5]);
    if (mode == "generate" && argc >= 4) {
      std::map<std::string, std::string> kv;
      for (int i = 4; i < argc; ++i) {
        const std::string a = argv[i];
        const size_t eq = a.find('=');
        if (eq == std::string::npos) throw std::invalid_argument("expected key=value, got " + a);
        kv[a.substr(0, eq)] = a.substr(eq + 1);
      }
      return run_generate(argv[2], argv[3], kv);
    }
    std::fprintf(stderr,
                 "usage: rollout_bench render TOKENIZER.json TASKS.jsonl N OUT.json\n"
                 "       rollout_bench generate MODEL_DIR PROMPTS.json [g=8 new=64 temperature=1 top_p=0.95 "
                 "top_k=0 repeat=3 seed=1 greedy=16]\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rollout_bench: %s\n", e.what());
    return 1;
  }
}
