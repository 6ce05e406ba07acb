#include "grpo/rollout.hpp"

#include "chat/chat_template.hpp"
#include "prep/tokenize_chat.hpp"
#include "train/generation_eval.hpp"

#include <chrono>
#include <stdexcept>

namespace nemokit::rl {
using nlohmann::json;

std::vector<int32_t> render_prompt(const json& task, const rt::Tokenizer& tok, bool enable_thinking, const std::string& where) {
  json messages = task.at("prompt");
  if (messages.is_string()) messages = json::array({{{"role", "user"}, {"content", messages}}});
  nlohmann::ordered_json record = {{"messages", nlohmann::ordered_json::parse(messages.dump())}};
  if (task.contains("tools")) record["tools"] = nlohmann::ordered_json::parse(task["tools"].dump());
  sft::RenderOptions ro;
  ro.enable_thinking = enable_thinking;
  ro.add_generation_prompt = true;
  try {
    return sft::tokenize_chat(tok, sft::render_chat(record, ro, where)).ids;
  } catch (const sft::ChatFormatError& e) {
    throw std::invalid_argument(std::string(e.what()) + " (in \"prompt\")");
  }
}

size_t stop_cut(const rt::Tokenizer& tok, const std::vector<int32_t>& response, const std::vector<std::string>& stops) {
  if (stops.empty()) return response.size();
  auto holds = [&](size_t n) {
    const std::string text = tok.decode_generated(std::span<const int32_t>(response.data(), n));
    for (const auto& s : stops)
      if (!s.empty() && text.find(s) != std::string::npos) return true;
    return false;
  };
  if (!holds(response.size())) return response.size();
  size_t lo = 1, hi = response.size();  // holds(hi); find the smallest n with holds(n)
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (holds(mid)) hi = mid;
    else lo = mid + 1;
  }
  return hi;
}

std::vector<uint64_t> sample_streams(size_t prompts, const RolloutOptions& o) {
  if (!o.prompt_places.empty() && o.prompt_places.size() != prompts)
    throw std::invalid_argument("rollout: " + std::to_string(o.prompt_places.size()) + " prompt places for " +
                                std::to_string(prompts) + " prompts");
  std::vector<uint64_t> streams;
  for (size_t i = 0; i < prompts; ++i)
    for (int64_t g = 0; g < o.generations; ++g)
      streams.push_back(uint64_t((o.prompt_places.empty() ? int64_t(i) : o.prompt_places[i]) * o.generations + g));
  return streams;
}

RolloutResult rollout(rt::NemotronH& model, const rt::Tokenizer& tok, const std::vector<const json*>& tasks,
                      const std::vector<std::vector<int32_t>>& prompts, const RolloutOptions& o,
                      const RewardFn& reward_of) {
  RolloutResult r;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::vector<int32_t>> batch;
  for (const auto& p : prompts)
    for (int64_t g = 0; g < o.generations; ++g) batch.push_back(p);
  // Encoder tokens of each prompt, once, for its G sequences.
  const bool media = o.media && !o.media->empty();
  std::vector<rt::PromptEmbeddings> embeds;
  if (media) {
    if (o.media->size() != prompts.size()) throw std::invalid_argument("rollout: one media list per prompt required");
    for (const auto& inputs : *o.media) {
      rt::PromptEmbeddings e;
      for (const rt::MediaInput& in : inputs) {
        std::vector<float> tokens = model.encode(in);
        e.positions.insert(e.positions.end(), in.positions.begin(), in.positions.end());
        e.values.insert(e.values.end(), tokens.begin(), tokens.end());
      }
      for (int64_t g = 0; g < o.generations; ++g) embeds.push_back(e);
    }
  }
  rt::SamplingOptions sampling = o.sampling;
  sampling.streams = sample_streams(prompts.size(), o);
  std::vector<std::vector<int32_t>> out = media ? rt::generate(model, batch, sampling, embeds) : rt::generate(model, batch, sampling);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (size_t j = 0; j < out.size(); ++j) {
    r.generated_tokens += int64_t(out[j].size());
    Sample s;
    s.task = int64_t(j) / o.generations;
    s.prompt = batch[j];
    if (media) s.media = (*o.media)[size_t(s.task)];
    s.response = std::move(out[j]);
    s.response.resize(stop_cut(tok, s.response, o.stop_strings));
    const json& task = *tasks[size_t(s.task)];
    const std::string text = sft::answer_text(tok.decode_generated(s.response));
    Reward reward = reward_of(task, text);
    s.reward = reward.value;
    r.texts.push_back(text);
    r.reasons.push_back(std::move(reward.reason));
    r.samples.push_back(std::move(s));
  }
  return r;
}

}  // namespace nemokit::rl
