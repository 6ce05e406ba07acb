#pragma once
// NumPy .npy files (format version 1.0): a magic string, a Python-literal header naming dtype,
// order and shape, then the raw little-endian data. numpy.load reads what write_npy writes, and
// read_npy reads C-ordered little-endian arrays of the dtypes below. Used for packed SFT data,
// whose readers include Python tools.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace nemokit::rt {

enum class NpyType { U8, I32, I64, F32 };

struct NpyArray {
  NpyType type = NpyType::I32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // numel * item size

  int64_t numel() const;
  template <class T> const T* as() const { return reinterpret_cast<const T*>(bytes.data()); }
};

size_t npy_item_size(NpyType t);
const char* npy_descr(NpyType t);  // "<i4", "|u1", ...

// Writes `count` items of `data` with `shape` atomically (temp file + rename).
void write_npy(const std::filesystem::path& path, NpyType type, const std::vector<int64_t>& shape, const void* data);
// Reads a whole array; throws std::runtime_error naming the file for anything else (Fortran
// order, big-endian or unsupported dtype, truncated data).
NpyArray read_npy(const std::filesystem::path& path);

}  // namespace nemokit::rt
