#include "prep/tokenize_chat.hpp"

#include <stdexcept>

namespace nemokit::sft {

TokenizedChat tokenize_chat(const rt::Tokenizer& tok, const std::vector<ChatSegment>& segments) {
  TokenizedChat out;
  for (const ChatSegment& s : segments) {
    std::vector<int32_t> ids = tok.encode(s.text);
    out.ids.insert(out.ids.end(), ids.begin(), ids.end());
    out.trained.insert(out.trained.end(), ids.size(), s.trained ? 1 : 0);
  }
  return out;
}

void require_chat_tokens(const rt::Tokenizer& tok, const std::filesystem::path& tokenizer_file) {
  std::string missing;
  for (const std::string& t : chat_special_tokens()) {
    auto ids = tok.encode(t);
    if (ids.size() != 1) missing += (missing.empty() ? "" : " ") + t;
  }
  if (!missing.empty())
    throw std::invalid_argument(tokenizer_file.string() + ": the chat template's special tokens are not single tokens here: " +
                                missing + " (train the tokenizer with them as special tokens)");
}

}  // namespace nemokit::sft
