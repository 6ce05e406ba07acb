// EncoderConfig: the "vision_config" / "audio_config" entries of an omni model's config.json.
#include <set>
#include <stdexcept>

#include "nemokit/runtime/encoder.hpp"

namespace nemokit::rt {
using json = nlohmann::json;

const char* modality_name(Modality m) { return m == Modality::vision ? "vision" : "audio"; }

int64_t EncoderConfig::input_features() const {
  return modality == Modality::vision ? num_channels * patch_size * patch_size : num_mel_bins;
}

int64_t EncoderConfig::positions(int64_t frames) const {
  if (modality == Modality::vision) return patches_per_side() * patches_per_side();
  const int64_t after_first = (frames + 1) / 2;  // stride 2, padding 1, kernel 3
  return (after_first + 1) / 2;
}

int64_t EncoderConfig::output_tokens(int64_t frames) const {
  if (modality == Modality::vision) return positions() / (downsample * downsample);
  return positions(frames);
}

json EncoderConfig::to_json() const {
  json j = {{"hidden_size", hidden_size},
            {"num_hidden_layers", num_hidden_layers},
            {"num_attention_heads", num_attention_heads},
            {"intermediate_size", intermediate_size},
            {"max_position_embeddings", max_position_embeddings},
            {"layer_norm_epsilon", layer_norm_epsilon},
            {"initializer_range", initializer_range},
            {"projector_hidden_size", projector_hidden_size},
            {"output_size", output_size}};
  if (modality == Modality::vision) {
    j["image_size"] = image_size;
    j["patch_size"] = patch_size;
    j["num_channels"] = num_channels;
    j["downsample"] = downsample;
  } else {
    j["num_mel_bins"] = num_mel_bins;
  }
  return j;
}

namespace {

template <class T>
void read(const json& j, const std::string& where, const char* key, T& out) {
  if (!j.contains(key)) return;
  try {
    out = j.at(key).get<T>();
  } catch (const json::exception&) {
    throw std::runtime_error(where + ": key '" + key + "' has the wrong type (" + j.at(key).dump() + ")");
  }
}

}  // namespace

EncoderConfig EncoderConfig::from_json(const json& j, Modality m, const std::string& where) {
  if (!j.is_object()) throw std::runtime_error(where + ": expected a JSON object");
  EncoderConfig c;
  c.modality = m;
  std::set<std::string> known = {"hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                                 "max_position_embeddings", "layer_norm_epsilon", "initializer_range",
                                 "projector_hidden_size", "output_size"};
  if (m == Modality::vision) known.insert({"image_size", "patch_size", "num_channels", "downsample"});
  else known.insert("num_mel_bins");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.count(it.key())) throw std::runtime_error(where + ": unknown key '" + it.key() + "'");
  read(j, where, "hidden_size", c.hidden_size);
  read(j, where, "num_hidden_layers", c.num_hidden_layers);
  read(j, where, "num_attention_heads", c.num_attention_heads);
  read(j, where, "intermediate_size", c.intermediate_size);
  read(j, where, "max_position_embeddings", c.max_position_embeddings);
  read(j, where, "layer_norm_epsilon", c.layer_norm_epsilon);
  read(j, where, "initializer_range", c.initializer_range);
  read(j, where, "projector_hidden_size", c.projector_hidden_size);
  read(j, where, "output_size", c.output_size);
  read(j, where, "image_size", c.image_size);
  read(j, where, "patch_size", c.patch_size);
  read(j, where, "num_channels", c.num_channels);
  read(j, where, "downsample", c.downsample);
  read(j, where, "num_mel_bins", c.num_mel_bins);
  c.validate(where);
  return c;
}

void EncoderConfig::validate(const std::string& where) const {
  auto need = [&](bool ok, const char* key, const std::string& why) {
    if (!ok) throw std::runtime_error(where + ": " + key + " " + why);
  };
  need(hidden_size > 0, "hidden_size", "must be positive");
  need(num_hidden_layers >= 0, "num_hidden_layers", "must not be negative");
  need(num_attention_heads > 0 && hidden_size % num_attention_heads == 0, "num_attention_heads",
       "must divide hidden_size (" + std::to_string(hidden_size) + ")");
  need(intermediate_size > 0, "intermediate_size", "must be positive");
  need(projector_hidden_size > 0, "projector_hidden_size", "must be positive");
  need(output_size > 0, "output_size", "must be positive (the language model's hidden size)");
  need(layer_norm_epsilon > 0, "layer_norm_epsilon", "must be positive");
  if (modality == Modality::vision) {
    need(num_channels > 0, "num_channels", "must be positive");
    need(patch_size > 0 && image_size > 0 && image_size % patch_size == 0, "patch_size",
         "must divide image_size (" + std::to_string(image_size) + ")");
    need(downsample > 0 && patches_per_side() % downsample == 0, "downsample",
         "must divide the patches per side (" + std::to_string(patches_per_side()) + ")");
    need(max_position_embeddings >= positions(), "max_position_embeddings",
         "must cover the " + std::to_string(positions()) + " patches of a tile");
  } else {
    need(num_mel_bins > 0, "num_mel_bins", "must be positive");
    need(max_position_embeddings > 0, "max_position_embeddings", "must be positive");
  }
}

}  // namespace nemokit::rt
