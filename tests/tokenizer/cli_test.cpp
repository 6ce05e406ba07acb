// `nemokit tokenizer train|encode|decode`: exit codes, messages, and the files it reads and writes.

#include <nemokit/runtime/tokenizer.hpp>

#include <algorithm>
#include <cstdlib>

#include "test_support.hpp"

using nemokit::rt::Tokenizer;
using nemokit::rt::tokenizer_command;
using namespace tokenizer_test;

namespace {

struct Result {
  int rc;
  std::string out, err;
};

Result run(const std::vector<std::string>& args) {
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  const int rc = tokenizer_command(args);
  Result r{rc, ::testing::internal::GetCapturedStdout(), ::testing::internal::GetCapturedStderr()};
  return r;
}

TEST(tokenizer_cli, UsageErrorsReturnTwo) {
  EXPECT_EQ(run({}).rc, 2);
  EXPECT_EQ(run({"frobnicate"}).rc, 2);
  EXPECT_EQ(run({"train", "--out", "x.json", "a.txt"}).rc, 2);           // no --vocab-size
  EXPECT_EQ(run({"train", "--vocab-size", "lots", "--out", "x", "a"}).rc, 2);
  EXPECT_EQ(run({"train", "--vocab-size", "500", "a.txt"}).rc, 2);        // no --out
  EXPECT_EQ(run({"train", "--vocab-size", "500", "--out", "x.json"}).rc, 2);  // no files
  EXPECT_EQ(run({"encode", "in.txt"}).rc, 2);                              // no --tokenizer
  EXPECT_EQ(run({"decode", "--tokenizer"}).rc, 2);
  EXPECT_EQ(run({"encode", "--tokenizer", "t.json", "--bogus"}).rc, 2);
  const auto r = run({"encode", "--tokenizer", "t.json", "a", "b"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("only one input file"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
  EXPECT_NE(run({"--help"}).out.find("usage:"), std::string::npos);
}

TEST(tokenizer_cli, EncodeReadsStdinWithoutFile) {
  // Through the real program, so stdin and stdout are a process's own.
  TempDir dir;
  const auto tool = std::filesystem::path(NEMOKIT_BINARY_DIR) / "tests/tokenizer/tokenizer_tool";
  const auto tok = fixture("ours_trained.json");
  write_file(dir / "in.txt", "In the beginning\n\n  two  spaces 🙂\n");
  const std::string cmd = "'" + tool.string() + "' encode --tokenizer '" + tok.string() + "' < '" +
                          (dir / "in.txt").string() + "' > '" + (dir / "out.txt").string() + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const Tokenizer t = Tokenizer::load(tok);
  std::string want;
  for (const char* line : {"In the beginning", "", "  two  spaces 🙂"}) {
    std::string row;
    for (int32_t id : t.encode(line)) row += (row.empty() ? "" : " ") + std::to_string(id);
    want += row + "\n";
  }
  EXPECT_EQ(read_file(dir / "out.txt"), want);
}

TEST(tokenizer_cli, FailuresReturnOneWithTheFileName) {
  TempDir dir;
  const auto missing = (dir / "missing.json").string();
  auto r = run({"encode", "--tokenizer", missing});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find(missing), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;

  const auto tok = fixture("ours_trained.json").string();
  const auto no_input = (dir / "no-input.txt").string();
  r = run({"encode", "--tokenizer", tok, no_input});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find(no_input), std::string::npos) << r.err;

  write_file(dir / "ids.txt", "10 11 12\n10 banana 12\n");
  r = run({"decode", "--tokenizer", tok, (dir / "ids.txt").string()});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("ids.txt:2: \"banana\""), std::string::npos) << r.err;

  write_file(dir / "ids.txt", "99999\n");
  r = run({"decode", "--tokenizer", tok, (dir / "ids.txt").string()});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("ids.txt:1:"), std::string::npos) << r.err;

  r = run({"train", "--vocab-size", "300", "--out", (dir / "t.json").string(),
           (dir / "absent.txt").string()});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("absent.txt"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "t.json"));
}

TEST(tokenizer_cli, TrainEncodeDecodeRoundTrip) {
  TempDir dir;
  const std::string text =
      "In the beginning God created the heaven and the earth.\n"
      "And the earth was without form, and void.\n"
      "  indented line with   runs of spaces\n"
      "ünïcödé and emoji 🙂 and numbers 12345\n"
      "\n"
      "<|endoftext|>after a special\n";
  write_file(dir / "corpus.txt", text + text + text);
  write_file(dir / "input.txt", text);
  const auto tok = (dir / "tok.json").string();
  auto r = run({"train", "--vocab-size", "320", "--special", "<|endoftext|>", "--min-frequency",
                "2", "--out", tok, (dir / "corpus.txt").string()});
  ASSERT_EQ(r.rc, 0) << r.err;
  const Tokenizer t = Tokenizer::load(tok);
  EXPECT_EQ(t.token_to_id("<|endoftext|>"), 0);

  r = run({"encode", "--tokenizer", tok, (dir / "input.txt").string()});
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto lines = split_lines(text);
  const auto id_lines = split_lines(r.out);
  ASSERT_EQ(id_lines.size(), lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string want;
    for (int32_t id : t.encode(lines[i])) want += (want.empty() ? "" : " ") + std::to_string(id);
    EXPECT_EQ(id_lines[i], want) << "line " << i + 1;
  }

  write_file(dir / "ids.txt", r.out);
  r = run({"decode", "--tokenizer", tok, (dir / "ids.txt").string()});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, text);
}

}  // namespace
