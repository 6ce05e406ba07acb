#pragma once
// The immutable state behind nemokit::rt::Tokenizer, shared by all copies and threads.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "added_tokens.hpp"
#include "bpe_model.hpp"
#include "nemokit/runtime/tokenizer.hpp"
#include "pre_tokenizer.hpp"

namespace nemokit::rt {

struct Tokenizer::Impl {
  std::string origin;  // the file (or other source) it came from, for messages
  uint64_t serial = 0; // unique per Impl: keys the per-thread word caches
  tok::BpeModel model;
  tok::PreTokenizer pre_tokenizer;
  tok::AddedTokenMatcher added_matcher;
  std::vector<AddedToken> added;
  tok::StringIdMap added_by_content;
  std::vector<std::string> id_bytes;  // id -> the bytes decoding emits ("" for holes)
  std::vector<uint8_t> id_kind;       // 0 = hole, 1 = model token, 2 = added, 3 = added special
  int32_t vocab_size = 0;
  nlohmann::ordered_json json;        // the document, written back unchanged by to_json()
};

namespace tok {
// Builds an Impl from a parsed tokenizer.json; throws std::runtime_error "<origin>: key '<k>': ...".
std::shared_ptr<const Tokenizer::Impl> build_impl(nlohmann::ordered_json doc, std::string origin);
}  // namespace tok

}  // namespace nemokit::rt
