// BPE training: deterministic, loadable by Hugging Face (checked when the fixtures were made:
// ours_trained.ids is what `tokenizers` encoded with ours_trained.json), and honest about limits.

#include <nemokit/runtime/tokenizer.hpp>

#include <nlohmann/json.hpp>

#include "test_support.hpp"

using nemokit::rt::BpeTrainOptions;
using nemokit::rt::Tokenizer;
using nemokit::rt::train_bpe;
using namespace tokenizer_test;

namespace {

BpeTrainOptions fixture_options(int threads) {
  // The options make_fixtures.py passed to `tokenizer train` for ours_trained.json.
  BpeTrainOptions opt;
  opt.vocab_size = 1200;
  opt.special_tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  opt.threads = threads;
  return opt;
}

TEST(tokenizer_train, ReproducesTheCommittedVocabOnAnyThreadCount) {
  const auto corpus = fixture("train_corpus.txt");
  const Tokenizer two = train_bpe({corpus}, fixture_options(2));
  EXPECT_EQ(two.to_json(), read_file(fixture("ours_trained.json")));
  const Tokenizer one = train_bpe({corpus}, fixture_options(1));
  EXPECT_EQ(one.to_json(), two.to_json());
}

TEST(tokenizer_train, LargeInputStreamsInBlocksToTheSameVocab) {
  // 48 copies (~10 MB) are read in several blocks; every pair count is 48 times larger, so the
  // merges and their order must come out exactly as for one copy.
  TempDir dir;
  const std::string one = read_file(fixture("train_corpus.txt"));
  {
    std::ofstream out(dir / "big.txt", std::ios::binary);
    for (int i = 0; i < 48; ++i) out << one;
  }
  const Tokenizer big = train_bpe({dir / "big.txt"}, fixture_options(2));
  EXPECT_EQ(big.to_json(), read_file(fixture("ours_trained.json")));
}

TEST(tokenizer_train, HuggingFaceEncodesOurVocabAsWeDo) {
  const Tokenizer t = Tokenizer::load(fixture("ours_trained.json"));
  const auto lines = sample_lines();
  const auto want = read_ids(fixture("ours_trained.ids"));
  ASSERT_EQ(lines.size(), want.size());
  for (size_t i = 0; i < lines.size(); ++i) ASSERT_EQ(t.encode(lines[i]), want[i]) << "line " << i + 1;
}

TEST(tokenizer_train, VocabLayoutAndCompression) {
  const Tokenizer t = Tokenizer::load(fixture("ours_trained.json"));
  EXPECT_EQ(t.vocab_size(), 1200);
  EXPECT_EQ(t.token_to_id("<|endoftext|>"), 0);
  EXPECT_EQ(t.token_to_id("<|im_end|>"), 2);
  EXPECT_EQ(t.token_to_id("Ā"), 3);    // byte 0x00: the 256 byte tokens follow the specials
  EXPECT_EQ(t.token_to_id("!"), 3 + 0x21);
  EXPECT_EQ(t.token_to_id("Ġ"), 3 + 0x20);
  // The corpus is the KJV: its most common words must have become single tokens.
  for (const char* w : {"Ġthe", "Ġand", "Ġof", "ĠLORD"}) EXPECT_TRUE(t.token_to_id(w)) << w;
  // And the learned merges really compress text: well under one token per 2 bytes.
  const std::string verse = "And God said, Let there be light: and there was light.";
  EXPECT_LT(t.encode(verse).size() * 2, verse.size());

  const auto doc = nlohmann::json::parse(read_file(fixture("ours_trained.json")));
  EXPECT_EQ(doc["model"]["type"], "BPE");
  EXPECT_EQ(doc["model"]["vocab"].size(), 1200u);
  EXPECT_EQ(doc["model"]["merges"].size(), 1200u - 256u - 3u);
  EXPECT_EQ(doc["added_tokens"].size(), 3u);
}

TEST(tokenizer_train, MinFrequencyStopsEarly) {
  TempDir dir;
  write_file(dir / "tiny.txt", "low lower lowest low low newer newest wider\n");
  BpeTrainOptions opt;
  opt.vocab_size = 4000;
  opt.min_frequency = 2;
  const Tokenizer t = train_bpe({dir / "tiny.txt"}, opt);
  // Only pairs seen at least twice are merged; this text has few of those.
  EXPECT_GT(t.vocab_size(), 256);
  EXPECT_LT(t.vocab_size(), 270);
  EXPECT_TRUE(t.token_to_id("Ġlow"));
  EXPECT_EQ(t.decode(t.encode("lowest newer")), "lowest newer");
}

TEST(tokenizer_train, SpecialTokensAreNotLearnedFrom) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 200; ++i) text += "<|sep|>alpha beta<|sep|>\n";
  write_file(dir / "t.txt", text);
  BpeTrainOptions opt;
  opt.vocab_size = 300;
  opt.special_tokens = {"<|sep|>"};
  const Tokenizer t = train_bpe({dir / "t.txt"}, opt);
  EXPECT_EQ(t.token_to_id("<|sep|>"), 0);
  EXPECT_FALSE(t.token_to_id("<|"));  // the special's text never reached the pair counts
  EXPECT_FALSE(t.token_to_id("sep"));
  EXPECT_EQ(t.encode("<|sep|>").size(), 1u);
}

TEST(tokenizer_train, BadRequestsFailClearly) {
  TempDir dir;
  write_file(dir / "t.txt", "some text\n");
  BpeTrainOptions small;
  small.vocab_size = 100;
  EXPECT_THROW(train_bpe({dir / "t.txt"}, small), std::runtime_error);
  try {
    train_bpe({dir / "missing.txt"}, BpeTrainOptions{});
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.txt"), std::string::npos) << e.what();
  }
  BpeTrainOptions dup;
  dup.special_tokens = {"<a>", "<a>"};
  EXPECT_THROW(train_bpe({dir / "t.txt"}, dup), std::runtime_error);
  BpeTrainOptions not_utf8;
  not_utf8.special_tokens = {"<\xff>"};
  EXPECT_THROW(train_bpe({dir / "t.txt"}, not_utf8), std::runtime_error);
}

}  // namespace
