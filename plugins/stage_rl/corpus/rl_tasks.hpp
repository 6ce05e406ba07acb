// The tiny RL configs' verifiable tasks (make_tasks.cpp writes them) and the split that
// `nemokit data prep nano3 rl` gives each one. The SFT chats (../../stage_sft/corpus/make_chats.cpp)
// use both to teach the same prompt formats on train-split items only.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chat_sources.hpp"

namespace rltasks {

using Json = nlohmann::ordered_json;

// Records of the form {"prompt": [{"role": "user", "content": ...}], "expected_answer": ...,
// "environment": ..., "task": ..., <fields the environment reads>}, in file order.
std::vector<Json> arithmetic();
// The same prompt on sums and differences up to 99 + 99 and products up to 20 x 12 that
// arithmetic() does not hold: SFT drills the operations on these so that the tiny model answers
// sums it was never shown by skill rather than recall (the RL stage then has a skill to sharpen).
std::vector<Json> arithmetic_drills();
std::vector<Json> unscramble(const std::vector<chats::WordEntry>& words);
std::vector<Json> definitions(const std::vector<chats::WordEntry>& words);
std::vector<Json> capitals(const std::vector<chats::Country>& countries);

// The word's letters in a hash-chosen order that differs from the word (when any order does).
std::string scramble(const std::string& word);
std::string unscramble_prompt(const std::string& letters);

// One JSONL line, exactly as make_tasks writes it (no newline).
std::string line(const Json& record);

// The RL data prep's split of one line (0 train, 1 val, 2 test) for `seed` and the weights, the
// same hash as plugins/stage_rl/src/prep/rl_data_prep.cpp. The defaults are the tiny RL
// configs' [data] seed and split (configs/nano3/tiny.toml): a quarter of the tasks is held out,
// so held-out reward is measured on a few hundred items that neither SFT nor RL trained on.
constexpr std::uint64_t kPrepSeed = 1234;
constexpr std::array<std::int64_t, 3> kPrepSplit = {70, 25, 5};
int prep_split(const std::string& line, std::uint64_t seed = kPrepSeed,
               const std::array<std::int64_t, 3>& weights = kPrepSplit);

}  // namespace rltasks
