#pragma once
// An omni3 model from a language model checkpoint: the tokenizer gains <image>, <video> and
// <audio> (data prep adds the same ids), the embedding and LM head grow to match (new rows are
// the mean of the old ones, as transformers' resize_token_embeddings does), and the configured
// encoders join with fresh weights when the checkpoint has none. A checkpoint that already has
// them (a previous omni3 run) comes back unchanged.

#include "omni/media_options.hpp"

#include "nemokit/runtime/model.hpp"
#include "nemokit/runtime/tokenizer.hpp"

#include <memory>

namespace nemokit::sft {

// Returns the number of encoders added. Throws std::invalid_argument when the checkpoint's
// encoders differ from the config's.
int prepare_omni_model(std::unique_ptr<rt::NemotronH>& model, rt::Tokenizer& tok, const MediaOptions& media, uint64_t seed);

// A copy of `model` with `vocab` rows of embedding (and LM head); the new rows are the mean row.
std::unique_ptr<rt::NemotronH> resize_vocab(rt::NemotronH& model, int64_t vocab);

}  // namespace nemokit::sft
