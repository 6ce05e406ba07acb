// The Megatron .bin/.idx writer and reader: byte layout checked by an independent reader,
// round trips for each dtype, atomic appearance, and clear errors for damaged files.

#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "megatron_format_reader.hpp"
#include "nemokit/runtime/data/indexed_dataset.hpp"
#include "support/files.hpp"

using nemokit::test::read_file;

namespace fs = std::filesystem;
using nemokit::rt::IndexedDataset;
using nemokit::rt::IndexedDatasetWriter;
using nemokit::rt::TokenDType;

namespace {

fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::path(NEMOKIT_BINARY_DIR) / "tests" / "data" / "tmp" / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::vector<std::vector<int32_t>> random_docs(size_t n, int32_t max_id, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::vector<int32_t>> docs(n);
  for (auto& d : docs) {
    d.resize(rng() % 300);  // includes empty documents
    for (auto& t : d) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(max_id + 1));
  }
  return docs;
}

void write_docs(const fs::path& prefix, TokenDType dt, const std::vector<std::vector<int32_t>>& docs) {
  IndexedDatasetWriter w(prefix, dt);
  for (const auto& d : docs) w.add_document(d);
  w.finish();
}

std::string error_of(const fs::path& prefix) {
  try {
    IndexedDataset::open(prefix);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(DataIndexedDataset, DtypeFollowsVocabSizeLikeMegatron) {
  EXPECT_EQ(nemokit::rt::token_dtype_for_vocab(4096), TokenDType::UInt16);
  EXPECT_EQ(nemokit::rt::token_dtype_for_vocab(65499), TokenDType::UInt16);
  EXPECT_EQ(nemokit::rt::token_dtype_for_vocab(65500), TokenDType::Int32);
  EXPECT_EQ(nemokit::rt::token_dtype_for_vocab(131072), TokenDType::Int32);
}

TEST(DataIndexedDataset, IndependentReaderSeesMegatronLayout) {
  const auto dir = fresh_dir("layout");
  const auto docs = random_docs(200, 65535, 7);
  write_docs(dir / "shard", TokenDType::UInt16, docs);

  const auto m = nemokit_test::read_megatron(dir / "shard");
  EXPECT_EQ(m.version, 1u);
  EXPECT_EQ(m.dtype_code, 8);
  ASSERT_EQ(m.lengths.size(), docs.size());
  ASSERT_EQ(m.document_indices.size(), docs.size() + 1);
  int64_t byte = 0;
  for (size_t i = 0; i < docs.size(); ++i) {
    EXPECT_EQ(m.lengths[i], static_cast<int32_t>(docs[i].size()));
    EXPECT_EQ(m.pointers[i], byte);
    byte += static_cast<int64_t>(docs[i].size()) * 2;
    EXPECT_EQ(m.document_indices[i], static_cast<int64_t>(i));
    ASSERT_EQ(m.sequences[i].size(), docs[i].size());
    for (size_t t = 0; t < docs[i].size(); ++t) ASSERT_EQ(m.sequences[i][t], docs[i][t]);
  }
  EXPECT_EQ(m.document_indices.back(), static_cast<int64_t>(docs.size()));
  EXPECT_EQ(static_cast<int64_t>(fs::file_size(dir / "shard.bin")), byte);
}

TEST(DataIndexedDataset, RoundTripsEveryIntegerDtype) {
  const auto dir = fresh_dir("dtypes");
  const std::vector<std::pair<TokenDType, int32_t>> cases = {
      {TokenDType::UInt8, 255}, {TokenDType::UInt16, 65535}, {TokenDType::Int32, 2000000000}, {TokenDType::Int64, 7}};
  for (const auto& [dt, max_id] : cases) {
    const auto prefix = dir / nemokit::rt::token_dtype_name(dt);
    const auto docs = random_docs(50, max_id, static_cast<uint32_t>(max_id));
    write_docs(prefix, dt, docs);
    auto ds = IndexedDataset::open(prefix);
    EXPECT_EQ(ds->dtype(), dt);
    ASSERT_EQ(ds->sequence_count(), docs.size());
    EXPECT_EQ(ds->document_count(), docs.size());
    uint64_t total = 0;
    for (size_t i = 0; i < docs.size(); ++i) {
      EXPECT_EQ(ds->sequence(i), docs[i]) << nemokit::rt::token_dtype_name(dt) << " seq " << i;
      total += docs[i].size();
    }
    EXPECT_EQ(ds->total_tokens(), total);
    // The independent reader agrees with ours.
    const auto m = nemokit_test::read_megatron(prefix);
    for (size_t i = 0; i < docs.size(); ++i)
      ASSERT_EQ(m.sequences[i], std::vector<int64_t>(docs[i].begin(), docs[i].end()));
  }
}

TEST(DataIndexedDataset, PartialReadsAndBounds) {
  const auto dir = fresh_dir("partial");
  write_docs(dir / "s", TokenDType::Int32, {{1, 2, 3, 4, 5}, {}, {6, 7}});
  auto ds = IndexedDataset::open(dir / "s");
  std::vector<int32_t> out(3);
  ds->read(0, 1, out);
  EXPECT_EQ(out, (std::vector<int32_t>{2, 3, 4}));
  EXPECT_TRUE(ds->sequence(1).empty());
  EXPECT_THROW(ds->read(0, 3, out), std::out_of_range);
  EXPECT_THROW(ds->read(3, 0, std::span<int32_t>()), std::out_of_range);
}

TEST(DataIndexedDataset, NothingAppearsBeforeFinishAndAbandonedWritesLeaveNoTrace) {
  const auto dir = fresh_dir("atomic");
  {
    IndexedDatasetWriter w(dir / "s", TokenDType::UInt16);
    w.add_document(std::vector<int32_t>{1, 2, 3});
    EXPECT_FALSE(fs::exists(dir / "s.bin"));
    EXPECT_FALSE(fs::exists(dir / "s.idx"));
  }  // destroyed without finish()
  EXPECT_TRUE(fs::is_empty(dir)) << "temporaries left behind";
  IndexedDatasetWriter w(dir / "s", TokenDType::UInt16);
  w.add_document(std::vector<int32_t>{1, 2, 3});
  w.finish();
  EXPECT_TRUE(fs::exists(dir / "s.bin"));
  EXPECT_TRUE(fs::exists(dir / "s.idx"));
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++files;
  EXPECT_EQ(files, 2u);
}

TEST(DataIndexedDataset, TokenThatDoesNotFitTheDtypeIsRejectedWithTheFileName) {
  const auto dir = fresh_dir("range");
  IndexedDatasetWriter w(dir / "s", TokenDType::UInt16);
  try {
    w.add_document(std::vector<int32_t>{1, 70000});
    FAIL() << "accepted 70000 as uint16";
  } catch (const std::out_of_range& e) {
    EXPECT_NE(std::string(e.what()).find((dir / "s").string()), std::string::npos) << e.what();
  }
  EXPECT_THROW(w.add_document(std::vector<int32_t>{-1}), std::out_of_range);
}

TEST(DataIndexedDataset, DamagedFilesGiveErrorsNamingTheFile) {
  const auto dir = fresh_dir("damaged");
  const auto prefix = dir / "s";
  write_docs(prefix, TokenDType::UInt16, {{1, 2, 3}, {4, 5}});
  const std::string good_idx = read_file(prefix.string() + ".idx");
  auto put = [&](const std::string& bytes) {
    std::ofstream(prefix.string() + ".idx", std::ios::binary | std::ios::trunc) << bytes;
  };

  auto expect_error = [&](const std::string& idx_bytes, const std::string& needle) {
    put(idx_bytes);
    const std::string err = error_of(prefix);
    EXPECT_NE(err.find(needle), std::string::npos) << "wanted \"" << needle << "\", got: " << err;
  };
  auto with_byte = [&](size_t at, char v) {
    std::string b = good_idx;
    b[at] = v;
    return b;
  };

  expect_error(with_byte(0, 'X'), "s.idx: bad magic");
  expect_error(with_byte(9, 2), "s.idx: unsupported index version 2");
  expect_error(with_byte(17, 7), "s.idx: dtype code 7 is not an integer token type");
  expect_error(good_idx.substr(0, 20), "s.idx: too short");
  expect_error(good_idx.substr(0, good_idx.size() - 8), "does not match sequence_count 2");
  expect_error(good_idx + std::string(4, '\0'), "does not match sequence_count 2");
  // Sequence 1's pointer (header 34 + 2 lengths * 4 + 8) says byte 2 instead of 6.
  expect_error(with_byte(34 + 8 + 8, 2), "s.idx: sequence 1 starts at byte 2, expected 6");
  // Last document index (the final 8 bytes) wrong.
  expect_error(with_byte(good_idx.size() - 8, 5), "last document index 5");

  put(good_idx);
  EXPECT_EQ(error_of(prefix), "");
  std::ofstream(prefix.string() + ".bin", std::ios::binary | std::ios::app) << "xx";
  EXPECT_NE(error_of(prefix).find("s.bin: size 12 bytes, but the index describes 10 bytes"), std::string::npos)
      << error_of(prefix);
  fs::remove(prefix.string() + ".bin");
  EXPECT_NE(error_of(prefix).find("s.bin: cannot open data file"), std::string::npos) << error_of(prefix);
  EXPECT_NE(error_of(dir / "missing").find("missing.idx: cannot open index"), std::string::npos);
}
