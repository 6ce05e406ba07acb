#pragma once
// Greedy-generation checks of a fine-tuned model: each eval record is a conversation up to the
// user's question, an expected answer and how to compare it:
//   {"kind": "capital", "messages": [...], "expected": "The capital of Peru is Lima.", "match": "exact"}
//   {"kind": "define",  "messages": [...], "expected": "cat (noun):", "match": "prefix"}
// The prompt is rendered with the chat template's generation prompt; the answer is what the model
// writes up to <|im_end|>, without a reasoning block, trimmed.

#include "omni/media_options.hpp"

#include "nemokit/runtime/model.hpp"
#include "nemokit/runtime/tokenizer.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace nemokit::sft {

struct EvalExample {
  std::string kind, expected;
  bool prefix = false;
  std::vector<int32_t> prompt;
  std::vector<rt::MediaInput> media;  // omni3: encoder inputs at the prompt's placeholders
};

struct EvalAnswer {
  const EvalExample* example = nullptr;
  std::string answer;
  bool correct = false;
};

struct EvalReport {
  std::map<std::string, std::pair<int64_t, int64_t>> per_kind;  // kind -> (correct, total)
  std::vector<EvalAnswer> answers;
  double accuracy() const;
  nlohmann::json to_json() const;  // {"all": x, "<kind>": x, ...}
};

// Reads up to max_examples records (spread over the file's kinds in file order); errors name the
// file and line. Records with images, videos or audio (omni3) need `media`, unless
// `skip_media_records` leaves them out (a model without encoders, compared beside omni models).
std::vector<EvalExample> load_eval_examples(const std::filesystem::path& file, const rt::Tokenizer& tok, bool enable_thinking,
                                            int64_t max_examples, const MediaOptions* media = nullptr,
                                            bool skip_media_records = false);

EvalReport run_generation_eval(rt::NemotronH& model, const rt::Tokenizer& tok, const std::vector<EvalExample>& examples,
                               int64_t max_new_tokens);

// The assistant's answer in generated text: a leading <think>...</think> block removed, trimmed.
std::string answer_text(const std::string& generated);

}  // namespace nemokit::sft
