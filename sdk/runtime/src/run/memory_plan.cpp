#include "nemokit/runtime/run/memory_plan.hpp"

#include <algorithm>
#include <cstdio>

namespace nemokit::rt {

namespace {

// Per token, what one layer of `kind` keeps after forward and backward (the mixers' members in
// src/model: saved inputs, intermediate results and backward scratch, all kept between steps).
long double layer_floats(const NemotronHConfig& c, char kind, int64_t seq) {
  const long double h = c.hidden_size;
  switch (kind) {
    case 'M': {
      const long double I = c.mamba_d_inner(), conv = c.mamba_conv_dim(), proj = c.mamba_in_proj_dim(), H = c.mamba_num_heads;
      const long double G = c.ssm_state_size ? c.n_groups : 1;
      // The SSD scan's chunk states: heads x head_dim x state per chunk of chunk_size tokens.
      const long double chunks = (long double)((seq + c.chunk_size - 1) / std::max<int64_t>(1, c.chunk_size));
      const long double states = H * c.mamba_head_dim * c.ssm_state_size * chunks / (long double)seq;
      // forward: zx, pre, xbc, dt, scan, gated, normed, rstd; backward: dnormed, dgated, dscan,
      // dzx, dxbc, ddt.
      return 2 * proj + 3 * conv + 2 * H + 6 * I + G + states;
    }
    case '*': {
      const long double q = (long double)c.num_attention_heads * c.head_dim, kv = (long double)c.num_key_value_heads * c.head_dim;
      // q, k, v, the attention output and their gradients, and the softmax probabilities
      // (heads x the whole sequence per token).
      return 4 * q + 4 * kv + (long double)c.num_attention_heads * seq;
    }
    case '-':
      return 4.0L * c.intermediate_size;  // up projection, its activation and both gradients
    case 'E': {
      const long double latent = c.moe_latent_size > 0 ? c.moe_latent_size : h, k = c.num_experts_per_tok;
      // Each routed copy of a token: its input and output rows in the expert, and the expert
      // MLP's four buffers; the router's scores and weights; the shared expert as an MLP plus
      // its output row; a latent space's projections and their gradients.
      return k * (2 * latent + 4.0L * c.moe_intermediate_size) + c.n_routed_experts + 2 * k +
             4.0L * c.moe_shared_expert_intermediate_size + h + (c.moe_latent_size > 0 ? 4 * latent : 0);
    }
  }
  return 0;
}

// The GPU trainer's share (src/cuda/model): bf16 weights, fp32 gradients of what it trains, and
// per trained value an fp32 master and two moments. Its activations are the CPU's buffers but
// for the logits and their gradient, which exist one chunk of rows at a time (the loss's
// scratch), and attention's probabilities, which flash attention never stores (it keeps one
// log-sum-exp per head and row). Most of them are bf16, some fp32 (the scan's chunk states and
// gradients, the routers' scores, the norms' statistics), and the layers' layouts differ from
// the CPU's in detail: 2.5 bytes per CPU float puts the estimate within 5% of the trainer's
// allocations for Mamba-, attention- and MoE-heavy stacks (tests/gpu/check_trainer.cpp).
constexpr long double kLossScratchBytes = 1LL << 30;  // kChunkedLossBudgetBytes
constexpr long double kBlasWorkspaceBytes = 32LL << 20;

void plan_on_the_gpu(const NemotronHConfig& c, const MemoryLayout& l, long double per_token, long double tokens,
                     MemoryPlan& p) {
  p.weights = 2 * p.rank_parameters;
  p.gradients = 4 * p.rank_parameters;
  p.gradient_sums = 0;
  p.optimizer = 12 * p.rank_parameters;
  const long double attention = (long double)std::count(c.pattern.begin(), c.pattern.end(), '*');
  per_token -= 2.0L * c.vocab_size + attention * (long double)c.num_attention_heads * (long double)(l.seq_length - 1);
  const long double scratch = std::min(kLossScratchBytes, tokens * (long double)c.vocab_size * 6);
  p.activations = 2.5L * per_token * tokens + scratch + kBlasWorkspaceBytes;
}

}  // namespace

long double activation_floats_per_token(const NemotronHConfig& c, int64_t seq) {
  seq = std::max<int64_t>(1, seq);
  const long double h = c.hidden_size, L = (long double)c.pattern.size();
  // The residual stream before each layer and after the last, each layer's normed input and
  // its rstd, four model-level scratch rows, the final norm, the logits and their gradient.
  long double n = (L + 1) * h + L * (h + 1) + 4 * h + (h + 1) + 2.0L * c.vocab_size + 1;
  for (char kind : c.pattern) n += layer_floats(c, kind, seq);
  // Each MTP depth keeps its layers' buffers and its own stream, logits and their gradient.
  for (int64_t d = 0; d < c.num_nextn_predict_layers; ++d) {
    n += 6 * h + 2.0L * c.vocab_size;
    for (char kind : c.mtp_pattern) n += layer_floats(c, kind, seq) + 2 * h + 1;
  }
  return n;
}

long double routed_expert_parameters(const NemotronHConfig& c) {
  auto moe_layers = [](const std::string& pattern) { return (long double)std::count(pattern.begin(), pattern.end(), 'E'); };
  const long double layers = moe_layers(c.pattern) + (long double)c.num_nextn_predict_layers * moe_layers(c.mtp_pattern);
  const long double width = c.moe_latent_size > 0 ? c.moe_latent_size : c.hidden_size;
  return layers * (long double)c.n_routed_experts * 2.0L * (long double)c.moe_intermediate_size * width;  // up and down
}

MemoryPlan plan_memory(const NemotronHConfig& model, const MemoryLayout& layout) {
  MemoryPlan p;
  p.parameters = model.parameter_count();
  // Expert parallel: a rank creates only its block of the routed experts, with their gradients,
  // sums and moments; everything else is whole on every rank.
  const long double experts = routed_expert_parameters(model);
  p.rank_parameters = p.parameters - experts + experts / (long double)std::max<int64_t>(1, layout.expert_parallel);
  p.weights = 4 * p.rank_parameters;
  p.gradients = 4 * p.rank_parameters;
  p.gradient_sums = 8 * p.rank_parameters;
  // ZeRO-1 shards the replicated parameters' moments over the data-parallel ranks; the experts'
  // stay whole where they live (a 1/ep share already).
  const long double rank_experts = layout.expert_parallel > 1 ? p.rank_parameters - (p.parameters - experts) : 0.0L;
  const long double replicated_moments = 8 * (p.rank_parameters - rank_experts);
  p.optimizer = (layout.zero == 1 ? replicated_moments / (long double)std::max<int64_t>(1, layout.data_parallel) : replicated_moments) +
                8 * rank_experts;
  long double per_token = activation_floats_per_token(model, layout.seq_length);
  // Expert parallel keeps seven rows per routed copy of a token where one rank keeps two (the
  // expert's input and output): the rows sent, held by the experts, their results on both sides,
  // the backward's three, plus the exchange's staging buffer: six more.
  if (layout.expert_parallel > 1) {
    auto moe_layers = [](const std::string& pattern) { return (long double)std::count(pattern.begin(), pattern.end(), 'E'); };
    const long double width = model.moe_latent_size > 0 ? model.moe_latent_size : model.hidden_size;
    per_token += moe_layers(model.pattern) * 6.0L * (long double)model.num_experts_per_tok * width;
  }
  const long double tokens = (long double)layout.micro_batch_size * (long double)layout.seq_length;
  p.activations = 4 * per_token * tokens;
  if (layout.cuda) plan_on_the_gpu(model, layout, per_token, tokens, p);
  return p;
}

std::string format_bytes(long double bytes) {
  static const char* units[] = {"B", "KB", "MB", "GB", "TB", "PB"};
  int u = 0;
  while (bytes >= 1000 && u < 5) bytes /= 1000, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0Lf %s" : "%.3Lg %s", bytes, units[u]);
  return buf;
}

std::string memory_plan_text(const MemoryPlan& p, const MemoryLayout& l) {
  std::string s =
      "weights " + format_bytes(p.weights) + ", gradients " + format_bytes(p.gradients) +
      (l.cuda ? std::string() : " (+" + format_bytes(p.gradient_sums) + " of double sums)") + ", optimizer state " +
      format_bytes(p.optimizer) + (l.cuda ? std::string(" (fp32 masters and moments)") : std::string()) +
      (l.zero == 1 ? " (ZeRO-1, 1/" + std::to_string(l.data_parallel) + ")" : std::string(" (whole)")) +
      (l.expert_parallel > 1 ? ", routed experts 1/" + std::to_string(l.expert_parallel) + " per rank" : std::string()) +
      ", activations " + format_bytes(p.activations) + " (micro batch " + std::to_string(l.micro_batch_size) + " x " +
      std::to_string(l.seq_length) + " tokens); total " + format_bytes(p.total());
  return s;
}

}  // namespace nemokit::rt
