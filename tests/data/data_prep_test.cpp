// Pretraining data prep end to end on real text (Debian's fortunes package): shards read back by
// an independent reader (and by numpy when present) hold exactly the tokenizer's ids for every
// document, splits follow the ratio, metadata and blend.json describe the files, reruns are
// byte-identical, and bad inputs fail with the file, line or key.

#include "support/numpy_python.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "megatron_format_reader.hpp"
#include "nemokit/runtime/data/gpt_dataset.hpp"
#include "nemokit/runtime/run/paths.hpp"
#include "nemokit/runtime/tokenizer.hpp"
#include "prep/data_prep.hpp"
#include "prep/prep_config.hpp"

#include <toml++/toml.h>

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path kFortunes = "/usr/share/games/fortunes";

// ctest may run this file's tests in parallel processes: each gets its own folder.
fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::path(NEMOKIT_BINARY_DIR) / "tests" / "data" / "tmp" / (name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// The items of a fortune file, each with internal blank lines removed and trailing blanks cut,
// so that one item is one paragraph.
std::vector<std::string> fortune_items(const std::string& set) {
  std::ifstream in(kFortunes / set);
  std::vector<std::string> items;
  std::string line, item;
  while (std::getline(in, line)) {
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    if (line == "%") {
      if (!item.empty()) items.push_back(item);
      item.clear();
    } else if (!line.empty()) {
      item += (item.empty() ? "" : "\n") + line;
    }
  }
  if (!item.empty()) items.push_back(item);
  return items;
}

json read_json(const fs::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

struct Corpus {
  fs::path dir;
  std::vector<std::string> documents;  // in the order prep must read them
};

// inputs/a_wisdom.txt (paragraphs), inputs/b/science.jsonl (one item per line, field "body"),
// plus files prep must ignore: a hidden folder and a .dat file.
Corpus make_corpus(const fs::path& root) {
  Corpus c{root / "inputs", {}};
  fs::create_directories(c.dir / "b");
  fs::create_directories(c.dir / ".hidden");
  const auto wisdom = fortune_items("wisdom");
  const auto science = fortune_items("science");
  EXPECT_GT(wisdom.size(), 100u) << "fortunes not installed? (scripts/setup-deps.sh)";
  EXPECT_GT(science.size(), 100u);
  {
    std::ofstream out(c.dir / "a_wisdom.txt");
    out << "\n\n";  // leading blank lines make no empty document
    for (const auto& it : wisdom) out << it << "\n\n\n";
  }
  {
    std::ofstream out(c.dir / "b" / "science.jsonl");
    for (const auto& it : science) out << json{{"body", it}, {"id", 1}}.dump() << "\n";
  }
  std::ofstream(c.dir / ".hidden" / "x.txt") << "never read\n";
  std::ofstream(c.dir / "b" / "table.dat") << "never read\n";
  c.documents = wisdom;
  c.documents.insert(c.documents.end(), science.begin(), science.end());
  return c;
}

json base_config(const Corpus& c) {
  return {{"inputs", {c.dir.string()}},
          {"jsonl_text_field", "body"},
          {"train_tokenizer", {{"vocab_size", 600}}},
          {"seq_length", 64},
          {"split", "90,5,5"},
          {"shard_size_tokens", 20000},
          {"threads", 2}};
}

int prep(const json& cfg, const fs::path& out, std::string* log_text = nullptr) {
  std::ostringstream log;
  const int rc = nemokit::pretrain::run_pretrain_data_prep(cfg, out, log);
  if (log_text) *log_text = log.str();
  return rc;
}

// Writes the ids our independent reader finds in each shard of the blend, for the Python readers.
fs::path write_expected_tokens(const fs::path& blend_path, const fs::path& out) {
  const json blend = read_json(blend_path);
  json expected = json::object();
  for (const char* split : {"train", "valid", "test"})
    for (size_t i = 1; i < blend[split].size(); i += 2) {
      const std::string prefix = blend[split][i].get<std::string>();
      expected[prefix] = nemokit_test::read_megatron(prefix).sequences;
    }
  std::ofstream(out) << expected.dump();
  return out;
}

// Runs check_idx_numpy.py with PYTHON and ARGS; its exit code and what it printed.
std::pair<int, std::string> check_idx(const std::string& python, const std::string& args, const fs::path& log) {
  const std::string cmd = "'" + python + "' " + std::string(NEMOKIT_SOURCE_DIR) + "/tests/data/check_idx_numpy.py " + args +
                          " >'" + log.string() + "' 2>&1";
  const int st = std::system(cmd.c_str());
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  return {WIFEXITED(st) ? WEXITSTATUS(st) : 128, cmd + "\n" + text.str()};
}

}  // namespace

class DataPrep : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new fs::path(fresh_dir("prep"));
    corpus_ = new Corpus(make_corpus(*root_));
    out_ = new fs::path(*root_ / "out");
    std::string log;
    rc_ = prep(base_config(*corpus_), *out_, &log);
    log_ = new std::string(log);
  }
  static void TearDownTestSuite() {
    std::error_code ignored;
    fs::remove_all(*root_, ignored);
    delete root_;
    delete corpus_;
    delete out_;
    delete log_;
  }
  static fs::path* root_;
  static Corpus* corpus_;
  static fs::path* out_;
  static std::string* log_;
  static int rc_;
};
fs::path* DataPrep::root_ = nullptr;
Corpus* DataPrep::corpus_ = nullptr;
fs::path* DataPrep::out_ = nullptr;
std::string* DataPrep::log_ = nullptr;
int DataPrep::rc_ = -1;

TEST_F(DataPrep, ShardsHoldExactlyTheTokenizersIdsForEveryDocument) {
  ASSERT_EQ(rc_, 0) << *log_;
  const auto tok = nemokit::rt::Tokenizer::load(*out_ / "tokenizer.json");
  EXPECT_EQ(tok.vocab_size(), 600);
  const int32_t eod = *tok.token_to_id("<|endoftext|>");

  std::vector<std::vector<int64_t>> expected;
  for (const auto& d : corpus_->documents) {
    auto ids = tok.encode(d);
    ids.push_back(eod);
    expected.emplace_back(ids.begin(), ids.end());
  }
  // Every split, read by the independent reader, in blend.json's order.
  const json blend = read_json(*out_ / "blend.json");
  std::vector<std::vector<int64_t>> all;
  std::map<std::string, size_t> docs_per_split;
  for (const char* split : {"train", "valid", "test"}) {
    std::vector<std::vector<int64_t>> split_docs;
    ASSERT_TRUE(blend.contains(split));
    for (size_t i = 1; i < blend[split].size(); i += 2) {
      const auto m = nemokit_test::read_megatron(blend[split][i].get<std::string>());
      EXPECT_EQ(m.dtype_code, 8) << "vocab 600 must be stored as uint16";
      split_docs.insert(split_docs.end(), m.sequences.begin(), m.sequences.end());
    }
    // Documents keep their input order within a split.
    size_t at = 0;
    for (const auto& d : split_docs) {
      while (at < expected.size() && expected[at] != d) ++at;
      ASSERT_LT(at, expected.size()) << split << ": a document out of order or not from the input";
      ++at;
    }
    docs_per_split[split] = split_docs.size();
    all.insert(all.end(), split_docs.begin(), split_docs.end());
  }
  // Together the splits are exactly the documents, each once.
  auto sorted_expected = expected;
  std::sort(sorted_expected.begin(), sorted_expected.end());
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all, sorted_expected);
  const double n = static_cast<double>(expected.size());
  EXPECT_NEAR(static_cast<double>(docs_per_split["train"]), 0.90 * n, 1.0);
  EXPECT_NEAR(static_cast<double>(docs_per_split["valid"]), 0.05 * n, 1.0);
  EXPECT_NEAR(static_cast<double>(docs_per_split["test"]), 0.05 * n, 1.0);
}

TEST_F(DataPrep, MetadataAndBlendDescribeTheArtifact) {
  ASSERT_EQ(rc_, 0) << *log_;
  const json meta = read_json(*out_ / "metadata.json");
  EXPECT_EQ(meta["type"], "PretrainBlendsArtifact");
  EXPECT_EQ(meta["dtype"], "uint16");
  EXPECT_EQ(meta["seq_length"], 64);
  EXPECT_EQ(meta["documents"].get<size_t>(), corpus_->documents.size());
  EXPECT_EQ(meta["blend_path"], (*out_ / "blend.json").string());
  EXPECT_EQ(meta["tokenizer"]["path"], (*out_ / "tokenizer.json").string());
  EXPECT_EQ(meta["config"]["jsonl_text_field"], "body");
  EXPECT_FALSE(meta["created_at"].get<std::string>().empty());
  ASSERT_EQ(meta["source_datasets"].size(), 2u) << "hidden folders and .dat files must be ignored";
  EXPECT_EQ(meta["source_datasets"][0]["path"], (corpus_->dir / "a_wisdom.txt").string());
  EXPECT_EQ(meta["source_datasets"][0]["size"], fs::file_size(corpus_->dir / "a_wisdom.txt"));
  EXPECT_EQ(meta["source_datasets"][1]["format"], "jsonl");
  EXPECT_EQ(meta["source_datasets"][0]["sha256"].get<std::string>().size(), 64u);

  uint64_t tokens = 0, shards = 0;
  const json blend = read_json(*out_ / "blend.json");
  for (const char* split : {"train", "valid", "test"}) {
    const auto& s = meta["splits"][split];
    uint64_t split_tokens = 0;
    double weights = 0;
    for (size_t i = 0; i < blend[split].size(); i += 2) {
      weights += blend[split][i].get<double>();
      const auto ds = nemokit::rt::IndexedDataset::open(blend[split][i + 1].get<std::string>());
      split_tokens += ds->total_tokens();
      ++shards;
    }
    EXPECT_NEAR(weights, 1.0, 1e-9) << split;
    EXPECT_EQ(s["tokens"].get<uint64_t>(), split_tokens) << split;
    tokens += split_tokens;
  }
  EXPECT_EQ(meta["total_tokens"].get<uint64_t>(), tokens);
  EXPECT_EQ(meta["shards"].get<uint64_t>(), shards);
  EXPECT_GE(meta["splits"]["train"]["shards"].size(), 2u) << "shard_size_tokens 20000 must roll over";

  // The trainer's path: blend.json -> sampler over the train shards.
  auto sampler = nemokit::rt::open_blended_sampler(nemokit::rt::read_blend_split(*out_ / "blend.json", "train"), 64, 1);
  EXPECT_EQ(sampler.next_batch(4).size(), 4u * 65u);
}

TEST_F(DataPrep, NumpyReadsTheShardsToTheSameTokens) {
  ASSERT_EQ(rc_, 0) << *log_;
  if (const std::string why = nemokit::test::numpy_skip_reason(); !why.empty()) GTEST_SKIP() << why;
  // The test hands numpy the ids our independent reader expects, per shard.
  const fs::path expected = write_expected_tokens(*out_ / "blend.json", *root_ / "expected_tokens.json");
  const auto [rc, out] = check_idx(nemokit::test::numpy_python(), (*out_ / "blend.json").string() + " " + expected.string(),
                                   *root_ / "numpy.log");
  EXPECT_EQ(rc, 0) << out;
}

// megatron-core's own IndexedDataset and GPTDataset builder (PyPI, with torch; scripts/test.sh
// installs them) read the same shards; where it cannot be imported the test says why as a skip.
TEST_F(DataPrep, MegatronCoreReadsTheShardsAndBuildsGptSamples) {
  ASSERT_EQ(rc_, 0) << *log_;
  const fs::path expected = write_expected_tokens(*out_ / "blend.json", *root_ / "expected_tokens_megatron.json");
  const auto [rc, out] = check_idx("python3", "--megatron " + (*out_ / "blend.json").string() + " " + expected.string(),
                                   *root_ / "megatron.log");
  if (rc == 77) GTEST_SKIP() << out;
  EXPECT_EQ(rc, 0) << out;
}

TEST_F(DataPrep, RerunIsByteIdenticalAndDropsStaleShards) {
  ASSERT_EQ(rc_, 0) << *log_;
  const json first = read_json(*out_ / "metadata.json");
  const auto out2 = *root_ / "out2";
  ASSERT_EQ(prep(base_config(*corpus_), out2), 0);
  const json second = read_json(out2 / "metadata.json");
  EXPECT_EQ(first["content_digest"], second["content_digest"]);
  EXPECT_EQ(first["tokenizer"]["sha256"], second["tokenizer"]["sha256"]);

  // Same folder, bigger shards: fewer shard files, the old extra ones gone.
  auto cfg = base_config(*corpus_);
  cfg["shard_size_tokens"] = 100000000;
  cfg["tokenizer"] = (out2 / "tokenizer.json").string();
  cfg.erase("train_tokenizer");
  ASSERT_EQ(prep(cfg, out2), 0);
  EXPECT_TRUE(fs::exists(out2 / "train" / "shard_000000.bin"));
  EXPECT_FALSE(fs::exists(out2 / "train" / "shard_000001.bin"));
  EXPECT_FALSE(fs::exists(out2 / "train" / "shard_000001.idx"));
  const json third = read_json(out2 / "metadata.json");
  EXPECT_EQ(third["total_tokens"], first["total_tokens"]);
  EXPECT_EQ(third["tokenizer"]["trained"], false);
  for (const auto& e : fs::recursive_directory_iterator(out2))
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
}

// metadata.json marks a folder complete (the trainer prepares a folder without one): a rerun that
// fails (or is killed, scripts/crash_consistency.sh) after changing shards must not leave the
// earlier run's metadata over them.
TEST_F(DataPrep, InterruptedRerunLeavesNoEarlierMetadataOverChangedShards) {
  ASSERT_EQ(rc_, 0) << *log_;
  const auto out = *root_ / "out-interrupted";
  ASSERT_EQ(prep(base_config(*corpus_), out), 0);
  ASSERT_TRUE(fs::exists(out / "metadata.json"));
  // The same corpus and a JSONL file that breaks at its end: the rerun writes shards, then fails.
  const auto inputs = *root_ / "inputs-broken";
  fs::create_directories(inputs);
  fs::copy(corpus_->dir / "a_wisdom.txt", inputs / "a_wisdom.txt");
  std::ofstream(inputs / "z.jsonl") << "{\"body\": \"fine\"}\n{broken\n";
  auto cfg = base_config(*corpus_);
  cfg["inputs"] = {inputs.string()};
  cfg["tokenizer"] = (out / "tokenizer.json").string();
  cfg.erase("train_tokenizer");
  cfg["shard_size_tokens"] = 1000;
  std::string log;
  ASSERT_EQ(prep(cfg, out, &log), 1) << log;
  EXPECT_NE(log.find((inputs / "z.jsonl").string() + ":2: invalid JSON"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(out / "metadata.json")) << "the earlier run's metadata.json describes shards this run replaced";
}

// Temporaries a killed run left (NAME.tmp-PID-N) are no part of the data: the next run removes
// those of processes that are gone (the artifact's manifest would list them), not a live one's.
TEST_F(DataPrep, RerunRemovesTemporariesOfKilledRuns) {
  ASSERT_EQ(rc_, 0) << *log_;
  const auto out = *root_ / "out-temporaries";
  ASSERT_EQ(prep(base_config(*corpus_), out), 0);
  const fs::path dead = out / "train" / "shard_000000.bin.tmp-99999999-3";  // above any pid_max
  const fs::path dead_top = out / "blend.json.tmp-99999999-4";
  const fs::path live = out / "train" / ("shard_000001.idx.tmp-" + std::to_string(::getpid()) + "-5");
  for (const auto& p : {dead, dead_top, live}) std::ofstream(p) << "partial";
  ASSERT_EQ(prep(base_config(*corpus_), out), 0);
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_FALSE(fs::exists(dead_top));
  EXPECT_TRUE(fs::exists(live)) << "a running process's temporary stays";
}

TEST(DataPrepErrors, BadInputsNameTheFileLineOrKey) {
  const auto dir = fresh_dir("prep_errors");
  fs::create_directories(dir / "in");
  std::ofstream(dir / "in" / "a.jsonl") << "{\"text\": \"fine\"}\n\n{\"text\": 3}\n";
  std::ofstream(dir / "in" / "b.jsonl") << "{\"text\": \"fine\"}\n{\"txt\": \"x\"}\n";
  std::ofstream(dir / "in" / "c.jsonl") << "{\"text\": \"fine\"}\n{broken\n";
  const json tok_train = {{"vocab_size", 300}};
  auto run = [&](json cfg, int want_rc, const std::string& needle) {
    std::string log;
    EXPECT_EQ(prep(cfg, dir / "out", &log), want_rc) << log;
    EXPECT_NE(log.find(needle), std::string::npos) << "wanted \"" << needle << "\" in: " << log;
  };
  run({{"inputs", {(dir / "in" / "a.jsonl").string()}}, {"train_tokenizer", tok_train}}, 1,
      (dir / "in" / "a.jsonl").string() + ":3: field \"text\" is number");
  run({{"inputs", {(dir / "in" / "b.jsonl").string()}}, {"train_tokenizer", tok_train}}, 1,
      (dir / "in" / "b.jsonl").string() + ":2: no field \"text\"");
  run({{"inputs", {(dir / "in" / "c.jsonl").string()}}, {"train_tokenizer", tok_train}}, 1,
      (dir / "in" / "c.jsonl").string() + ":2: invalid JSON");
  run({{"inputs", {(dir / "nope").string()}}, {"train_tokenizer", tok_train}}, 1,
      (dir / "nope").string() + ": input does not exist");
  run({{"inputs", {"x"}}, {"train_tokenizer", tok_train}, {"sequence_length", 5}}, 2, "data.sequence_length: unknown key");
  run({{"inputs", {"x"}}}, 2, "data.tokenizer: give exactly one of");
  run({{"inputs", {"x"}}, {"train_tokenizer", tok_train}, {"split", "98,1"}}, 2, "data.split: needs 3 parts");
  run({{"inputs", {"x"}}, {"train_tokenizer", tok_train}, {"seq_length", "long"}}, 2, "data.seq_length: must be an integer");
  run({{"inputs", {"x"}}, {"train_tokenizer", {{"vocab_size", 300}, {"size", 1}}}}, 2, "data.train_tokenizer.size: unknown key");
  run({{"inputs", 5}, {"train_tokenizer", tok_train}}, 2, "data.inputs: must be a path");
  EXPECT_FALSE(fs::exists(dir / "out" / "metadata.json")) << "a failed prep must not look complete";
}

TEST(DataPrepConfig, TinyConfigDataTableIsValid) {
  // The tiny config's [data] table, read with toml++ and handed over as JSON the way the CLI does.
  const auto path = fs::path(NEMOKIT_SOURCE_DIR) / "plugins/stage_pretrain/configs/nano3/tiny.toml";
  const toml::table tbl = toml::parse_file(path.string());
  ASSERT_TRUE(tbl["data"].is_table()) << path;
  std::ostringstream text;
  text << toml::json_formatter{*tbl["data"].as_table()};
  const json data = json::parse(text.str());
  const auto c = nemokit::pretrain::parse_prep_config(data);
  ASSERT_TRUE(c.train_tokenizer.has_value());
  EXPECT_EQ(c.train_tokenizer->vocab_size, 4096);
  EXPECT_EQ(c.seq_length, 128);
  EXPECT_EQ(c.split, (std::vector<double>{98, 1, 1}));
  EXPECT_EQ(c.text_split, nemokit::pretrain::TextSplit::Paragraph);
}

TEST(DataPrepConfig, OutputOnlyTableServesTrainingButNotPreparation) {
  // super3's configs train on data prepared elsewhere: [data] holds only `output`. Training reads
  // it with the same parser data prep uses; preparing from it says what is missing.
  const json data = {{"output", "~/prepared"}};
  const auto c = nemokit::pretrain::parse_prep_config(data);
  ASSERT_TRUE(c.output.has_value());
  EXPECT_EQ(*c.output, nemokit::rt::expand_home("~/prepared"));
  EXPECT_EQ(c.table, data);
  EXPECT_TRUE(c.inputs.empty());
  std::string log;
  EXPECT_EQ(prep(data, fresh_dir("prep_output_only") / "out", &log), 2);
  EXPECT_NE(log.find("data.inputs: missing"), std::string::npos) << log;
  EXPECT_THROW(nemokit::pretrain::data_table(json::object()), std::invalid_argument);
  EXPECT_EQ(nemokit::pretrain::data_table(json{{"data", data}}), data);
}
