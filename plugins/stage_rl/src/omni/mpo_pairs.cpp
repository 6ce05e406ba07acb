#include "omni/mpo_pairs.hpp"

#include "model/init_model.hpp"
#include "omni/media_items.hpp"
#include "prep/rl_data_prep.hpp"
#include "train/generation_eval.hpp"

#include "nemokit/runtime/atomic_file.hpp"
#include "nemokit/runtime/checkpoint.hpp"
#include "nemokit/runtime/run/table_reader.hpp"
#include "nemokit/runtime/run/utc_time.hpp"
#include "nemokit/runtime/sha256.hpp"

#include <fstream>
#include <iostream>
#include <map>

namespace nemokit::rl {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct PairOptions {
  int64_t samples_per_task = 8, max_new_tokens = 16, batch_tasks = 32;
  double temperature = 1.0;
  uint64_t seed = 1234;
};

PairOptions pair_options(const json& config) {
  PairOptions o;
  if (!config.contains("mpo_data")) return o;
  rt::TableReader t(config["mpo_data"], "mpo_data");
  t.integer("samples_per_task", o.samples_per_task, 2);
  t.integer("max_new_tokens", o.max_new_tokens, 1);
  t.integer("batch_tasks", o.batch_tasks, 1);
  t.number("temperature", o.temperature);
  int64_t seed = int64_t(o.seed);
  t.integer("seed", seed, 0);
  o.seed = uint64_t(seed);
  t.no_unknown_keys();
  if (o.temperature <= 0) t.fail("temperature", "must be positive: pairs need different answers");
  return o;
}

// The most frequent text among `texts` (ties: the first seen).
std::string most_frequent(const std::vector<std::string>& texts) {
  std::map<std::string, int> n;
  std::string best;
  int top = 0;
  for (const auto& t : texts)
    if (++n[t] > top) top = n[t], best = t;
  return best;
}

}  // namespace

fs::path prepare_mpo_data(const json& config, const fs::path& job_dir, const RewardFn& reward_of, const StageLog& host) {
  RlPrepConfig c = RlPrepConfig::from_config(config, job_dir);
  const PairOptions po = pair_options(config);
  // The task splits, media copied in, beside the output; the pairs refer to that media.
  fs::path tasks_dir = c.output;
  tasks_dir += ".tasks";
  run_rl_data_prep(c, tasks_dir, std::cerr);
  const json tasks_manifest = json::parse(std::ifstream(tasks_dir / "manifest.json"));

  const sft::InitModel init = sft::resolve_init_model(config, job_dir);
  rt::Tokenizer tok = rt::Tokenizer::load(init.tokenizer);
  std::unique_ptr<rt::NemotronH> model = rt::load_pretrained(init.dir.string());
  const sft::MediaOptions media = sft::MediaOptions::for_model(config, *model);
  host.info("pairs from the answers of " + init.dir.string() + " (" + init.origin + "): " +
            std::to_string(po.samples_per_task) + " per task at temperature " + std::to_string(po.temperature));
  std::vector<int32_t> stops;
  if (auto end = tok.token_to_id("<|im_end|>")) stops.push_back(*end);

  const fs::path tmp = rt::fresh_temp_dir(c.output);
  fs::copy(tasks_dir / "media", tmp / "media", fs::copy_options::recursive);
  json manifest, splits;
  rt::Sha256 content;
  int64_t all_pairs = 0;
  for (const char* split : {"train", "val", "test"}) {
    const std::vector<json> tasks = read_tasks(tasks_manifest[split].get<std::string>());
    std::ofstream out(tmp / (std::string(split) + ".jsonl"), std::ios::binary);
    int64_t pairs = 0, from_expected = 0, always_right = 0;
    for (size_t b = 0; b < tasks.size(); b += size_t(po.batch_tasks)) {
      std::vector<const json*> part;
      std::vector<std::vector<int32_t>> prompts;
      std::vector<std::vector<rt::MediaInput>> prompt_media;
      for (size_t i = b; i < std::min(tasks.size(), b + size_t(po.batch_tasks)); ++i) {
        const std::string where = tasks_manifest[split].get<std::string>() + " task " + std::to_string(i + 1);
        part.push_back(&tasks[i]);
        prompts.push_back(render_prompt(tasks[i], tok, false, where));
        prompt_media.push_back(sft::prompt_media(prompts.back(), tasks[i], tasks_dir, media, tok, where));
      }
      RolloutOptions ro;
      ro.generations = po.samples_per_task;
      ro.media = &prompt_media;
      ro.sampling.max_new_tokens = po.max_new_tokens;
      ro.sampling.temperature = float(po.temperature);
      ro.sampling.seed = po.seed ^ (0x9e3779b97f4a7c15ull * (b + 1));
      ro.sampling.stop_tokens = stops;
      RolloutResult r = rollout(*model, tok, part, prompts, ro, reward_of);
      for (size_t t = 0; t < part.size(); ++t) {
        std::vector<std::string> right, wrong;
        for (int64_t g = 0; g < po.samples_per_task; ++g) {
          const size_t j = t * size_t(po.samples_per_task) + size_t(g);
          (r.samples[j].reward >= 0.5 ? right : wrong).push_back(r.texts[j]);
        }
        if (wrong.empty()) {
          ++always_right;
          continue;
        }
        json pair = *part[t];
        const bool sampled = !right.empty();
        pair["chosen"] = sampled ? most_frequent(right) : sft::answer_text(part[t]->value("expected_answer", ""));
        pair["rejected"] = most_frequent(wrong);
        pair["chosen_source"] = sampled ? "sample" : "expected";
        if (pair["chosen"].get<std::string>().empty() || pair["chosen"] == pair["rejected"]) continue;
        // sampled answers may cut a UTF-8 sequence: such bytes become U+FFFD
        out << pair.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
        ++pairs, from_expected += !sampled;
      }
    }
    out.close();
    if (!out) throw std::runtime_error((tmp / split).string() + ".jsonl: write failed");
    manifest[split] = (c.output / (std::string(split) + ".jsonl")).string();
    splits[split] = {{"records", pairs}, {"chosen_from_expected", from_expected}, {"always_right_tasks", always_right}};
    content.update(rt::sha256_file(tmp / (std::string(split) + ".jsonl")));
    all_pairs += pairs;
    host.info(std::string("mpo pairs: ") + split + " " + std::to_string(pairs) + " (" + std::to_string(from_expected) +
              " chosen from the expected answer, " + std::to_string(always_right) + " tasks always answered right)");
  }
  if (splits["train"]["records"].get<int64_t>() == 0)
    throw std::invalid_argument("data.inputs: no train task gave a pair (every answer scored the same)");
  const json metadata = {{"type", "SplitJsonlDataArtifact"},
                         {"name", c.name},
                         {"path", c.output.string()},
                         {"created_at", rt::utc_now()},
                         {"producer", "nemokit data prep omni3 rl mpo"},
                         {"format", "jsonl"},
                         {"manifest", "manifest.json"},
                         {"splits", splits},
                         {"model", init.dir.string()},
                         {"tasks", tasks_dir.string()},
                         {"content_digest", content.finish_digest()},
                         {"pairs", all_pairs}};
  rt::write_file_atomic(tmp / "manifest.json", manifest.dump(2) + "\n");
  rt::write_file_atomic(tmp / "metadata.json", metadata.dump(2) + "\n");
  rt::replace_dir_atomic(tmp, c.output);
  return c.output;
}

}  // namespace nemokit::rl
