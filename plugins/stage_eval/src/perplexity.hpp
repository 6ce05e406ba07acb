#pragma once
// Perplexity on held-out text: the mean token cross-entropy of each model over the windows of a
// prepared pretraining blend's split (the split pretraining never trained on: "test"), computed
// as pretraining computes its validation loss (rt::heldout_loss).

#include "eval_options.hpp"
#include "results.hpp"

#include "nemokit/runtime/model.hpp"
#include "nemokit/runtime/tokenizer.hpp"

#include <filesystem>
#include <optional>
#include <vector>

namespace nemokit::eval {

class PerplexitySuite {
 public:
  // Checks the data folder (blend.json, the split, its tokenizer) now, before any model loads;
  // errors name perplexity.data and the path.
  explicit PerplexitySuite(const PerplexityOptions& o);
  // The rows for one model; throws std::invalid_argument when the model's tokenizer gives the
  // data's ids other tokens (naming both tokenizer files).
  std::vector<Row> run(rt::NemotronH& model, const rt::Tokenizer& tok, const std::filesystem::path& tok_path) const;

 private:
  PerplexityOptions o_;
  std::filesystem::path blend_, tokenizer_path_;
  std::optional<rt::Tokenizer> tokenizer_;  // the data's
};

// Throws std::invalid_argument unless every id of `data` is the same token in `model` (a model
// may add tokens after them, as omni3 adds its media tokens).
void check_same_ids(const rt::Tokenizer& data, const std::filesystem::path& data_path, const rt::Tokenizer& model,
                    const std::filesystem::path& model_path);

}  // namespace nemokit::eval
