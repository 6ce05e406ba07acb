// The omni half of NemotronH: encoders attached to the language model, their tokens put into
// the input embeddings at the batch's media positions, and the gradient taken back out there.
#include <cstring>
#include <stdexcept>

#include "encoder.hpp"
#include "nemokit/runtime/model.hpp"

namespace nemokit::rt {

detail::Encoder* NemotronH::encoder_for(Modality m) const {
  for (auto& e : encoders_)
    if (e->config().modality == m) return e.get();
  return nullptr;
}

bool NemotronH::has_encoder(Modality m) const { return encoder_for(m) != nullptr; }

const EncoderConfig& NemotronH::encoder_config(Modality m) const {
  if (auto* e = encoder_for(m)) return e->config();
  throw std::logic_error(std::string("the model has no ") + modality_name(m) + " encoder");
}

void NemotronH::add_encoder(EncoderConfig config, uint64_t seed) {
  const std::string name = modality_name(config.modality);
  if (lora_) throw std::logic_error("add_encoder: add the " + name + " encoder before the LoRA adapters");
  if (has_encoder(config.modality)) throw std::logic_error("add_encoder: the model already has a " + name + " encoder");
  if (config.output_size == 0) config.output_size = config_.hidden_size;
  if (config.output_size != config_.hidden_size)
    throw std::invalid_argument(name + "_config: output_size " + std::to_string(config.output_size) +
                                " differs from the language model's hidden_size " + std::to_string(config_.hidden_size));
  detail::ParamFactory add = [this](const std::string& n, std::vector<int64_t> s, bool decay) {
    return add_param(n, std::move(s), decay);
  };
  encoders_.push_back(std::make_unique<detail::Encoder>(config, add));
  Rng rng(seed);
  encoders_.back()->init(rng);
  config_.extra[name + "_config"] = config.to_json();
}

std::vector<float> NemotronH::encode(const MediaInput& input) {
  detail::Encoder* e = encoder_for(input.modality);
  if (!e) throw std::invalid_argument(std::string("the model has no ") + modality_name(input.modality) + " encoder");
  return e->forward(input, false);
}

void NemotronH::media_forward(bool training) {
  const int64_t d = config_.hidden_size;
  for (const MediaInput& m : batch_.media) {
    detail::Encoder* e = encoder_for(m.modality);
    if (!e) throw std::invalid_argument(std::string("batch: a ") + modality_name(m.modality) +
                                        " input, but the model has no such encoder");
    const std::vector<float>& tokens = e->forward(m, training);
    if (int64_t(tokens.size()) != int64_t(m.positions.size()) * d)
      throw std::invalid_argument(std::string("batch: the ") + modality_name(m.modality) + " encoder made " +
                                  std::to_string(tokens.size() / d) + " tokens for " +
                                  std::to_string(m.positions.size()) + " media positions");
    for (size_t j = 0; j < m.positions.size(); ++j)
      std::memcpy(residual_[0].data() + m.positions[j] * d, tokens.data() + j * d, sizeof(float) * d);
  }
}

void NemotronH::media_backward(std::vector<float>& grad_embedded) {
  const int64_t d = config_.hidden_size;
  std::vector<float> grad_tokens;
  for (const MediaInput& m : batch_.media) {
    grad_tokens.resize(m.positions.size() * d);
    for (size_t j = 0; j < m.positions.size(); ++j) {
      float* row = grad_embedded.data() + m.positions[j] * d;
      std::memcpy(grad_tokens.data() + j * d, row, sizeof(float) * d);
      std::memset(row, 0, sizeof(float) * d);  // the placeholder's own embedding was not used
    }
    encoder_for(m.modality)->backward(grad_tokens.data());
  }
}

}  // namespace nemokit::rt
