// Internal: the four block mixers of Nemotron-H. Each owns its parameters (created through
// the model), runs forward on [rows, hidden] activations, keeps what its backward needs and
// decodes one token per sequence against a SequenceCache.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "linear.hpp"
#include "nemokit/runtime/config.hpp"
#include "nemokit/runtime/model.hpp"
#include "nemokit/runtime/rng.hpp"

namespace nemokit::rt::detail {

struct RunShape {
  int64_t batch = 0, seq = 0, rows = 0;
  const int32_t* doc = nullptr;  // null: one document per row
  const uint8_t* pad = nullptr;
  bool training = true;  // gather router statistics
  float aux_coeff = 0;   // MoE aux loss coefficient
  float grad_scale = 1;  // scale of the aux loss gradient
  LoraRun lora;          // adapter dropout of this forward
  // Expert parallel: takes a routed expert's gradients after each source rank's share of its
  // backward (NemotronH::set_gradient_flush); null or empty: they add up in Parameter::grad.
  const std::function<void(const std::vector<Parameter*>&)>* grad_flush = nullptr;
};

using ParamFactory = std::function<Parameter*(const std::string& name, std::vector<int64_t> shape, bool decay)>;

class Mixer {
 public:
  virtual ~Mixer() = default;
  virtual void init(Rng& rng, const NemotronHConfig& c) = 0;
  // y[rows, hidden] is overwritten.
  virtual void forward(const RunShape& rs, const float* x, float* y) = 0;
  // dx is added to; dy is the gradient of y. Must follow forward on the same x.
  virtual void backward(const RunShape& rs, const float* x, const float* dy, float* dx) = 0;
  // One new token per sequence: x [n, hidden] -> y [n, hidden].
  virtual void step(const float* x, float* y, int64_t n, const std::vector<SequenceCache*>& caches) = 0;
  virtual void init_cache(SequenceCache&) const {}
  virtual float aux_loss() const { return 0; }
  // The projections LoRA may adapt (not the router gate), in parameter order.
  virtual void linears(std::vector<Linear*>& out) = 0;
};

std::unique_ptr<Mixer> make_mamba2(const NemotronHConfig& c, int layer, const ParamFactory& add);
std::unique_ptr<Mixer> make_attention(const NemotronHConfig& c, int layer, const ParamFactory& add);
// Encoder self-attention: every position sees its whole document; no decoding step.
std::unique_ptr<Mixer> make_bidirectional_attention(const NemotronHConfig& c, const std::string& prefix, const ParamFactory& add);
std::unique_ptr<Mixer> make_mlp(const NemotronHConfig& c, const std::string& prefix, int64_t inner, const ParamFactory& add);
// Expert parallel as the model sets it up for its MoE layers: the ranks the routed experts are
// split over (null: every expert here) in groups of `group` consecutive ranks, each group holding
// every expert once, and where an expert another rank of the group holds is recorded (its
// checkpoint name, shape and owner's position in the group), so the model's layout lists every
// expert.
struct ExpertShard {
  Communicator* comm = nullptr;
  int group = 1;
  std::function<void(const std::string& name, std::vector<int64_t> shape, int owner)> remote;
};

// `prefix` ends in "mixer.": backbone.layers.N.mixer. or, in an MTP layer, mtp.layers.N.mixer.
std::unique_ptr<Mixer> make_moe(const NemotronHConfig& c, const std::string& prefix, const ParamFactory& add,
                                const ExpertShard& shard = {});
// Causal attention of an MTP layer: trained with the model, never decoded (no cache slot).
std::unique_ptr<Mixer> make_mtp_attention(const NemotronHConfig& c, const std::string& prefix, const ParamFactory& add);

// A pre-norm residual block: h + mixer(rmsnorm(h)), with the norm's activations of the last
// forward.
class Block {
 public:
  Block(Parameter* norm, std::unique_ptr<Mixer> mixer) : norm(norm), mixer(std::move(mixer)) {}
  Parameter* norm;
  std::unique_ptr<Mixer> mixer;
  std::vector<float> normed, rstd;
};

// Router statistics of an MoE mixer (null for other mixers).
struct MoeStats {
  std::vector<int64_t>* counts;
  Parameter* bias;
};
MoeStats moe_stats(Mixer& mixer);

// Fills a matrix with normal(0, std) draws.
void fill_normal(Tensor& t, Rng& rng, float stddev);
void fill_uniform(Tensor& t, Rng& rng, float bound);
void fill_value(Tensor& t, float v);

}  // namespace nemokit::rt::detail
