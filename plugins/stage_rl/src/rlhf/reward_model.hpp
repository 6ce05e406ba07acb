#pragma once
// A reward model: the Nemotron-H backbone with a scalar head, r(x) = score . h_last, where
// h_last is the final-norm hidden state of the sequence's last token (as transformers'
// sequence-classification heads read it). Saved in the Hugging Face layout with the head as
// score.weight [1, hidden] beside the backbone's tensors and config.json naming
// NemotronHForSequenceClassification with num_labels = 1.

#include "nemokit/runtime/model.hpp"
#include "nemokit/runtime/optim.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

namespace nemokit::rl {

class RewardModel {
 public:
  // The backbone of a causal LM checkpoint (its LM head stays, unused) and a new head drawn
  // from normal(0, initializer_range) with `seed`.
  static RewardModel from_language_model(const std::filesystem::path& dir, uint64_t seed);
  // A folder written by save(); throws naming the folder when it holds no score.weight.
  static RewardModel load(const std::filesystem::path& dir);
  static bool is_reward_model(const std::filesystem::path& dir);  // config.json says so
  void save(const std::filesystem::path& dir);

  rt::NemotronH& backbone() { return *backbone_; }
  rt::Parameter& head() { return *head_; }
  std::vector<rt::Parameter*> parameters();  // the backbone's, then score.weight

  // Scores of token sequences (each non-empty), in micro-batches of `micro` rows; no gradient.
  std::vector<double> score(const std::vector<std::vector<int32_t>>& seqs, int64_t micro);

  // One forward over the rows, scores out; then backward of d objective / d score per row
  // (add_gradient). The two must alternate; gradients add into parameters' grads.
  std::vector<double> forward(const std::vector<std::vector<int32_t>>& seqs, bool training);
  void add_gradient(const std::vector<double>& d_scores);

 private:
  RewardModel() = default;
  std::unique_ptr<rt::NemotronH> backbone_;
  std::unique_ptr<rt::Parameter> head_;
  std::vector<int64_t> last_;   // row-major index of each row's last token in the last forward
  std::vector<float> h_last_;   // their hidden states [rows, hidden]
  int64_t rows_ = 0;            // batch*seq of the last forward
};

}  // namespace nemokit::rl
