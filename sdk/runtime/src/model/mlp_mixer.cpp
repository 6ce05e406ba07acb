// Squared-ReLU MLP: y = down(relu(up(x))^2), no gate projection and no biases.
#include <vector>

#include "mixers.hpp"
#include "nemokit/runtime/kernels.hpp"

namespace nemokit::rt::detail {
namespace k = kernels;

class MlpMixer : public Mixer {
 public:
  MlpMixer(const NemotronHConfig& c, const std::string& prefix, int64_t inner, const ParamFactory& add)
      : inner_(inner), up_(add(prefix + "up_proj.weight", {inner, c.hidden_size}, true)),
        down_(add(prefix + "down_proj.weight", {c.hidden_size, inner}, true)) {}

  void init(Rng& rng, const NemotronHConfig& c) override {
    fill_normal(up_.weight()->value, rng, c.initializer_range);
    fill_normal(down_.weight()->value, rng, c.initializer_range);
  }

  void forward(const RunShape& rs, const float* x, float* y) override {
    h_.resize(rs.rows * inner_);
    a_.resize(rs.rows * inner_);
    up_.forward(h_.data(), x, rs.rows, rs.lora);
    k::relu2_forward(a_.data(), h_.data(), rs.rows * inner_);
    down_.forward(y, a_.data(), rs.rows, rs.lora);
  }

  void backward(const RunShape& rs, const float* x, const float* dy, float* dx) override {
    da_.assign(rs.rows * inner_, 0.0f);
    dh_.assign(rs.rows * inner_, 0.0f);
    auto& da = da_;
    auto& dh = dh_;
    down_.backward(da.data(), dy, a_.data(), rs.rows);
    k::relu2_backward(dh.data(), da.data(), h_.data(), rs.rows * inner_);
    up_.backward(dx, dh.data(), x, rs.rows);
  }

  void step(const float* x, float* y, int64_t n, const std::vector<SequenceCache*>&) override {
    RunShape rs;
    rs.batch = n, rs.seq = 1, rs.rows = n, rs.training = false;
    forward(rs, x, y);
  }

  void linears(std::vector<Linear*>& out) override {
    out.push_back(&up_);
    out.push_back(&down_);
  }

 private:
  int64_t inner_;
  Linear up_, down_;
  std::vector<float> h_, a_;
  std::vector<float> da_, dh_;  // backward scratch, kept between steps
};

std::unique_ptr<Mixer> make_mlp(const NemotronHConfig& c, const std::string& prefix, int64_t inner,
                                const ParamFactory& add) {
  return std::make_unique<MlpMixer>(c, prefix, inner, add);
}

}  // namespace nemokit::rt::detail
