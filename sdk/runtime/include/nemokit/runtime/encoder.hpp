// The multimodal half of an omni model: a vision encoder (image tiles cut into patches) and an
// audio encoder (log-mel frames through a convolutional subsampler), each a bidirectional
// pre-norm transformer built from the runtime's attention and MLP, followed by a projector into
// the language model's embedding space. Their output tokens replace the input embeddings at the
// batch's media positions (the <image> / <audio> placeholders of the chat template).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace nemokit::rt {

enum class Modality { vision, audio };
const char* modality_name(Modality m);  // "vision", "audio"

struct EncoderConfig {
  Modality modality = Modality::vision;
  int64_t hidden_size = 64;
  int64_t num_hidden_layers = 2;
  int64_t num_attention_heads = 4;
  int64_t intermediate_size = 256;       // encoder MLP (squared ReLU, as the language model's)
  int64_t max_position_embeddings = 256;  // learned absolute positions
  double layer_norm_epsilon = 1e-5;
  double initializer_range = 0.02;
  // vision: square tiles of image_size pixels, patch_size patches, then a pixel shuffle that
  // merges downsample x downsample neighbouring patches into one token (Nemotron VL's 0.5 ratio).
  int64_t image_size = 32, patch_size = 4, num_channels = 3, downsample = 2;
  // audio: num_mel_bins log-mel features per 10 ms frame; two stride-2 convolutions (kernel 3)
  // make one token of every 4 frames.
  int64_t num_mel_bins = 80;
  // projector: RMSNorm, Linear, squared ReLU, Linear into output_size (the LM's hidden size)
  int64_t projector_hidden_size = 256;
  int64_t output_size = 0;

  // Features of one input row: a flattened patch [channels, patch, patch], or one mel frame.
  int64_t input_features() const;
  int64_t patches_per_side() const { return image_size / patch_size; }
  // Encoder positions: patches of a tile, or frames after the subsampler.
  int64_t positions(int64_t frames = 0) const;
  // Tokens handed to the language model for one tile / one clip of `frames` frames.
  int64_t output_tokens(int64_t frames = 0) const;

  // config.json's "vision_config" / "audio_config". from_json rejects unknown keys and bad
  // values, naming `where` and the key.
  nlohmann::json to_json() const;
  static EncoderConfig from_json(const nlohmann::json& j, Modality m, const std::string& where);
  void validate(const std::string& where) const;
};

// What one encoder reads in one micro-batch and where its tokens go.
struct MediaInput {
  Modality modality = Modality::vision;
  int64_t items = 0;           // tiles (vision) or clips (audio)
  int64_t length = 0;          // audio: frames per clip, clips zero-padded to it; vision: unused
  std::vector<int64_t> valid;  // audio: real frames of each clip (1..length)
  std::vector<float> data;     // vision [items, channels, size, size]; audio [items, length, mels]
  // Flat batch positions (row * seq + t) that take the output tokens, item by item in order.
  std::vector<int64_t> positions;
};

}  // namespace nemokit::rt
