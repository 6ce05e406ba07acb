#pragma once
// What an omni3 run reads images, video and audio with, from its config:
//   [model.vision], [model.audio]  the encoders (EncoderConfig keys; output_size is the LM's)
//   [data.media]                   max_tiles, thumbnail, video_fps, video_max_frames,
//                                  evs_threshold, sample_rate
// Data prep and training share it: prep turns files into tiles and log-mel frames and sizes the
// placeholders from the encoders' token counts.

#include "nemokit/runtime/encoder.hpp"
#include "nemokit/runtime/model.hpp"
#include "nemokit/runtime/media/audio.hpp"
#include "nemokit/runtime/media/image.hpp"

#include <nlohmann/json.hpp>

#include <optional>

namespace nemokit::sft {

struct MediaOptions {
  std::optional<rt::EncoderConfig> vision, audio;  // output_size 0 until the LM is known
  rt::media::TileOptions tiles;                     // tile_size = vision.image_size
  rt::media::VideoOptions video;
  rt::media::LogMelOptions mel;                     // n_mels = audio.num_mel_bins

  bool enabled() const { return vision || audio; }
  // Throws std::invalid_argument naming the key.
  static MediaOptions from_config(const nlohmann::json& config);
  // [data.media] with the encoders `model` has (a trained omni model's, whatever the config says).
  static MediaOptions for_model(const nlohmann::json& config, const rt::NemotronH& model);
  nlohmann::json to_json() const;  // recorded in the data artifact's metadata
};

}  // namespace nemokit::sft
