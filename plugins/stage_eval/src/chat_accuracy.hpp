#pragma once
// Greedy exact match on chat items, as the SFT stage checks its models (sft::run_generation_eval):
// {kind, messages, expected, match} records; omni3's carry images, video and audio, answered
// through the model's encoders. A model without encoders is measured on the text items alone.

#include "eval_options.hpp"
#include "results.hpp"

#include "nemokit/runtime/model.hpp"
#include "nemokit/runtime/tokenizer.hpp"

#include <nlohmann/json.hpp>

#include <vector>

namespace nemokit::eval {

// `media` is the [media] table (tiles, video frames, audio rate).
std::vector<Row> chat_accuracy(rt::NemotronH& model, const rt::Tokenizer& tok, const ChatOptions& o, const nlohmann::json& media);

}  // namespace nemokit::eval
