// Text generation with the model's incremental decoding (Mamba conv/SSM state and an
// attention KV cache per sequence), batched over prompts of different lengths.
#pragma once
#include <cstdint>
#include <vector>

#include "nemokit/runtime/model.hpp"
#include "nemokit/runtime/rng.hpp"

namespace nemokit::rt {

struct SamplingOptions {
  int64_t max_new_tokens = 32;
  float temperature = 1.0f;  // 0 = greedy
  int64_t top_k = 0;         // 0 = all tokens
  float top_p = 1.0f;        // nucleus: smallest set of tokens whose probability reaches top_p
  uint64_t seed = 0;
  std::vector<int32_t> stop_tokens;  // generation of a sequence ends after one of these
  // Sequence i draws from the generator of stream streams[i] (empty: stream i), so a sequence
  // keeps its draws when the batch around it changes (a rank's share of a data-parallel step, the
  // episodes still running in a multi-turn rollout).
  std::vector<uint64_t> streams;
};

// Picks the next token from logits[V]; greedy when temperature is 0.
int32_t sample_token(const float* logits, int64_t vocab, const SamplingOptions& options, Rng& rng);

// New tokens for each prompt (a stop token, when hit, is the last one). Sequence i draws from
// its own generator seeded from (seed, stream i), so a prompt's output does not depend on the batch.
// A model with experts split over ranks (expert parallel) makes this a collective: every rank of
// its communicator calls it, with its own prompts (maybe none), and all step until all are done.
std::vector<std::vector<int32_t>> generate(NemotronH& model, const std::vector<std::vector<int32_t>>& prompts,
                                           const SamplingOptions& options);

// Encoder tokens in a prompt (an omni model's image or audio at its placeholders): the rows of
// `values` [positions.size(), hidden] replace the token embeddings at those prompt positions.
struct PromptEmbeddings {
  std::vector<int64_t> positions;
  std::vector<float> values;
};
// The same, with embeddings[i] for prompt i (may be empty, or hold no positions).
std::vector<std::vector<int32_t>> generate(NemotronH& model, const std::vector<std::vector<int32_t>>& prompts,
                                           const SamplingOptions& options,
                                           const std::vector<PromptEmbeddings>& embeddings);

}  // namespace nemokit::rt
