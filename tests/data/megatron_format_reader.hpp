#pragma once
// A second, deliberately naive reader of Megatron .bin/.idx files, written from the format's
// description (megatron/core/datasets/indexed_dataset.py) and sharing no code with nemokit's
// reader: whole files read into memory, every integer assembled byte by byte, little-endian.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/files.hpp"

namespace nemokit_test {

struct MegatronIndex {
  uint64_t version = 0;
  uint8_t dtype_code = 0;
  std::vector<int32_t> lengths;
  std::vector<int64_t> pointers;
  std::vector<int64_t> document_indices;
  std::vector<std::vector<int64_t>> sequences;  // decoded tokens of each sequence
};

inline uint64_t le_bytes(const std::string& s, size_t at, int n) {
  if (at + static_cast<size_t>(n) > s.size()) throw std::runtime_error("read past end");
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + static_cast<size_t>(i)]);
  return v;
}

inline MegatronIndex read_megatron(const std::filesystem::path& prefix) {
  const std::string idx = nemokit::test::read_file(prefix.string() + ".idx");
  const std::string bin = nemokit::test::read_file(prefix.string() + ".bin");
  MegatronIndex m;
  if (idx.compare(0, 9, std::string("MMIDIDX\0\0", 9)) != 0) throw std::runtime_error("magic");
  size_t at = 9;
  m.version = le_bytes(idx, at, 8), at += 8;
  m.dtype_code = static_cast<uint8_t>(le_bytes(idx, at, 1)), at += 1;
  const uint64_t seqs = le_bytes(idx, at, 8);
  at += 8;
  const uint64_t docs = le_bytes(idx, at, 8);
  at += 8;
  for (uint64_t i = 0; i < seqs; ++i, at += 4) m.lengths.push_back(static_cast<int32_t>(le_bytes(idx, at, 4)));
  for (uint64_t i = 0; i < seqs; ++i, at += 8) m.pointers.push_back(static_cast<int64_t>(le_bytes(idx, at, 8)));
  for (uint64_t i = 0; i < docs; ++i, at += 8)
    m.document_indices.push_back(static_cast<int64_t>(le_bytes(idx, at, 8)));
  if (at != idx.size()) throw std::runtime_error("trailing bytes in idx");
  int width = 0;
  bool is_signed = false;
  switch (m.dtype_code) {
    case 1: width = 1; break;
    case 2: width = 1, is_signed = true; break;
    case 3: width = 2, is_signed = true; break;
    case 4: width = 4, is_signed = true; break;
    case 5: width = 8, is_signed = true; break;
    case 8: width = 2; break;
    default: throw std::runtime_error("dtype code");
  }
  for (uint64_t i = 0; i < seqs; ++i) {
    std::vector<int64_t> toks;
    for (int32_t t = 0; t < m.lengths[i]; ++t) {
      uint64_t raw = le_bytes(bin, static_cast<size_t>(m.pointers[i]) + static_cast<size_t>(t) * width, width);
      int64_t v = static_cast<int64_t>(raw);
      if (is_signed && width < 8 && (raw >> (width * 8 - 1)) & 1) v -= int64_t{1} << (width * 8);
      toks.push_back(v);
    }
    m.sequences.push_back(std::move(toks));
  }
  return m;
}

}  // namespace nemokit_test
