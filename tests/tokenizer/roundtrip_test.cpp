// decode(encode(text)) gives back exactly the bytes we started from.

#include <nemokit/runtime/tokenizer.hpp>

#include "test_support.hpp"

using nemokit::rt::Tokenizer;
using namespace tokenizer_test;

namespace {

TEST(tokenizer_roundtrip, EverySampleLineRoundTrips) {
  // ours_trained and hf_digits neither add a prefix space nor strip around added tokens, so
  // nothing is lost on the way (hf_gpt2 adds a leading space, hf_gpt4's <mask> eats spaces).
  for (const char* name : {"ours_trained.json", "hf_digits.json"}) {
    const Tokenizer t = Tokenizer::load(fixture(name));
    const auto lines = sample_lines();
    for (size_t i = 0; i < lines.size(); ++i)
      ASSERT_EQ(t.decode(t.encode(lines[i])), lines[i]) << name << " line " << i + 1;
    const std::string whole = read_file(fixture("sample.txt"));
    EXPECT_EQ(t.decode(t.encode(whole)), whole) << name;
  }
}

TEST(tokenizer_roundtrip, HardCasesRoundTrip) {
  const Tokenizer t = Tokenizer::load(fixture("ours_trained.json"));
  const std::vector<std::string> cases = {
      "",
      " ",
      "\n\n\n",
      "\t \t  \r\n  x",
      std::string(5000, ' '),                       // long runs take the heap merge path
      std::string(3000, 'a') + "b",
      "👨‍👩‍👧‍👦🇯🇵 ünï 中文 ١٢٣ 12345678901234567890",
      std::string("\xff\xfe invalid \xc3 utf-8 \xe2\x82", 22),  // bytes that are not UTF-8
      std::string("nul\0inside", 10),
      "<|endoftext|><|endoftext|>",
      "<|endoftext",                                // a prefix of a special is plain text
  };
  for (const auto& text : cases) EXPECT_EQ(t.decode(t.encode(text)), text);
  // Not UTF-8 still gets ids for every byte: nothing is dropped.
  EXPECT_FALSE(t.encode(std::string("\xff", 1)).empty());
}

TEST(tokenizer_roundtrip, DecodeRejectsUnknownIds) {
  const Tokenizer t = Tokenizer::load(fixture("ours_trained.json"));
  const int32_t bad[] = {5, t.vocab_size()};
  EXPECT_THROW(t.decode(bad), std::out_of_range);
  const int32_t negative[] = {-1};
  EXPECT_THROW(t.decode(negative), std::out_of_range);
}

TEST(tokenizer_roundtrip, GeneratedIdsBeyondTheTokenizerBecomeReplacementCharacters) {
  const Tokenizer t = Tokenizer::load(fixture("ours_trained.json"));
  const std::vector<int32_t> hi = t.encode("hi");
  std::vector<int32_t> ids = hi;
  ids.push_back(t.vocab_size() + 7);  // a padded model row
  ids.insert(ids.end(), hi.begin(), hi.end());
  EXPECT_EQ(t.decode_generated(ids), "hi\xEF\xBF\xBDhi");
  EXPECT_EQ(t.decode_generated(hi), t.decode(hi));
}

}  // namespace
