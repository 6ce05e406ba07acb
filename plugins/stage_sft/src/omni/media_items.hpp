#pragma once
// The images, videos and audio clips of one omni3 chat record, ready for the encoders:
//   {"messages": [{"role": "user", "content": "<image>\nWhat is in this image?"}, ...],
//    "images": ["images/a.png"], "videos": [{"frames": ["v/0.png", ...], "fps": 4}],
//    "audios": ["audio/w.wav"]}
// Paths are relative to the JSONL file's folder and may not leave it. An image becomes tiles
// (dynamic resolution, rt::media::tile_image), a video one tile per sampled frame (with
// efficient video sampling when configured), a clip log-mel frames normalized per mel bin.
// Each placeholder in the text (<image>, <video>, <audio>, in order) then stands for as many
// positions as the encoder makes tokens for its item.

#include "omni/media_paths.hpp"
#include "omni/media_options.hpp"
#include "prep/tokenize_chat.hpp"

#include "nemokit/runtime/tokenizer.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace nemokit::sft {

inline constexpr const char* kImageToken = "<image>";
inline constexpr const char* kVideoToken = "<video>";
inline constexpr const char* kAudioToken = "<audio>";

struct MediaItem {
  rt::Modality modality = rt::Modality::vision;  // the encoder it goes through
  const char* placeholder = kImageToken;
  int64_t count = 0;           // tiles (vision) or frames (audio)
  int64_t tokens = 0;          // language-model positions it fills
  std::vector<uint8_t> tiles;  // vision: [count, 3, size, size] RGB
  std::vector<float> frames;   // audio: [count, mels]
};

// The tokenizer with <image>, <video> and <audio> as special tokens, appended after the last id
// when missing (the same ids every time, so data prep and training agree).
rt::Tokenizer with_media_tokens(const rt::Tokenizer& tok);

// Throws std::invalid_argument naming `where` (file:line) and the file or key.
std::vector<MediaItem> load_media(const nlohmann::ordered_json& record, const std::filesystem::path& base,
                                  const MediaOptions& options, const std::string& where);


// The record's media as encoder inputs at its prompt's placeholders: `ids` (a rendered prompt)
// gets its placeholders expanded. No media: `ids` unchanged, no inputs.
std::vector<rt::MediaInput> prompt_media(std::vector<int32_t>& ids, const nlohmann::json& record,
                                         const std::filesystem::path& base, const MediaOptions& options,
                                         const rt::Tokenizer& tok, const std::string& where);

// Replaces the k-th placeholder of each kind by items' tokens copies of its id (loss flag 0) and
// returns each item's first position. The placeholders must match the items one to one.
std::vector<int64_t> expand_placeholders(TokenizedChat& chat, const std::vector<MediaItem>& items,
                                         const rt::Tokenizer& tok, const std::string& where);

// Normalized pixels [count, 3, size, size] of uint8 tiles (TileOptions' mean and std).
std::vector<float> tile_pixels(const uint8_t* tiles, int64_t count, int64_t size, const rt::media::TileOptions& o);

}  // namespace nemokit::sft
