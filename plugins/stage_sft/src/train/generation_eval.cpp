#include "train/generation_eval.hpp"

#include "chat/chat_template.hpp"
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
                                            int64_t max_examples) {
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
    EvalExample ex;
    ex.kind = text("kind");
    ex.expected = text("expected");
    std::string match = r.contains("match") ? text("match") : "exact";
    if (match != "exact" && match != "prefix") throw std::invalid_argument(where + ": \"match\" must be \"exact\" or \"prefix\"");
    ex.prefix = match == "prefix";
    nlohmann::ordered_json conversation = {{"messages", r.contains("messages") ? r["messages"] : nlohmann::ordered_json()}};
    auto segments = render_chat(conversation, RenderOptions{enable_thinking, true}, where);
    ex.prompt = tokenize_chat(tok, segments).ids;
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
  for (const auto& ex : examples) prompts.push_back(ex.prompt);
  auto outputs = rt::generate(model, prompts, so);
  for (size_t i = 0; i < examples.size(); ++i) {
    EvalAnswer a;
    a.example = &examples[i];
    a.answer = answer_text(tok.decode(outputs[i]));
    a.correct = examples[i].prefix ? a.answer.rfind(examples[i].expected, 0) == 0 : a.answer == examples[i].expected;
    auto& c = report.per_kind[examples[i].kind];
    c.first += a.correct;
    c.second += 1;
    report.answers.push_back(std::move(a));
  }
  return report;
}

}  // namespace nemokit::sft
