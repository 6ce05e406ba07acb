// Internal: one modality encoder of an omni model (encoder.hpp has the public half). The stem
// turns pixels or mel frames into positions, pre-norm bidirectional blocks (the language model's
// attention and MLP mixers) mix them, and the projector maps them into the LM's embedding space.
#pragma once
#include <memory>
#include <vector>

#include "mixers.hpp"
#include "nemokit/runtime/encoder.hpp"

namespace nemokit::rt::detail {

class Encoder {
 public:
  // Parameters come from `add` in checkpoint order: <m>_model.* then <m>_projector.*.
  Encoder(const EncoderConfig& config, const ParamFactory& add);
  ~Encoder();
  const EncoderConfig& config() const { return c_; }
  void init(Rng& rng);

  // The output tokens [sum over items of output_tokens, output_size], item by item. Keeps the
  // activations for backward.
  const std::vector<float>& forward(const MediaInput& in, bool training);
  // Adds into the parameters' gradients, given the gradient of the last forward's output.
  void backward(const float* dout);

 private:
  struct Layer;
  void stem_forward(const MediaInput& in);
  void stem_backward(const float* dh0);
  int64_t head_input() const;  // projector input features

  EncoderConfig c_;
  NemotronHConfig mixer_config_;  // the shape the shared mixers read
  Parameter* pos_ = nullptr;
  std::unique_ptr<Linear> patch_, conv1_, conv2_;  // vision stem, or audio subsampler
  std::vector<std::unique_ptr<Layer>> layers_;
  Parameter* norm_ = nullptr;
  Parameter* proj_norm_ = nullptr;
  std::unique_ptr<Linear> fc1_, fc2_;
  std::vector<Parameter*> body_;  // every parameter before the projector

  // activations of the last forward
  MediaInput in_;
  RunShape rs_;
  std::vector<int32_t> doc_;
  int64_t t1_ = 0;                         // audio: positions after the first convolution
  std::vector<int64_t> valid1_, valid2_;   // audio: real positions per clip after each convolution
  std::vector<float> col1_, a1_, z1_, col2_, a2_;  // stem (vision: col1_ holds the patches)
  std::vector<std::vector<float>> residual_;       // input of each half-block, and the last output
  std::vector<float> final_, final_rstd_;
  std::vector<int64_t> gather_;                    // head input row r, feature block k -> encoder row
  std::vector<float> head_in_, head_normed_, head_rstd_, u_, act_, out_;
};

}  // namespace nemokit::rt::detail
