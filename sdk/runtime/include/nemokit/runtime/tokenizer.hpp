#pragma once
// Byte-level BPE tokenizer: loads and writes Hugging Face tokenizer.json files (the format the
// Nemotron checkpoints ship), encodes and decodes text, and trains a small vocab from text files.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nemokit::rt {

// A token that is matched verbatim in the input before pre-tokenization (e.g. "<|im_start|>").
struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool special = true;
};

class Tokenizer {
 public:
  // Reads a tokenizer.json with a ByteLevel BPE model. Throws std::runtime_error naming the file
  // and, for unsupported or malformed content, the JSON key.
  static Tokenizer load(const std::filesystem::path& tokenizer_json);
  // Same, from JSON text already in memory; `origin` names the source in error messages.
  static Tokenizer from_json(std::string_view json_text, std::string_view origin = "<memory>");

  // Token ids for `text`; no special tokens are added (BOS/EOS are the caller's business).
  // Thread-safe: many threads may encode with one Tokenizer at the same time.
  std::vector<int32_t> encode(std::string_view text) const;
  // Encodes many texts on `threads` threads (0 = all cores); result i belongs to texts[i].
  std::vector<std::vector<int32_t>> encode_batch(std::span<const std::string> texts,
                                                 int threads = 0) const;

  // Text for `ids` (the ByteLevel decoder). Special tokens are written out as their text unless
  // skip_special is set. Throws std::out_of_range for an id outside the vocab.
  std::string decode(std::span<const int32_t> ids) const;
  std::string decode(std::span<const int32_t> ids, bool skip_special) const;
  // Text for ids a model generated: as decode, but an id the tokenizer lacks (a model's vocab is
  // often padded past its tokenizer's) is written as U+FFFD instead of throwing, so a sample or
  // an answer never ends a run.
  std::string decode_generated(std::span<const int32_t> ids, bool skip_special = false) const;

  // Number of ids (the largest id + 1, added tokens included).
  int32_t vocab_size() const;
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(int32_t id) const;
  const std::vector<AddedToken>& added_tokens() const;

  // The tokenizer.json text, in the layout Hugging Face `tokenizers` reads.
  std::string to_json() const;
  // Writes to_json() atomically (temp file in the same folder, fsync, rename).
  void save(const std::filesystem::path& path) const;

  // Copies share the immutable tables, so passing a Tokenizer around is cheap.
  Tokenizer(const Tokenizer&) = default;
  Tokenizer(Tokenizer&&) noexcept = default;
  Tokenizer& operator=(const Tokenizer&) = default;
  Tokenizer& operator=(Tokenizer&&) noexcept = default;
  ~Tokenizer();

  struct Impl;
  explicit Tokenizer(std::shared_ptr<const Impl> impl);

 private:
  std::shared_ptr<const Impl> impl_;
};

struct BpeTrainOptions {
  int32_t vocab_size = 4096;                 // final size, the 256 byte tokens and specials included
  std::vector<std::string> special_tokens;   // get the first ids, in this order
  int32_t min_frequency = 2;                 // a pair seen fewer times is never merged
  int threads = 0;                           // 0 = all cores (word counting is parallel)
};

// Trains a byte-level BPE vocab from UTF-8 text files (GPT-4 style split pattern). Deterministic:
// ties in pair counts break on the byte order of the pair. Throws std::runtime_error naming a file
// that cannot be read.
Tokenizer train_bpe(const std::vector<std::filesystem::path>& files, const BpeTrainOptions& opt);

// `nemokit tokenizer ...`: args are the words after `tokenizer`.
//   train --vocab-size N --out tokenizer.json [--special TOKEN ...] [--min-frequency N] FILES...
//   encode --tokenizer T [FILE]   one line of space-separated ids per input line (stdin if no FILE)
//   decode --tokenizer T [FILE]   one line of ids per line -> one line of text
// Returns 0 on success, 2 on usage errors, 1 on failures (one line on stderr naming the file).
int tokenizer_command(const std::vector<std::string>& args);

}  // namespace nemokit::rt
