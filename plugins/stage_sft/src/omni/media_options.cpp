#include "omni/media_options.hpp"

#include <stdexcept>

namespace nemokit::sft {
using nlohmann::json;

namespace {

std::optional<rt::EncoderConfig> encoder_of(const json& config, rt::Modality m) {
  const char* key = rt::modality_name(m);
  if (!config.contains("model") || !config["model"].contains(key)) return std::nullopt;
  json j = config["model"][key];
  if (!j.contains("output_size")) j["output_size"] = 1;  // the LM's hidden size, set when the model is known
  try {
    return rt::EncoderConfig::from_json(j, m, std::string("model.") + key);
  } catch (const std::runtime_error& e) {
    throw std::invalid_argument(e.what());
  }
}

template <class T>
void read(const json& t, const char* key, T& out) {
  if (!t.contains(key)) return;
  try {
    out = t[key].get<T>();
  } catch (const json::exception&) {
    throw std::invalid_argument(std::string("data.media.") + key + ": wrong type (" + t[key].dump() + ")");
  }
}

}  // namespace

MediaOptions MediaOptions::from_config(const json& config) {
  MediaOptions o;
  o.vision = encoder_of(config, rt::Modality::vision);
  o.audio = encoder_of(config, rt::Modality::audio);
  if (o.vision) o.tiles.tile_size = int(o.vision->image_size);
  if (o.audio) o.mel.n_mels = int(o.audio->num_mel_bins);
  const json media = config.contains("data") && config["data"].contains("media") ? config["data"]["media"] : json::object();
  for (auto it = media.begin(); it != media.end(); ++it) {
    static const char* known[] = {"max_tiles", "thumbnail", "video_fps", "video_max_frames", "evs_threshold", "sample_rate"};
    if (std::find(std::begin(known), std::end(known), it.key()) == std::end(known))
      throw std::invalid_argument("data.media." + it.key() + ": unknown key");
  }
  read(media, "max_tiles", o.tiles.max_tiles);
  read(media, "thumbnail", o.tiles.thumbnail);
  read(media, "video_fps", o.video.fps);
  read(media, "video_max_frames", o.video.max_frames);
  read(media, "evs_threshold", o.video.evs_threshold);
  read(media, "sample_rate", o.mel.sample_rate);
  if (o.tiles.max_tiles < 1) throw std::invalid_argument("data.media.max_tiles: must be at least 1");
  if (o.video.fps <= 0) throw std::invalid_argument("data.media.video_fps: must be positive");
  if (o.video.max_frames < 1) throw std::invalid_argument("data.media.video_max_frames: must be at least 1");
  if (o.mel.sample_rate != 16000) {  // the 10 ms hop and 25 ms window follow the rate
    o.mel.hop_length = o.mel.sample_rate / 100;
    o.mel.n_fft = o.mel.win_length = o.mel.sample_rate / 40;
    o.mel.f_max = float(o.mel.sample_rate) / 2;
  }
  return o;
}

MediaOptions MediaOptions::for_model(const json& config, const rt::NemotronH& model) {
  MediaOptions o = from_config(config);
  o.vision.reset(), o.audio.reset();
  if (model.has_encoder(rt::Modality::vision)) {
    o.vision = model.encoder_config(rt::Modality::vision);
    o.tiles.tile_size = int(o.vision->image_size);
  }
  if (model.has_encoder(rt::Modality::audio)) {
    o.audio = model.encoder_config(rt::Modality::audio);
    o.mel.n_mels = int(o.audio->num_mel_bins);
  }
  return o;
}

json MediaOptions::to_json() const {
  json j = json::object();
  if (vision) j["vision"] = vision->to_json();
  if (audio) j["audio"] = audio->to_json();
  j["max_tiles"] = tiles.max_tiles;
  j["thumbnail"] = tiles.thumbnail;
  j["video_fps"] = video.fps;
  j["video_max_frames"] = video.max_frames;
  j["evs_threshold"] = video.evs_threshold;
  j["sample_rate"] = mel.sample_rate;
  return j;
}

}  // namespace nemokit::sft
