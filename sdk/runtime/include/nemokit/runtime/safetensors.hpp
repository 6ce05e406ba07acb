// safetensors files: an 8-byte little-endian header length, a JSON header naming each
// tensor's dtype, shape and byte range, then the data. The reader checks the whole header
// (length bounds, known dtypes, sizes matching shapes, ranges inside the file, no overlaps)
// before any tensor is read, and every error names the file and the tensor.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "nemokit/runtime/tensor.hpp"

namespace nemokit::rt {

struct SafetensorsEntry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range relative to the data section
};

class SafetensorsFile {
 public:
  // Maps the file and validates its header; throws std::runtime_error naming the file.
  static SafetensorsFile open(const std::string& path);
  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  const SafetensorsEntry* find(const std::string& name) const;
  const nlohmann::json& metadata() const { return metadata_; }
  // A copy of the tensor as stored.
  Tensor load(const std::string& name) const;
  // A copy converted to float32 (from F32 or BF16).
  Tensor load_f32(const std::string& name) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  std::vector<SafetensorsEntry> entries_;
  nlohmann::json metadata_ = nlohmann::json::object();
  const std::byte* data_ = nullptr;  // start of the data section inside the mapping
  void* map_ = nullptr;
  size_t map_size_ = 0;
};

using NamedTensor = std::pair<std::string, Tensor>;

// Writes tensors (in the given order) atomically: PATH.tmp, fsync, rename.
void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const nlohmann::json& metadata = nlohmann::json::object());

// Parses a dtype string of the header ("F32", "BF16", ...); false for unsupported ones.
bool parse_safetensors_dtype(const std::string& s, DType& out);

}  // namespace nemokit::rt
