#include "perplexity.hpp"

#include "nemokit/runtime/data/gpt_dataset.hpp"
#include "nemokit/runtime/json_file.hpp"
#include "nemokit/runtime/run/heldout_loss.hpp"

#include <stdexcept>

namespace nemokit::eval {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void bad(const std::string& what) { throw std::invalid_argument("perplexity.data: " + what); }

}  // namespace

void check_same_ids(const rt::Tokenizer& data, const fs::path& data_path, const rt::Tokenizer& model, const fs::path& model_path) {
  const std::string why = "the data was tokenized with " + data_path.string() + ", the model's tokenizer is " + model_path.string();
  if (model.vocab_size() < data.vocab_size())
    throw std::invalid_argument("tokenizer mismatch: " + why + " (" + std::to_string(data.vocab_size()) + " ids there, " +
                                std::to_string(model.vocab_size()) + " here)");
  for (int32_t id = 0; id < data.vocab_size(); ++id)
    if (data.id_to_token(id) != model.id_to_token(id))
      throw std::invalid_argument("tokenizer mismatch: " + why + " (id " + std::to_string(id) + " is \"" +
                                  data.id_to_token(id).value_or("") + "\" there, \"" + model.id_to_token(id).value_or("") + "\" here)");
}

PerplexitySuite::PerplexitySuite(const PerplexityOptions& o) : o_(o) {
  if (!fs::is_directory(o_.data)) bad(o_.data.string() + " does not exist (prepare it: nemokit data prep FAMILY pretrain)");
  blend_ = o_.data / "blend.json";
  if (!fs::exists(blend_)) bad(blend_.string() + " does not exist: " + o_.data.string() + " is not prepared pretraining data");
  rt::read_blend_split(blend_, o_.split);  // the split must be there
  // Data prep writes metadata.json: the window length and the tokenizer (DATA/tokenizer.json when
  // it trained one, else the file it was given).
  const fs::path meta_file = o_.data / "metadata.json";
  if (!fs::exists(meta_file)) bad(meta_file.string() + " does not exist: " + o_.data.string() + " is not prepared pretraining data");
  const nlohmann::json meta = rt::read_json_file(meta_file);
  if (o_.seq_length == 0) {
    o_.seq_length = meta.value("seq_length", int64_t(0));
    if (o_.seq_length <= 0) bad(meta_file.string() + " names no seq_length: set perplexity.seq_length");
  }
  tokenizer_path_ = o_.data / "tokenizer.json";
  if (!fs::exists(tokenizer_path_) && meta.contains("tokenizer") && meta["tokenizer"].is_object())
    tokenizer_path_ = meta["tokenizer"].value("path", "");
  if (tokenizer_path_.empty() || !fs::exists(tokenizer_path_))
    bad("the data's tokenizer (" + (tokenizer_path_.empty() ? meta_file.string() + " names none" : tokenizer_path_.string() + " does not exist") +
        ") is needed to check that the models read its ids as it wrote them");
  tokenizer_.emplace(rt::Tokenizer::load(tokenizer_path_));
}

std::vector<Row> PerplexitySuite::run(rt::NemotronH& model, const rt::Tokenizer& tok, const fs::path& tok_path) const {
  check_same_ids(*tokenizer_, tokenizer_path_, tok, tok_path);
  if (tokenizer_->vocab_size() > model.config().vocab_size)
    throw std::invalid_argument(tokenizer_path_.string() + ": " + std::to_string(tokenizer_->vocab_size()) +
                                " ids do not fit the model's vocab_size " + std::to_string(model.config().vocab_size));
  rt::HeldOutLoss l = rt::heldout_loss(model, {blend_, o_.split, o_.seq_length, o_.seed, o_.micro_batch_size, o_.max_windows});
  const std::string key = "perplexity/" + o_.split;
  return {{key, "perplexity, " + o_.split + " split", l.perplexity(), l.tokens, "tokens", 3},
          {key + "/loss", "  loss, nats per token", l.mean(), l.tokens, "tokens", 4}};
}

}  // namespace nemokit::eval
