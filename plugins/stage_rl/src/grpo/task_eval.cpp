#include "grpo/task_eval.hpp"

namespace nemokit::rl {
using nlohmann::json;

std::string task_kind(const json& task) {
  auto k = task.find("task");
  if (k != task.end() && k->is_string()) return k->get<std::string>();
  const json& e = task.at("environment");
  return e.is_string() ? e.get<std::string>() : e.dump();
}

double KindRewards::mean(const std::string& kind) const {
  auto it = sums.find(kind);
  return it == sums.end() || it->second.second == 0 ? 0.0 : it->second.first / double(it->second.second);
}

json KindRewards::means() const {
  json j = json::object();
  for (const auto& [k, v] : sums) j[k] = v.first / double(v.second);
  return j;
}

KindRewards rewards_by_kind(const std::vector<const json*>& tasks, const std::vector<Sample>& samples) {
  KindRewards r;
  for (const Sample& s : samples)
    for (const std::string& k : {std::string("all"), task_kind(*tasks[size_t(s.task)])}) {
      r.sums[k].first += s.reward;
      r.sums[k].second += 1;
    }
  return r;
}

void split_stop_strings(const rt::Tokenizer& tok, const std::vector<std::string>& stops, std::vector<int32_t>& tokens,
                        std::vector<std::string>& strings) {
  for (const std::string& s : stops) {
    if (auto id = tok.token_to_id(s)) tokens.push_back(*id);
    else strings.push_back(s);
  }
}

RolloutResult evaluate_tasks(rt::NemotronH& model, const rt::Tokenizer& tok, const std::vector<const json*>& tasks,
                             const std::vector<std::vector<int32_t>>& prompts,
                             const std::vector<std::vector<rt::MediaInput>>* media, const TaskEvalOptions& o,
                             const RewardFn& reward_of, const RolloutFn& rollout_of) {
  RolloutOptions ro;
  ro.generations = o.generations;
  ro.sampling.max_new_tokens = o.max_new_tokens;
  ro.sampling.temperature = float(o.temperature);
  ro.sampling.top_p = float(o.top_p);
  ro.sampling.seed = o.seed;
  split_stop_strings(tok, o.stop_strings, ro.sampling.stop_tokens, ro.stop_strings);
  ro.media = media;
  ro.prompt_places = o.prompt_places;
  return rollout_of(model, tok, tasks, prompts, ro, reward_of);
}

}  // namespace nemokit::rl
