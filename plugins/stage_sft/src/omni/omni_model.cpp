#include "omni/omni_model.hpp"

#include "omni/media_items.hpp"

#include <algorithm>
#include <stdexcept>

namespace nemokit::sft {

std::unique_ptr<rt::NemotronH> resize_vocab(rt::NemotronH& model, int64_t vocab) {
  if (model.has_lora()) throw std::logic_error("resize_vocab: merge the LoRA adapters first");
  rt::NemotronHConfig c = model.config();
  const int64_t old = c.vocab_size, d = c.hidden_size;
  c.vocab_size = vocab;
  auto grown = std::make_unique<rt::NemotronH>(c, model.expert_comm(), model.expert_parallel());  // the same experts here
  for (rt::Parameter* p : grown->parameters()) {
    const rt::Parameter* src = model.find(p->name);
    if (!src) throw std::logic_error("resize_vocab: no parameter " + p->name + " in the model");
    if (p->name != "backbone.embeddings.weight" && p->name != "lm_head.weight") {
      std::copy_n(src->value.f32(), src->value.numel(), p->value.f32());
      continue;
    }
    const int64_t keep = std::min(old, vocab);
    std::copy_n(src->value.f32(), keep * d, p->value.f32());
    std::vector<double> mean(d, 0.0);
    for (int64_t r = 0; r < old; ++r)
      for (int64_t j = 0; j < d; ++j) mean[j] += src->value.f32()[r * d + j];
    for (int64_t r = keep; r < vocab; ++r)
      for (int64_t j = 0; j < d; ++j) p->value.f32()[r * d + j] = float(mean[j] / double(old));
  }
  return grown;
}

int prepare_omni_model(std::unique_ptr<rt::NemotronH>& model, rt::Tokenizer& tok, const MediaOptions& media, uint64_t seed) {
  if (!media.enabled()) return 0;
  tok = with_media_tokens(tok);
  if (tok.vocab_size() > model->config().vocab_size) model = resize_vocab(*model, tok.vocab_size());
  int added = 0;
  for (const auto* want : {&media.vision, &media.audio}) {
    if (!*want) continue;
    rt::EncoderConfig c = **want;
    c.output_size = model->config().hidden_size;
    if (model->has_encoder(c.modality)) {
      if (model->encoder_config(c.modality).to_json() != c.to_json())
        throw std::invalid_argument(std::string("model.") + rt::modality_name(c.modality) + ": the checkpoint's " +
                                    rt::modality_name(c.modality) + " encoder is " +
                                    model->encoder_config(c.modality).to_json().dump() + ", the config asks for " +
                                    c.to_json().dump());
      continue;
    }
    model->add_encoder(c, seed + 17 * uint64_t(c.modality == rt::Modality::audio));
    ++added;
  }
  return added;
}

}  // namespace nemokit::sft
