#include "rlhf/reward_model.hpp"

#include "nemokit/runtime/atomic_file.hpp"
#include "nemokit/runtime/checkpoint.hpp"
#include "nemokit/runtime/rng.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <stdexcept>

namespace nemokit::rl {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kHead = "score.weight";
constexpr const char* kArchitecture = "NemotronHForSequenceClassification";

std::unique_ptr<rt::Parameter> new_head(int64_t hidden) {
  auto p = std::make_unique<rt::Parameter>();
  p->name = kHead;
  p->value = rt::Tensor::zeros({1, hidden});
  p->grad = rt::Tensor::zeros({1, hidden});
  return p;
}

json read_config(const fs::path& dir) {
  std::ifstream in(dir / "config.json");
  if (!in) throw std::runtime_error((dir / "config.json").string() + ": cannot open");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw std::runtime_error((dir / "config.json").string() + ": not valid JSON: " + e.what());
  }
}

}  // namespace

RewardModel RewardModel::from_language_model(const fs::path& dir, uint64_t seed) {
  RewardModel rm;
  rm.backbone_ = rt::load_pretrained(dir.string());
  const auto& c = rm.backbone_->config();
  rm.head_ = new_head(c.hidden_size);
  rt::Rng rng(seed);
  float* w = rm.head_->value.f32();
  for (int64_t i = 0; i < c.hidden_size; ++i) w[i] = c.initializer_range * rng.normal();
  return rm;
}

bool RewardModel::is_reward_model(const fs::path& dir) {
  if (!fs::exists(dir / "config.json")) return false;
  const json c = read_config(dir);
  return c.contains("architectures") && c["architectures"].is_array() && c["architectures"].size() == 1 &&
         c["architectures"][0] == kArchitecture;
}

RewardModel RewardModel::load(const fs::path& dir) {
  if (!is_reward_model(dir))
    throw std::invalid_argument((dir / "config.json").string() + ": not a reward model (architectures must be [\"" +
                                kArchitecture + "\"])");
  RewardModel rm;
  rm.backbone_ = std::make_unique<rt::NemotronH>(rt::NemotronHConfig::load((dir / "config.json").string()));
  std::vector<rt::NamedTensor> extra = rt::load_weights(*rm.backbone_, dir.string(), {kHead});
  const int64_t d = rm.backbone_->config().hidden_size;
  if (extra[0].second.shape() != std::vector<int64_t>{1, d})
    throw std::runtime_error(dir.string() + ": tensor '" + kHead + "' has shape " + extra[0].second.shape_string() +
                             ", expected [1, " + std::to_string(d) + "]");
  rm.head_ = new_head(d);
  std::copy_n(extra[0].second.f32(), d, rm.head_->value.f32());
  return rm;
}

void RewardModel::save(const fs::path& dir) {
  rt::save_pretrained(*backbone_, dir.string(), rt::kDefaultShardBytes, rt::DType::f32, {{kHead, head_->value}});
  // The head's config keys, as transformers writes them for a one-label sequence classifier.
  json c = read_config(dir);
  c["architectures"] = json::array({kArchitecture});
  c["num_labels"] = 1;
  c["id2label"] = {{"0", "LABEL_0"}};
  c["label2id"] = {{"LABEL_0", 0}};
  rt::write_file_atomic((dir / "config.json").string(), c.dump(2) + "\n");
}

std::vector<rt::Parameter*> RewardModel::parameters() {
  std::vector<rt::Parameter*> out = backbone_->parameters();
  out.push_back(head_.get());
  return out;
}

std::vector<double> RewardModel::forward(const std::vector<std::vector<int32_t>>& seqs, bool training) {
  rt::Batch b;
  b.batch = int64_t(seqs.size());
  for (const auto& s : seqs) {
    if (s.empty()) throw std::invalid_argument("reward model: an empty sequence has no last token to score");
    b.seq = std::max<int64_t>(b.seq, int64_t(s.size()));
  }
  b.input_ids.assign(size_t(b.batch * b.seq), 0);
  b.pad.assign(b.input_ids.size(), 1);
  last_.clear();
  for (size_t r = 0; r < seqs.size(); ++r) {
    std::copy(seqs[r].begin(), seqs[r].end(), b.input_ids.begin() + long(r * size_t(b.seq)));
    std::fill_n(b.pad.begin() + long(r * size_t(b.seq)), seqs[r].size(), uint8_t(0));
    // The model is causal, so the right padding after it cannot change this position.
    last_.push_back(int64_t(r) * b.seq + int64_t(seqs[r].size()) - 1);
  }
  const std::vector<float>& h = backbone_->forward_hidden(b, training);
  const int64_t d = backbone_->config().hidden_size;
  const float* w = head_->value.f32();
  rows_ = b.batch * b.seq;
  h_last_.resize(last_.size() * size_t(d));
  std::vector<double> out;
  for (size_t j = 0; j < last_.size(); ++j) {
    double r = 0;
    for (int64_t i = 0; i < d; ++i) {
      const float x = h[size_t(last_[j] * d + i)];
      h_last_[j * size_t(d) + size_t(i)] = x;  // for the head's gradient
      r += double(w[i]) * x;
    }
    out.push_back(r);
  }
  return out;
}

void RewardModel::add_gradient(const std::vector<double>& d_scores) {
  if (d_scores.size() != last_.size()) throw std::logic_error("reward model: one gradient per scored row is needed");
  const int64_t d = backbone_->config().hidden_size;
  const float* w = head_->value.f32();
  float* dw = head_->grad.f32();
  std::vector<float> grad_hidden(size_t(rows_ * d), 0.0f);
  for (size_t j = 0; j < last_.size(); ++j) {
    const float g = float(d_scores[j]);
    for (int64_t i = 0; i < d; ++i) {
      grad_hidden[size_t(last_[j] * d + i)] = g * w[i];
      dw[i] += g * h_last_[j * size_t(d) + size_t(i)];
    }
  }
  backbone_->backward_hidden(grad_hidden.data());
}

std::vector<double> RewardModel::score(const std::vector<std::vector<int32_t>>& seqs, int64_t micro) {
  std::vector<double> out;
  const size_t step = size_t(std::max<int64_t>(1, micro));
  for (size_t b = 0; b < seqs.size(); b += step) {
    std::vector<std::vector<int32_t>> part(seqs.begin() + long(b), seqs.begin() + long(std::min(seqs.size(), b + step)));
    for (double r : forward(part, false)) out.push_back(r);
  }
  return out;
}

}  // namespace nemokit::rl
