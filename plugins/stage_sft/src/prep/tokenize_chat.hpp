#pragma once
// Rendered conversation -> token ids with a per-token flag saying whether the assistant produced
// it. Each segment is encoded on its own, so the flags follow segment boundaries exactly (the
// template puts a special token or a newline at every boundary, where byte-level BPE splits
// anyway).

#include "chat/chat_template.hpp"

#include "nemokit/runtime/tokenizer.hpp"

#include <cstdint>
#include <filesystem>
#include <vector>

namespace nemokit::sft {

struct TokenizedChat {
  std::vector<int32_t> ids;
  std::vector<uint8_t> trained;  // 1 = produced by the assistant (a loss target)
};

TokenizedChat tokenize_chat(const rt::Tokenizer& tok, const std::vector<ChatSegment>& segments);

// The template's special tokens must be single tokens of the tokenizer (else the model could not
// learn where turns end). Throws std::invalid_argument naming the tokenizer file and the tokens.
void require_chat_tokens(const rt::Tokenizer& tok, const std::filesystem::path& tokenizer_file);

}  // namespace nemokit::sft
