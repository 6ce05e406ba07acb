#pragma once
// Megatron-Core indexed datasets: a .bin file of raw tokens and a .idx file that says where each
// sequence starts. Byte-compatible with megatron.core.datasets.indexed_dataset, so data prepared
// here trains in Megatron and the other way round.
//
// .idx layout (little-endian, no padding):
//   "MMIDIDX\0\0" | u64 version = 1 | u8 dtype code | u64 sequence_count | u64 document_count
//   | i32 lengths[sequence_count] | i64 byte_pointers[sequence_count]
//   | i64 document_indices[document_count]       (0, then the end sequence of each document)

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace nemokit::rt {

// Megatron's dtype codes.
enum class TokenDType : uint8_t {
  UInt8 = 1, Int8 = 2, Int16 = 3, Int32 = 4, Int64 = 5, Float64 = 6, Float32 = 7, UInt16 = 8
};

// Megatron's choice: uint16 when every id fits comfortably (vocab < 65500), else int32.
TokenDType token_dtype_for_vocab(int64_t vocab_size);
size_t token_dtype_size(TokenDType t);
const char* token_dtype_name(TokenDType t);

std::filesystem::path idx_path(const std::filesystem::path& prefix);  // prefix + ".idx"
std::filesystem::path bin_path(const std::filesystem::path& prefix);  // prefix + ".bin"

// Streams documents into prefix.bin / prefix.idx. Tokens go to disk as they come; only the 4-byte
// length of each sequence stays in memory until finish(). Nothing appears at the final paths
// before finish() succeeds: both files are written as temporaries in the same folder, fsynced,
// and renamed (.bin first, so a visible .idx always has its .bin). Not thread-safe.
class IndexedDatasetWriter {
 public:
  IndexedDatasetWriter(std::filesystem::path prefix, TokenDType dtype);
  ~IndexedDatasetWriter();  // removes the temporaries when finish() was not reached
  IndexedDatasetWriter(const IndexedDatasetWriter&) = delete;
  IndexedDatasetWriter& operator=(const IndexedDatasetWriter&) = delete;

  // Adds one document made of one sequence. Throws std::out_of_range for an id the dtype cannot
  // hold (naming the file) and std::runtime_error on write errors.
  void add_document(std::span<const int32_t> tokens);
  void finish();

  uint64_t documents() const { return lengths_.size(); }
  uint64_t tokens() const { return tokens_; }
  const std::filesystem::path& prefix() const { return prefix_; }

 private:
  void flush_buffer();
  std::filesystem::path prefix_;
  TokenDType dtype_;
  std::filesystem::path bin_tmp_, idx_tmp_;
  int bin_fd_ = -1;
  std::vector<unsigned char> buffer_;
  std::vector<int32_t> lengths_;
  uint64_t tokens_ = 0;
  bool finished_ = false;
};

// A read-only view of prefix.bin/.idx. The .bin is memory-mapped; the index arrays are copied
// (they are not aligned in the file). open() checks the magic, version, dtype, that the counts
// match the .idx size exactly, that pointers and lengths agree and stay inside the .bin, and that
// document indices are ordered; every error names the file. Thread-safe for reading.
class IndexedDataset {
 public:
  static std::shared_ptr<const IndexedDataset> open(const std::filesystem::path& prefix);
  ~IndexedDataset();
  IndexedDataset(const IndexedDataset&) = delete;
  IndexedDataset& operator=(const IndexedDataset&) = delete;

  const std::filesystem::path& prefix() const { return prefix_; }
  TokenDType dtype() const { return dtype_; }
  size_t sequence_count() const { return lengths_.size(); }
  size_t document_count() const { return document_indices_.size() - 1; }
  uint64_t total_tokens() const { return total_tokens_; }
  std::span<const int32_t> lengths() const { return lengths_; }
  std::span<const int64_t> pointers() const { return pointers_; }
  std::span<const int64_t> document_indices() const { return document_indices_; }

  // Copies tokens [offset, offset + out.size()) of sequence `seq` into out, widened to int32.
  // Throws std::out_of_range when the range is not inside the sequence.
  void read(size_t seq, size_t offset, std::span<int32_t> out) const;
  std::vector<int32_t> sequence(size_t seq) const;

 private:
  IndexedDataset() = default;
  std::filesystem::path prefix_;
  TokenDType dtype_ = TokenDType::UInt16;
  std::vector<int32_t> lengths_;
  std::vector<int64_t> pointers_;
  std::vector<int64_t> document_indices_;
  uint64_t total_tokens_ = 0;
  const unsigned char* bin_ = nullptr;
  size_t bin_size_ = 0;
};

}  // namespace nemokit::rt
