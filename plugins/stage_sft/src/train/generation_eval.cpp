#include "train/generation_eval.hpp"

#include "chat/chat_template.hpp"
#include "omni/media_batch.hpp"
#include "prep/tokenize_chat.hpp"

#include "nemokit/runtime/generate.hpp"

#include <fstream>
#include <stdexcept>

namespace nemokit::sft {
using nlohmann::json;

double EvalReport::accuracy() const {
  int64_t ok = 0, n = 0;
  for (const auto& [_, c] : per_kind) ok += c.first, n += c.second;
  return n ? double(ok) / double(n) : 0.0;
}

json EvalReport::to_json() const {
  json j = {{"all", accuracy()}};
  for (const auto& [kind, c] : per_kind) j[kind] = c.second ? double(c.first) / double(c.second) : 0.0;
  return j;
}

std::string answer_text(const std::string& generated) {
  std::string s = generated;
  size_t open = s.find("<think>");
  if (open != std::string::npos && s.find_first_not_of(" \n", 0) == open) {
    size_t close = s.find("</think>", open);
    s = close == std::string::npos ? std::string() : s.substr(close + 8);
  }
  for (const char* end : {"<|im_end|>", "<|endoftext|>"})
    if (size_t e = s.find(end); e != std::string::npos) s.resize(e);
  size_t b = s.find_first_not_of(" \t\n");
  size_t e = s.find_last_not_of(" \t\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

std::vector<EvalExample> load_eval_examples(const std::filesystem::path& file, const rt::Tokenizer& tok, bool enable_thinking,
                                            int64_t max_examples, const MediaOptions* media, bool skip_media_records) {
  std::ifstream in(file);
  if (!in) throw std::invalid_argument("eval.file: cannot open " + file.string());
  std::vector<EvalExample> all;
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = file.string() + ":" + std::to_string(n);
    nlohmann::ordered_json r;
    try {
      r = nlohmann::ordered_json::parse(line);
    } catch (const nlohmann::ordered_json::parse_error& e) {
      throw std::invalid_argument(where + ": not valid JSON: " + e.what());
    }
    auto text = [&](const char* key) {
      if (!r.contains(key) || !r[key].is_string()) throw std::invalid_argument(where + ": \"" + key + "\" must be a string");
      return r[key].get<std::string>();
    };
    const bool has_media = r.contains("images") || r.contains("videos") || r.contains("audios");
    if (has_media && skip_media_records) continue;
    EvalExample ex;
    ex.kind = text("kind");
    ex.expected = text("expected");
    std::string match = r.contains("match") ? text("match") : "exact";
    if (match != "exact" && match != "prefix") throw std::invalid_argument(where + ": \"match\" must be \"exact\" or \"prefix\"");
    ex.prefix = match == "prefix";
    nlohmann::ordered_json conversation = {{"messages", r.contains("messages") ? r["messages"] : nlohmann::ordered_json()}};
    auto segments = render_chat(conversation, RenderOptions{enable_thinking, true}, where);
    TokenizedChat chat = tokenize_chat(tok, segments);
    if (has_media) {
      if (!media) throw std::invalid_argument(where + ": a record with media, but the model has no encoders");
      std::vector<MediaItem> items = load_media(r, file.parent_path(), *media, where);
      std::vector<int64_t> at = expand_placeholders(chat, items, tok, where);
      ex.media = media_inputs(items, at, media->vision ? media->vision->image_size : 0,
                              media->audio ? media->audio->num_mel_bins : 0);
    }
    ex.prompt = std::move(chat.ids);
    all.push_back(std::move(ex));
  }
  if (max_examples <= 0 || int64_t(all.size()) <= max_examples) return all;
  // Keep every kind represented: take round-robin over kinds, in file order within a kind.
  std::map<std::string, std::vector<size_t>> by_kind;
  for (size_t i = 0; i < all.size(); ++i) by_kind[all[i].kind].push_back(i);
  std::vector<EvalExample> picked;
  for (size_t round = 0; int64_t(picked.size()) < max_examples; ++round)
    for (auto& [_, idx] : by_kind)
      if (round < idx.size() && int64_t(picked.size()) < max_examples) picked.push_back(all[idx[round]]);
  return picked;
}

EvalReport run_generation_eval(rt::NemotronH& model, const rt::Tokenizer& tok, const std::vector<EvalExample>& examples,
                               int64_t max_new_tokens) {
  EvalReport report;
  if (examples.empty()) return report;
  rt::SamplingOptions so;
  so.max_new_tokens = max_new_tokens;
  so.temperature = 0.0f;  // greedy
  if (auto end = tok.token_to_id("<|im_end|>")) so.stop_tokens.push_back(*end);
  std::vector<std::vector<int32_t>> prompts;
  std::vector<rt::PromptEmbeddings> embeds(examples.size());
  bool any_media = false;
  for (size_t i = 0; i < examples.size(); ++i) {
    prompts.push_back(examples[i].prompt);
    for (const rt::MediaInput& in : examples[i].media) {
      std::vector<float> tokens = model.encode(in);
      embeds[i].positions.insert(embeds[i].positions.end(), in.positions.begin(), in.positions.end());
      embeds[i].values.insert(embeds[i].values.end(), tokens.begin(), tokens.end());
      any_media = true;
    }
  }
  auto outputs = any_media ? rt::generate(model, prompts, so, embeds) : rt::generate(model, prompts, so);
  for (size_t i = 0; i < examples.size(); ++i) {
    EvalAnswer a;
    a.example = &examples[i];
    // A model may have more rows than its tokenizer has ids (a padded vocab): such an id ends
    // the answer as text the tokenizer cannot write, which is never an expected answer.
    std::vector<int32_t> known;
    for (int32_t id : outputs[i]) {
      if (!tok.id_to_token(id)) break;
      known.push_back(id);
    }
    a.answer = answer_text(tok.decode(known));
    a.correct = examples[i].prefix ? a.answer.rfind(examples[i].expected, 0) == 0 : a.answer == examples[i].expected;
    auto& c = report.per_kind[examples[i].kind];
    c.first += a.correct;
    c.second += 1;
    report.answers.push_back(std::move(a));
  }
  return report;
}

}  // namespace nemokit::sft
