// Internal: multi-token prediction (MTP) layers, as Nemotron 3 Super defines them (DeepSeek-V3's
// scheme with Nemotron-H layers; vLLM's and TensorRT-LLM's NemotronH MTP, Megatron's MTP loss).
//
// Depth k = 1..num_nextn_predict_layers reads h^{k-1} (k = 1: the main model's final-normed
// hidden state, the input of the LM head) and the embedding of the token k places ahead, and
// predicts the token k+1 places ahead through the shared embedding and LM head:
//   h0  = eh_proj([enorm(embed(x_{t+k})), hnorm(h^{k-1}_t)])      (embedding first)
//   h   = h + mixer_j(norm_j(h))   for each letter j of mtp_pattern
//   h^k = final_layernorm(h);      logits = lm_head(h^k), target x_{t+k+1}
// Positions whose t+k leaves the row or the document have no target. The loss added to the
// model's is mtp_loss_scale / depths * sum_k CE_k (Megatron's mtp_loss_scaling_factor), each
// CE_k normalized as the main loss is.
// Omni models: at an encoder token's position the MTP layers see its placeholder token's
// embedding (the MTP layers of the public models are text-only).
// Weights: mtp.layers.{(k-1)*P + j}.{enorm,hnorm,eh_proj,norm,mixer.*,final_layernorm}, P =
// the pattern's length (enorm/hnorm/eh_proj on its first layer, final_layernorm on its last).
#pragma once
#include <memory>
#include <vector>

#include "mixers.hpp"

namespace nemokit::rt::detail {

class Mtp {
 public:
  Mtp(const NemotronHConfig& c, const ParamFactory& add, const ExpertShard& shard = {});
  ~Mtp();
  void init(Rng& rng, const NemotronHConfig& c);

  // Every depth's forward and loss from the main model's final hidden state `hidden`
  // [rows, hidden]. With `backward`, also the LM head's gradient and each depth's gradient
  // at its output, kept for backward(). Returns the scaled MTP loss.
  double forward(const RunShape& rs, const Batch& batch, const float* hidden, Parameter* embedding, Parameter* lm_head,
                 const LossOptions& opts, bool backward);
  // Adds every MTP parameter's and the embedding's gradient; adds the gradient of the loss
  // on `hidden` into dhidden. Follows forward(..., backward = true).
  void backward(const RunShape& rs, Parameter* embedding, float* dhidden);

  float aux_loss() const;
  std::vector<Block*> blocks();  // every depth's layers, for router statistics

 private:
  struct Depth;
  std::vector<std::unique_ptr<Depth>> depths_;
  int64_t d_, V_;
  float eps_;
  std::vector<float> logits_, dlogits_, row_loss_;  // per-step scratch, kept to avoid reallocation
};

}  // namespace nemokit::rt::detail
