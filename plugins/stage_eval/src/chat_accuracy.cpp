#include "chat_accuracy.hpp"

#include "omni/media_options.hpp"
#include "train/generation_eval.hpp"

#include <filesystem>
#include <stdexcept>

namespace nemokit::eval {

std::vector<Row> chat_accuracy(rt::NemotronH& model, const rt::Tokenizer& tok, const ChatOptions& o, const nlohmann::json& media) {
  if (!std::filesystem::exists(o.file)) throw std::invalid_argument("chats.file: " + o.file.string() + " does not exist");
  const sft::MediaOptions mo = sft::MediaOptions::for_model({{"data", {{"media", media}}}}, model);
  const std::vector<sft::EvalExample> examples =
      sft::load_eval_examples(o.file, tok, o.enable_thinking, o.max_examples, mo.enabled() ? &mo : nullptr, !mo.enabled());
  if (examples.empty()) return {};
  const sft::EvalReport r = sft::run_generation_eval(model, tok, examples, o.max_new_tokens);
  std::vector<Row> rows = {{"chats/all", "chats: exact match", r.accuracy(), int64_t(examples.size()), "items", 3}};
  for (const auto& [kind, c] : r.per_kind)
    rows.push_back({"chats/" + kind, "  " + kind, c.second ? double(c.first) / double(c.second) : 0.0, c.second, "items", 3});
  return rows;
}

}  // namespace nemokit::eval
