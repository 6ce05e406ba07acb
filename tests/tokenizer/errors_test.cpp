// Malformed or unsupported tokenizer.json files fail with the file name and the JSON key.

#include <nemokit/runtime/tokenizer.hpp>

#include <functional>
#include <nlohmann/json.hpp>

#include "test_support.hpp"

using nemokit::rt::Tokenizer;
using namespace tokenizer_test;
using Json = nlohmann::ordered_json;

namespace {

class tokenizer_errors : public ::testing::Test {
 protected:
  // A valid document to break one key at a time.
  Json base = Json::parse(read_file(fixture("ours_trained.json")));
  TempDir dir;

  // Writes `doc` (or raw text) to a file, loads it, and returns the error message.
  std::string load_error(const std::string& text) {
    const auto path = dir / "tokenizer.json";
    write_file(path, text);
    try {
      Tokenizer::load(path);
    } catch (const std::runtime_error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path.string()), std::string::npos) << "no file name in: " << msg;
      return msg;
    }
    ADD_FAILURE() << "loaded without error: " << text.substr(0, 200);
    return {};
  }
  std::string broken(const std::function<void(Json&)>& edit) {
    Json doc = base;
    edit(doc);
    return load_error(doc.dump());
  }
};

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << (msg)

TEST_F(tokenizer_errors, InvalidJsonNamesLineAndColumn) {
  const auto msg = load_error("{\n  \"model\": {\n    \"vocab\": {,\n  }\n}\n");
  EXPECT_HAS(msg, ":3:");
  EXPECT_HAS(msg, "invalid JSON");
  EXPECT_HAS(load_error("[1, 2, 3]"), "top level");
  // A number no double holds is the parser's out_of_range, not its parse_error: named the same.
  EXPECT_HAS(load_error("{\"model\": {\"dropout\": 1e999}}"), "invalid JSON");
}

TEST_F(tokenizer_errors, MissingFile) {
  try {
    Tokenizer::load(dir / "nope.json");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_HAS(std::string(e.what()), "nope.json");
    EXPECT_HAS(std::string(e.what()), "cannot open");
  }
}

TEST_F(tokenizer_errors, UnsupportedModel) {
  EXPECT_HAS(broken([](Json& d) { d["model"]["type"] = "WordPiece"; }), "key 'model.type'");
  EXPECT_HAS(broken([](Json& d) { d.erase("model"); }), "key 'model'");
  EXPECT_HAS(broken([](Json& d) { d["model"]["dropout"] = 0.1; }), "key 'model.dropout'");
  EXPECT_HAS(broken([](Json& d) { d["model"]["continuing_subword_prefix"] = "##"; }),
             "key 'model.continuing_subword_prefix'");
  EXPECT_HAS(broken([](Json& d) { d["model"]["byte_fallback"] = true; }), "key 'model.byte_fallback'");
  EXPECT_HAS(broken([](Json& d) { d["model"]["unk_token"] = "<unk>"; }), "key 'model.unk_token'");
}

TEST_F(tokenizer_errors, BadVocabAndMerges) {
  EXPECT_HAS(broken([](Json& d) { d["model"]["vocab"]["Ġthe"] = "x"; }), "key 'model.vocab.Ġthe'");
  EXPECT_HAS(broken([](Json& d) { d["model"]["vocab"]["zz"] = -3; }), "key 'model.vocab.zz'");
  EXPECT_HAS(broken([](Json& d) { d["model"].erase("vocab"); }), "key 'model.vocab'");
  EXPECT_HAS(broken([](Json& d) { d["model"]["merges"][3] = Json::array({"Ġthe", "nowhere"}); }),
             "key 'model.merges[3]'");
  EXPECT_HAS(broken([](Json& d) { d["model"]["merges"][0] = "nospace"; }), "key 'model.merges[0]'");
  EXPECT_HAS(broken([](Json& d) { d["model"]["merges"][1] = 42; }), "key 'model.merges[1]'");
  EXPECT_HAS(broken([](Json& d) { d["model"]["merges"] = "a b"; }), "key 'model.merges'");
}

// Tables are indexed by id: an id in the billions is refused by key instead of allocating them.
TEST_F(tokenizer_errors, HugeIdsNameTheKey) {
  const auto vocab = broken([](Json& d) { d["model"]["vocab"]["zz"] = 2000000000; });
  EXPECT_HAS(vocab, "key 'model.vocab.zz': token id 2000000000 out of range");
  EXPECT_HAS(broken([](Json& d) { d["added_tokens"][0]["id"] = 2000000000; }), "key 'added_tokens[0].id'");
  // Ids past the vocab but within the limit are holes, as Hugging Face allows.
  Json doc = base;
  doc["added_tokens"][0]["id"] = 300000;
  const auto path = dir / "sparse.json";
  write_file(path, doc.dump());
  EXPECT_EQ(Tokenizer::load(path).vocab_size(), 300001);
}

TEST_F(tokenizer_errors, UnsupportedPipelineParts) {
  EXPECT_HAS(broken([](Json& d) { d["normalizer"] = {{"type", "NFC"}}; }), "key 'normalizer.type'");
  EXPECT_HAS(broken([](Json& d) { d["decoder"] = {{"type", "WordPiece"}}; }), "key 'decoder.type'");
  EXPECT_HAS(broken([](Json& d) { d["pre_tokenizer"] = {{"type", "Whitespace"}}; }),
             "key 'pre_tokenizer.type'");
  EXPECT_HAS(broken([](Json& d) {
               d["pre_tokenizer"]["pretokenizers"][1] = {{"type", "Metaspace"}};
             }),
             "key 'pre_tokenizer.pretokenizers[1].type'");
  EXPECT_HAS(broken([](Json& d) { d["pre_tokenizer"] = nullptr; }), "key 'pre_tokenizer'");
  // A Split alone is not byte-level: the BPE would see raw characters.
  EXPECT_HAS(broken([](Json& d) { d["pre_tokenizer"] = d["pre_tokenizer"]["pretokenizers"][0]; }),
             "no ByteLevel");
  EXPECT_HAS(broken([](Json& d) {
               d["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"Regex", "(unclosed"}};
             }),
             "key 'pre_tokenizer.pretokenizers[0].pattern'");
  EXPECT_HAS(broken([](Json& d) { d["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Sideways"; }),
             "key 'pre_tokenizer.pretokenizers[0].behavior'");
  EXPECT_HAS(broken([](Json& d) { d["pre_tokenizer"]["pretokenizers"][1]["use_regex"] = "yes"; }),
             "key 'pre_tokenizer.pretokenizers[1].use_regex'");
}

TEST_F(tokenizer_errors, BadAddedTokens) {
  EXPECT_HAS(broken([](Json& d) { d["added_tokens"][0].erase("id"); }), "key 'added_tokens[0].id'");
  EXPECT_HAS(broken([](Json& d) { d["added_tokens"][1]["content"] = 7; }),
             "key 'added_tokens[1].content'");
  EXPECT_HAS(broken([](Json& d) { d["added_tokens"] = {{"id", 1}}; }), "key 'added_tokens");
}

TEST_F(tokenizer_errors, FromJsonNamesTheOrigin) {
  try {
    Tokenizer::from_json("{\"model\": {\"type\": \"Unigram\"}}", "inline-config");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_HAS(std::string(e.what()), "inline-config: key 'model.type'");
  }
}

}  // namespace
