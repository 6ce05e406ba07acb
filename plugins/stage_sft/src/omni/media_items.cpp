#include "omni/media_items.hpp"

#include "omni/media_batch.hpp"

#include <cmath>
#include <stdexcept>

namespace nemokit::sft {
namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

rt::Tokenizer with_media_tokens(const rt::Tokenizer& tok) {
  json j = json::parse(tok.to_json());
  int32_t next = tok.vocab_size();
  bool added = false;
  for (const char* name : {kImageToken, kVideoToken, kAudioToken}) {
    if (tok.token_to_id(name)) continue;
    j["added_tokens"].push_back({{"id", next++}, {"content", name}, {"single_word", false}, {"lstrip", false},
                                 {"rstrip", false}, {"normalized", false}, {"special", true}});
    added = true;
  }
  return added ? rt::Tokenizer::from_json(j.dump(), "tokenizer with media tokens") : tok;
}

namespace {

std::vector<uint8_t> to_bytes(const rt::media::Tiles& t, const rt::media::TileOptions& o) {
  const int64_t S = t.tile_size, plane = S * S;
  std::vector<uint8_t> out(t.pixels.size());
  for (int64_t i = 0; i < int64_t(out.size()); ++i) {
    const int c = int((i / plane) % 3);
    const float v = (t.pixels[i] * o.std[c] + o.mean[c]) * 255.0f;
    out[i] = uint8_t(std::lround(std::clamp(v, 0.0f, 255.0f)));
  }
  return out;
}

const ordered_json& list_of(const ordered_json& record, const char* key, const std::string& where) {
  static const ordered_json empty = ordered_json::array();
  if (!record.contains(key)) return empty;
  if (!record[key].is_array()) throw std::invalid_argument(where + ": \"" + key + "\" must be a list");
  return record[key];
}

}  // namespace

std::vector<float> tile_pixels(const uint8_t* tiles, int64_t count, int64_t size, const rt::media::TileOptions& o) {
  const int64_t plane = size * size;
  std::vector<float> out(count * 3 * plane);
  for (int64_t i = 0; i < int64_t(out.size()); ++i) {
    const int c = int((i / plane) % 3);
    out[i] = (float(tiles[i]) / 255.0f - o.mean[c]) / o.std[c];
  }
  return out;
}

std::vector<MediaItem> load_media(const ordered_json& record, const fs::path& base, const MediaOptions& o,
                                  const std::string& where) {
  std::vector<MediaItem> items;
  const auto& images = list_of(record, "images", where);
  const auto& videos = list_of(record, "videos", where);
  const auto& audios = list_of(record, "audios", where);
  if ((!images.empty() || !videos.empty()) && !o.vision)
    throw std::invalid_argument(where + ": the record has images or videos but the config has no [model.vision]");
  if (!audios.empty() && !o.audio)
    throw std::invalid_argument(where + ": the record has audio but the config has no [model.audio]");
  try {
    for (const auto& v : images) {
      if (!v.is_string()) throw std::invalid_argument(where + ": \"images\" entries must be paths");
      const fs::path file = resolve_media_path(base, v.get<std::string>(), where);
      rt::media::Tiles t = rt::media::tile_image(rt::media::read_image(file), o.tiles);
      MediaItem m;
      m.count = t.count;
      m.tokens = t.count * o.vision->output_tokens();
      m.tiles = to_bytes(t, o.tiles);
      items.push_back(std::move(m));
    }
    for (const auto& v : videos) {
      if (!v.is_object() || !v.contains("frames") || !v["frames"].is_array() || v["frames"].empty())
        throw std::invalid_argument(where + ": a \"videos\" entry must be {\"frames\": [paths...], \"fps\": N}");
      std::vector<fs::path> frames;
      for (const auto& f : v["frames"]) {
        if (!f.is_string()) throw std::invalid_argument(where + ": video frames must be paths");
        frames.push_back(resolve_media_path(base, f.get<std::string>(), where));
      }
      const double fps = v.contains("fps") && v["fps"].is_number() ? v["fps"].get<double>() : o.video.fps;
      if (fps <= 0) throw std::invalid_argument(where + ": a video's fps must be positive");
      rt::media::Tiles t = rt::media::video_tiles(frames, fps, o.video, o.tiles);
      MediaItem m;
      m.placeholder = kVideoToken;
      m.count = t.count;
      m.tokens = t.count * o.vision->output_tokens();
      m.tiles = to_bytes(t, o.tiles);
      items.push_back(std::move(m));
    }
    for (const auto& v : audios) {
      if (!v.is_string()) throw std::invalid_argument(where + ": \"audios\" entries must be paths");
      const fs::path file = resolve_media_path(base, v.get<std::string>(), where);
      rt::media::Waveform w = rt::media::read_wav(file);
      std::vector<float> samples = rt::media::resample(w.samples, w.sample_rate, o.mel.sample_rate);
      int64_t frames = 0;
      std::vector<float> mel = rt::media::log_mel(samples, o.mel, &frames);
      const int64_t M = o.mel.n_mels;
      if (frames < 1) throw std::invalid_argument(where + ": " + file.string() + " is too short for one frame");
      // per mel bin over the clip: zero mean, unit variance (what the encoder was built to read)
      for (int64_t b = 0; b < M; ++b) {
        double mean = 0, var = 0;
        for (int64_t t = 0; t < frames; ++t) mean += mel[t * M + b];
        mean /= double(frames);
        for (int64_t t = 0; t < frames; ++t) var += (mel[t * M + b] - mean) * (mel[t * M + b] - mean);
        const double inv = 1.0 / (std::sqrt(var / double(frames)) + 1e-5);
        for (int64_t t = 0; t < frames; ++t) mel[t * M + b] = float((mel[t * M + b] - mean) * inv);
      }
      MediaItem m;
      m.modality = rt::Modality::audio;
      m.placeholder = kAudioToken;
      m.count = frames;
      m.tokens = o.audio->output_tokens(frames);
      if (m.tokens > o.audio->max_position_embeddings)
        throw std::invalid_argument(where + ": " + file.string() + " makes " + std::to_string(m.tokens) +
                                    " audio tokens, more than model.audio.max_position_embeddings = " +
                                    std::to_string(o.audio->max_position_embeddings));
      m.frames = std::move(mel);
      items.push_back(std::move(m));
    }
  } catch (const std::runtime_error& e) {  // decoder errors name the file
    throw std::invalid_argument(where + ": " + e.what());
  }
  return items;
}

std::vector<rt::MediaInput> prompt_media(std::vector<int32_t>& ids, const json& record, const fs::path& base,
                                         const MediaOptions& options, const rt::Tokenizer& tok, const std::string& where) {
  if (!record.contains("images") && !record.contains("videos") && !record.contains("audios")) return {};
  const ordered_json r = ordered_json::parse(record.dump());
  std::vector<MediaItem> items = load_media(r, base, options, where);
  TokenizedChat chat{ids, std::vector<uint8_t>(ids.size(), 0)};
  std::vector<int64_t> at = expand_placeholders(chat, items, tok, where);
  ids = std::move(chat.ids);
  return media_inputs(items, at, options.vision ? options.vision->image_size : 0, options.audio ? options.audio->num_mel_bins : 0);
}

std::vector<int64_t> expand_placeholders(TokenizedChat& chat, const std::vector<MediaItem>& items, const rt::Tokenizer& tok,
                                         const std::string& where) {
  std::vector<int64_t> first(items.size(), -1);
  TokenizedChat out;
  size_t used[3] = {0, 0, 0};
  const char* names[3] = {kImageToken, kVideoToken, kAudioToken};
  int32_t ids[3];
  for (int k = 0; k < 3; ++k) ids[k] = tok.token_to_id(names[k]).value_or(-1);
  for (size_t i = 0; i < chat.ids.size(); ++i) {
    int kind = -1;
    for (int k = 0; k < 3; ++k)
      if (chat.ids[i] == ids[k]) kind = k;
    if (kind < 0) {
      out.ids.push_back(chat.ids[i]);
      out.trained.push_back(chat.trained[i]);
      continue;
    }
    // the used[kind]-th item with this placeholder
    size_t seen = 0, which = items.size();
    for (size_t j = 0; j < items.size(); ++j)
      if (items[j].placeholder == names[kind] && seen++ == used[kind]) {
        which = j;
        break;
      }
    if (which == items.size())
      throw std::invalid_argument(where + ": more " + names[kind] + " placeholders in the messages than files for them");
    if (chat.trained[i]) throw std::invalid_argument(where + ": a " + std::string(names[kind]) + " placeholder in an assistant turn");
    ++used[kind];
    first[which] = int64_t(out.ids.size());
    out.ids.insert(out.ids.end(), size_t(items[which].tokens), chat.ids[i]);
    out.trained.insert(out.trained.end(), size_t(items[which].tokens), 0);
  }
  for (size_t j = 0; j < items.size(); ++j)
    if (first[j] < 0)
      throw std::invalid_argument(where + ": " + std::to_string(items.size()) + " media files but not as many " +
                                  "placeholders (" + items[j].placeholder + ") in the messages");
  chat = std::move(out);
  return first;
}

}  // namespace nemokit::sft
