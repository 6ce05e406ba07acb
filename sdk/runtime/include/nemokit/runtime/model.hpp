// The Nemotron-H hybrid language model on the CPU: embedding, a stack of pre-norm residual
// blocks whose mixer is Mamba2 (M), attention (*), a squared-ReLU MLP (-) or a mixture of
// experts (E, optionally LatentMoE), the final norm and the LM head, plus Nemotron 3 Super's
// multi-token prediction layers in training. Forward and backward in float32.
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nemokit/runtime/config.hpp"
#include "nemokit/runtime/encoder.hpp"
#include "nemokit/runtime/lora.hpp"
#include "nemokit/runtime/tensor.hpp"

namespace nemokit::rt {

class Communicator;

struct Parameter {
  std::string name;  // Hugging Face checkpoint name, e.g. backbone.layers.0.mixer.in_proj.weight
  Tensor value;
  Tensor grad;            // same shape; undefined for buffers
  bool buffer = false;    // saved in checkpoints but not trained by gradient
  bool trainable = true;  // false: frozen (optimizer skips it)
  bool decay = true;      // AdamW weight decay applies (matrices only)
  // Expert parallel: a routed expert's weight that this rank alone holds. Its gradient is
  // complete here (every rank's tokens for it came here), so it is not summed over the ranks.
  bool expert_shard = false;
};

// One tensor of the whole model in checkpoint order, held here (`local`) or, under expert
// parallel, by the rank at position `owner` of this rank's group (local == nullptr): a checkpoint holds every expert whatever the
// layout, and this is the order it lists them in.
struct ParamSlot {
  std::string name;
  std::vector<int64_t> shape;
  Parameter* local = nullptr;
  int owner = 0;
};

// One micro-batch: `batch` rows of `seq` positions, row-major.
struct Batch {
  int64_t batch = 0, seq = 0;
  std::vector<int32_t> input_ids;  // [batch*seq]
  std::vector<int32_t> targets;    // [batch*seq] next-token ids, < 0 = not in the loss; may be empty
  std::vector<int32_t> doc_ids;    // optional: document of each position (packed rows)
  std::vector<uint8_t> pad;        // optional: 1 = padding, excluded from router statistics
  // optional: weight of each position's loss. When given, the loss is sum_t w_t * ce_t and
  // LossOptions::mean is not applied (the weights carry the normalization, e.g. per sample).
  std::vector<float> loss_weights;
  // Omni models: at most one input per modality; its encoder's tokens replace the embeddings
  // at its positions (whose input ids are the placeholder token and get no gradient).
  std::vector<MediaInput> media;

  // Marks document starts from per-row cumulative offsets (cu_seqlens, starting at 0 and
  // ending at seq), so attention, the conv window and the SSM state reset at each start.
  void set_documents(const std::vector<std::vector<int64_t>>& cu_seqlens);
  void validate(int64_t vocab_size) const;
};

struct LossOptions {
  bool mean = true;              // mean over counted tokens; false: sum
  float grad_scale = 1.0f;       // multiplies every gradient (gradient accumulation)
  float moe_aux_loss_coeff = 0;  // Switch-style load-balance loss (0 = off)
  // Weight of the multi-token prediction loss (models with num_nextn_predict_layers): the
  // mean of the depths' losses times this, Megatron's mtp_loss_scaling_factor (default 0.1).
  float mtp_loss_scale = 0.1f;
};

struct StepResult {
  double loss_sum = 0;  // summed token cross-entropy
  int64_t tokens = 0;   // tokens counted in the loss
  float loss = 0;       // reported loss: mean or sum per LossOptions, plus aux and MTP
  float aux_loss = 0;
  double mtp_loss = 0;  // the scaled multi-token prediction loss (0 without MTP layers)
};

// Incremental decoding state of one sequence, one entry per layer.
struct SequenceCache {
  std::vector<std::vector<float>> conv;  // Mamba: last conv_kernel-1 xBC inputs
  std::vector<std::vector<float>> ssm;   // Mamba: [heads, head_dim, state]
  std::vector<std::vector<float>> keys;  // attention: [length, kv_heads*head_dim]
  std::vector<std::vector<float>> values;
  int64_t length = 0;
};

namespace detail {
class Block;
class Encoder;
class Linear;
class Mtp;
struct RunShape;
}  // namespace detail

class NemotronH {
 public:
  explicit NemotronH(NemotronHConfig config);
  // Expert parallel over the ranks of `expert_comm` (it must outlive the model) in groups of `ep`
  // consecutive ranks (ep > 1 dividing size(); ep == size(): one group): each MoE layer's
  // routed experts are cut into ep equal contiguous blocks and this rank creates only the block
  // of its position in its group; tokens travel to their experts' ranks in the group and back
  // through all-to-alls, so every forward and backward is collective: all ranks run them
  // together, the same number of times (a rank with nothing to compute runs a batch it
  // discards). Each group holds every expert: the groups are data parallel over the experts as
  // every rank is over the rest (the shared experts, the router and everything else, whole on
  // every rank). A config whose n_routed_experts ep does not divide is refused.
  NemotronH(NemotronHConfig config, Communicator* expert_comm, int ep);
  ~NemotronH();
  NemotronH(const NemotronH&) = delete;
  NemotronH& operator=(const NemotronH&) = delete;

  const NemotronHConfig& config() const { return config_; }
  // Initialization as transformers does it (normal(0, initializer_range) matrices, Mamba
  // A_log/D/dt_bias, out_proj scaled by 1/sqrt(layers)), from a seed.
  void init_weights(uint64_t seed);

  std::vector<Parameter*> parameters();  // checkpoint order; includes buffers; this rank's experts only
  // Every tensor of the whole model in checkpoint order, with where it lives (expert parallel).
  const std::vector<ParamSlot>& parameter_layout() const { return layout_; }
  // The communicator the experts are split over, or null when every expert is here.
  Communicator* expert_comm() const { return expert_comm_; }
  // Ranks per expert-parallel group (1 when every expert is here).
  int expert_parallel() const { return expert_parallel_; }
  // Expert parallel: called with a routed expert's parameters after the backward of each source
  // rank's tokens, so that gradient accumulation can take them then (GradientSum sums them in
  // double per micro-batch, as one rank does) instead of letting them add up in float. Unset: the
  // gradients add up in Parameter::grad.
  using GradientFlush = std::function<void(const std::vector<Parameter*>&)>;
  void set_gradient_flush(GradientFlush flush) { grad_flush_ = std::move(flush); }
  Parameter* find(const std::string& name);
  void zero_grad();
  void set_frozen(const std::string& name_prefix, bool frozen);

  // Forward pass; logits [batch*seq, vocab]. Keeps the activations for backward.
  const Tensor& forward(const Batch& batch);
  // Forward, loss over batch.targets and (when `backward`) gradients added into Parameter::grad.
  StepResult forward_backward(const Batch& batch, const LossOptions& opts, bool backward = true);
  const std::vector<float>& token_losses() const { return token_losses_; }
  const Tensor& logits() const { return logits_; }

  // The backbone alone, for heads other than the LM head (a reward model's scalar score): the
  // final norm's output [batch*seq, hidden]. Keeps the activations for backward_hidden;
  // `training` as forward_backward's `backward` (router statistics, adapter dropout).
  const std::vector<float>& forward_hidden(const Batch& batch, bool training = true);
  // Adds into Parameter::grad the gradient of an objective given its gradient on the last
  // forward_hidden output, grad_hidden [batch*seq, hidden]. The LM head gets none (untied).
  void backward_hidden(const float* grad_hidden);

  // Aux-loss-free balancing: bias_i += rate * sign(mean(c) - c_i) from the counts gathered
  // since the last call (non-pad tokens of training forwards), then the counts reset.
  void update_expert_bias(float rate);
  std::vector<std::vector<int64_t>> expert_load() const;  // per MoE layer
  // Replaces the counts (as expert_load() lists them): data parallel puts the sum over ranks.
  void set_expert_load(const std::vector<std::vector<int64_t>>& load);

  SequenceCache new_cache() const;
  // Feeds tokens[i] to sequence caches[i]; logits [n, vocab] for the next token of each.
  void decode_step(const std::vector<int32_t>& tokens, const std::vector<SequenceCache*>& caches, std::vector<float>& logits);
  // The same step with logits only for rows `want` (ascending), packed [want.size(), vocab]:
  // a sequence still reading its prompt needs no LM head, the largest product of a small model.
  void decode_step(const std::vector<int32_t>& tokens, const std::vector<SequenceCache*>& caches, std::vector<float>& logits,
                   const std::vector<int64_t>& want);
  // The same with `embeddings[i]` ([hidden], or null) replacing row i's token embedding: an
  // encoder token at a placeholder of the prompt.
  void decode_step(const std::vector<int32_t>& tokens, const std::vector<SequenceCache*>& caches, std::vector<float>& logits,
                   const std::vector<int64_t>& want, const std::vector<const float*>& embeddings);

  // Omni models (encoder.hpp): a vision or audio encoder with its projector, parameters
  // <modality>_model.* and <modality>_projector.* after the language model's, initialized from
  // `seed`. Its config goes into config().extra as "<modality>_config", so checkpoints rebuild it:
  // a config that carries one gets the encoder at construction. Not after add_lora.
  void add_encoder(EncoderConfig config, uint64_t seed);
  bool has_encoder(Modality m) const;
  const EncoderConfig& encoder_config(Modality m) const;
  // The encoder's tokens [n, hidden] for `input` without keeping anything for backward
  // (generation puts them into the prompt with decode_step's `embeddings`).
  std::vector<float> encode(const MediaInput& input);

  // LoRA (lora.hpp): adapters <module>.lora_A.weight [rank, in] (kaiming-uniform, as PEFT)
  // and <module>.lora_B.weight [out, rank] (zeros) on every projection a target matches,
  // listed after the base parameters; every other parameter is frozen and drops its
  // gradient buffer. Forward, backward and decode_step include the adapters.
  void add_lora(const LoraConfig& config);
  // W += (alpha/rank) B A for every adapter; the adapters go and the base parameters are
  // trainable again as before add_lora.
  void merge_lora();
  bool has_lora() const { return lora_.has_value(); }
  const LoraConfig& lora_config() const;
  // Training forwards with adapter dropout so far: they number the dropout masks, so an
  // exact resume restores this together with the seed.
  uint64_t lora_dropout_counter() const { return lora_counter_; }
  void restore_lora_dropout(uint64_t seed, uint64_t counter);

 private:
  Parameter* add_param(const std::string& name, std::vector<int64_t> shape, bool decay);
  void build();                            // the layers, from config_ (and expert_comm_)
  std::vector<detail::Linear*> linears();  // every adaptable projection, in parameter order
  // Embedding, blocks and final norm into final_normed_ (shared by forward_backward and
  // forward_hidden), and the way back from a gradient on final_normed_.
  void backbone_forward(const Batch& batch, const LossOptions& opts, bool training);
  void backbone_backward(const float* grad_final);
  detail::RunShape run_shape() const;
  NemotronHConfig config_;
  std::deque<Parameter> params_;
  std::vector<ParamSlot> layout_;
  Communicator* expert_comm_ = nullptr;
  int expert_parallel_ = 1;
  GradientFlush grad_flush_;
  Parameter* embedding_ = nullptr;
  Parameter* norm_f_ = nullptr;
  Parameter* lm_head_ = nullptr;  // == embedding_ when tied
  std::vector<std::unique_ptr<detail::Block>> blocks_;
  std::unique_ptr<detail::Mtp> mtp_;               // multi-token prediction layers (mtp.layers.*), if any
  std::vector<detail::Block*> all_blocks() const;  // the main stack's layers, then the MTP layers
  std::vector<std::unique_ptr<detail::Encoder>> encoders_;
  detail::Encoder* encoder_for(Modality m) const;          // null when absent
  void media_forward(bool training);                       // encoder tokens into residual_[0]
  void media_backward(std::vector<float>& grad_embedded);  // takes the gradient at media positions
  std::optional<LoraConfig> lora_;
  size_t base_params_ = 0;  // parameters before the adapters
  std::vector<bool> trainable_before_lora_;
  uint64_t lora_counter_ = 0;

  // activations of the last forward, and how it ran (the backward replays the same settings)
  Batch batch_;
  LossOptions run_opts_;
  bool run_training_ = false, run_dropout_ = false;
  uint64_t run_lora_counter_ = 0;
  std::vector<std::vector<float>> residual_;  // input of each block, plus the final output
  std::vector<float> final_normed_, final_rstd_;
  Tensor logits_;
  std::vector<float> token_losses_;
  std::vector<float> grad_logits_;
  std::vector<float> scratch_[4];  // per-step buffers kept to avoid reallocation
  friend class detail::Block;
};

}  // namespace nemokit::rt
