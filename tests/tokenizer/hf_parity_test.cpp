// Our encoding equals Hugging Face `tokenizers` on real text, for tokenizer.json files that
// `tokenizers` itself trained (three pre-tokenizer layouts, both merge forms, added tokens).

#include <nemokit/runtime/tokenizer.hpp>

#include <thread>

#include "test_support.hpp"

using nemokit::rt::Tokenizer;
using namespace tokenizer_test;

namespace {

class tokenizer_hf : public ::testing::TestWithParam<std::string> {};

void expect_rows_equal(const std::vector<std::vector<int32_t>>& got,
                       const std::vector<std::vector<int32_t>>& want,
                       const std::vector<std::string>& lines) {
  ASSERT_EQ(got.size(), want.size());
  size_t mismatches = 0;
  for (size_t i = 0; i < want.size() && mismatches < 5; ++i) {
    if (got[i] != want[i]) {
      ++mismatches;
      ADD_FAILURE() << "line " << i + 1 << " encodes differently: \"" << lines[i] << "\"";
    }
  }
}

TEST_P(tokenizer_hf, EncodesEachLineLikeHuggingFace) {
  const Tokenizer t = Tokenizer::load(fixture("hf_" + GetParam() + ".json"));
  const auto lines = sample_lines();
  const auto want = read_ids(fixture("hf_" + GetParam() + ".ids"));
  ASSERT_EQ(lines.size(), want.size());
  std::vector<std::vector<int32_t>> got;
  for (const auto& l : lines) got.push_back(t.encode(l));
  expect_rows_equal(got, want, lines);
}

TEST_P(tokenizer_hf, EncodesWholeTextLikeHuggingFace) {
  // One multi-line text: newline and whitespace runs cross line ends here.
  const Tokenizer t = Tokenizer::load(fixture("hf_" + GetParam() + ".json"));
  const auto want = read_ids(fixture("hf_" + GetParam() + ".whole.ids"));
  ASSERT_EQ(want.size(), 1u);
  const auto got = t.encode(read_file(fixture("sample.txt")));
  ASSERT_EQ(got.size(), want[0].size());
  EXPECT_TRUE(got == want[0]);
}

TEST_P(tokenizer_hf, BatchAndConcurrentEncodeMatchSequential) {
  const Tokenizer t = Tokenizer::load(fixture("hf_" + GetParam() + ".json"));
  const auto lines = sample_lines();
  const auto want = read_ids(fixture("hf_" + GetParam() + ".ids"));
  expect_rows_equal(t.encode_batch(lines, 4), want, lines);

  // Plain encode() from several threads at once on one shared Tokenizer (and a copy of it).
  const Tokenizer copy = t;
  std::vector<std::vector<std::vector<int32_t>>> per_thread(4);
  {
    std::vector<std::jthread> threads;
    for (size_t k = 0; k < per_thread.size(); ++k) {
      threads.emplace_back([&, k] {
        const Tokenizer& mine = k % 2 ? copy : t;
        for (size_t i = k; i < lines.size(); i += 1) per_thread[k].push_back(mine.encode(lines[i]));
      });
    }
  }
  for (size_t k = 0; k < per_thread.size(); ++k)
    for (size_t i = 0; i < per_thread[k].size(); ++i)
      ASSERT_EQ(per_thread[k][i], want[k + i]) << "thread " << k << " line " << k + i + 1;
}

TEST_P(tokenizer_hf, SaveThenLoadEncodesTheSame) {
  TempDir dir;
  const Tokenizer t = Tokenizer::load(fixture("hf_" + GetParam() + ".json"));
  t.save(dir / "copy.json");
  const Tokenizer back = Tokenizer::load(dir / "copy.json");
  EXPECT_EQ(back.vocab_size(), t.vocab_size());
  const auto lines = sample_lines();
  for (size_t i = 0; i < lines.size(); i += 7) ASSERT_EQ(back.encode(lines[i]), t.encode(lines[i]));
  // Nothing but the file itself is left in the folder (the temp file was renamed into place).
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1u);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, tokenizer_hf, ::testing::Values("gpt2", "gpt4", "digits"));

// Pipeline options the big fixtures do not use (ignore_merges, prefix space on split pieces, every
// Split behavior, inverted splits, literal patterns, single_word/lstrip/rstrip added tokens), on
// seeded random lines of mixed scripts, spaces, marks and emoji.
TEST(tokenizer_hf_variants, EncodeFuzzLinesLikeHuggingFace) {
  const auto lines = split_lines(read_file(fixture("fuzz.txt")));
  size_t checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(fixture("variants"))) {
    if (entry.path().extension() != ".json") continue;
    SCOPED_TRACE(entry.path().filename().string());
    const Tokenizer t = Tokenizer::load(entry.path());
    auto ids_path = entry.path();
    const auto want = read_ids(ids_path.replace_extension(".ids"));
    ASSERT_EQ(want.size(), lines.size());
    std::vector<std::vector<int32_t>> got;
    for (const auto& l : lines) got.push_back(t.encode(l));
    expect_rows_equal(got, want, lines);
    ++checked;
  }
  EXPECT_EQ(checked, 8u);
}

TEST(tokenizer_hf_tokens, SpecialAndAddedTokensKeepTheirIds) {
  const Tokenizer t = Tokenizer::load(fixture("hf_gpt4.json"));
  const auto eot = t.token_to_id("<|endoftext|>");
  const auto start = t.token_to_id("<|im_start|>");
  const auto mask = t.token_to_id("<mask>");
  ASSERT_TRUE(eot && start && mask);
  EXPECT_EQ(*eot, 0);
  EXPECT_EQ(*start, 1);
  EXPECT_EQ(*mask, t.vocab_size() - 1);

  const auto ids = t.encode("<|im_start|>user<|endoftext|>");
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), *start);
  EXPECT_EQ(ids.back(), *eot);
  // lstrip: the spaces before <mask> belong to the token, so they produce no ids of their own.
  EXPECT_EQ(t.encode("a    <mask>"), t.encode("a<mask>"));
  EXPECT_EQ(t.decode(t.encode("x<|endoftext|>y")), "x<|endoftext|>y");
  EXPECT_EQ(t.decode(t.encode("x<|endoftext|>y"), /*skip_special=*/true), "xy");

  const auto added = t.added_tokens();
  ASSERT_EQ(added.size(), 4u);
  EXPECT_EQ(added[3].content, "<mask>");
  EXPECT_EQ(t.id_to_token(*eot), "<|endoftext|>");
  EXPECT_EQ(t.token_to_id("Ġthe").has_value(), true);  // byte-level spelling of " the"
  EXPECT_FALSE(t.token_to_id("no such token at all"));
  EXPECT_FALSE(t.id_to_token(t.vocab_size()));
}

TEST(tokenizer_hf_tokens, GptTwoPrefixSpaceAndAddedWord) {
  const Tokenizer t = Tokenizer::load(fixture("hf_gpt2.json"));
  // add_prefix_space: "Hello" at the start is encoded like " Hello" elsewhere.
  EXPECT_EQ(t.encode("Hello"), t.encode(" Hello"));
  const auto nt = t.token_to_id("New Testament");
  ASSERT_TRUE(nt);
  const auto ids = t.encode("the New Testament");
  EXPECT_EQ(ids.back(), *nt);
}

}  // namespace
