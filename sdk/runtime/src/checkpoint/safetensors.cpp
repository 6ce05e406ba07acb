#include "nemokit/runtime/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "nemokit/runtime/atomic_file.hpp"
#include "nemokit/runtime/json_file.hpp"

namespace nemokit::rt {
namespace {

using json = nlohmann::json;
constexpr uint64_t kMaxHeader = 100ull << 20;  // the reference implementation's limit

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

}  // namespace

bool parse_safetensors_dtype(const std::string& s, DType& out) {
  if (s == "F32") out = DType::f32;
  else if (s == "BF16") out = DType::bf16;
  else if (s == "I32") out = DType::i32;
  else if (s == "I64") out = DType::i64;
  else return false;
  return true;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail(path, "cannot stat");
  }
  const uint64_t size = uint64_t(st.st_size);
  if (size < 8) {
    ::close(fd);
    fail(path, "too short for a safetensors header (" + std::to_string(size) + " bytes)");
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) fail(path, "cannot map the file");
  f.map_ = map;
  f.map_size_ = size;
  const auto* bytes = static_cast<const std::byte*>(map);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | uint64_t(bytes[i]);
  if (header_len > kMaxHeader) fail(path, "header length " + std::to_string(header_len) + " exceeds the 100 MiB limit");
  if (header_len > size - 8)
    fail(path, "header length " + std::to_string(header_len) + " runs past the end of the file (" +
                   std::to_string(size) + " bytes)");
  json header;
  try {
    header = json::parse(reinterpret_cast<const char*>(bytes + 8), reinterpret_cast<const char*>(bytes + 8 + header_len));
  } catch (const json::exception& e) {
    fail(path, std::string("header is not valid JSON: ") + json_error_text(e));
  }
  if (!header.is_object()) fail(path, "header is not a JSON object");
  const uint64_t data_size = size - 8 - header_len;
  f.data_ = bytes + 8 + header_len;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") {
      if (!it->is_object()) fail(path, "__metadata__ is not an object");
      f.metadata_ = *it;
      continue;
    }
    const json& e = *it;
    auto where = "tensor '" + name + "': ";
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
      fail(path, where + "needs dtype, shape and data_offsets");
    SafetensorsEntry entry;
    entry.name = name;
    if (!e["dtype"].is_string() || !parse_safetensors_dtype(e["dtype"].get<std::string>(), entry.dtype))
      fail(path, where + "unsupported dtype " + e["dtype"].dump());
    if (!e["shape"].is_array()) fail(path, where + "shape is not a list");
    uint64_t numel = 1;
    for (const auto& d : e["shape"]) {
      if (!d.is_number_unsigned()) fail(path, where + "shape entries must be non-negative integers");
      uint64_t dim = d.get<uint64_t>();
      if (dim && numel > (uint64_t(1) << 62) / dim) fail(path, where + "shape overflows");
      numel *= dim;
      entry.shape.push_back(int64_t(dim));
    }
    const json& off = e["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      fail(path, where + "data_offsets must be two non-negative integers");
    entry.begin = off[0].get<uint64_t>();
    entry.end = off[1].get<uint64_t>();
    if (entry.begin > entry.end) fail(path, where + "data_offsets are reversed");
    if (entry.end > data_size)
      fail(path, where + "data ends at byte " + std::to_string(entry.end) + " but the data section has " +
                     std::to_string(data_size));
    if (entry.end - entry.begin != numel * dtype_size(entry.dtype))
      fail(path, where + "holds " + std::to_string(entry.end - entry.begin) + " bytes, shape and dtype need " +
                     std::to_string(numel * dtype_size(entry.dtype)));
    f.entries_.push_back(std::move(entry));
  }
  std::vector<const SafetensorsEntry*> sorted;
  for (auto& e : f.entries_) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < sorted.size(); ++i)
    if (sorted[i]->begin < sorted[i - 1]->end && sorted[i]->begin != sorted[i]->end)
      fail(path, "tensors '" + sorted[i - 1]->name + "' and '" + sorted[i]->name + "' overlap");
  return f;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& o) noexcept { *this = std::move(o); }

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& o) noexcept {
  if (this != &o) {
    if (map_) ::munmap(map_, map_size_);
    path_ = std::move(o.path_);
    entries_ = std::move(o.entries_);
    metadata_ = std::move(o.metadata_);
    data_ = o.data_;
    map_ = o.map_;
    map_size_ = o.map_size_;
    o.map_ = nullptr;
    o.data_ = nullptr;
  }
  return *this;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, map_size_);
}

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

Tensor SafetensorsFile::load(const std::string& name) const {
  const SafetensorsEntry* e = find(name);
  if (!e) fail(path_, "no tensor named '" + name + "'");
  Tensor t = Tensor::empty(e->shape, e->dtype);
  if (t.nbytes()) std::memcpy(t.raw(), data_ + e->begin, t.nbytes());
  return t;
}

Tensor SafetensorsFile::load_f32(const std::string& name) const {
  Tensor t = load(name);
  if (t.dtype() == DType::f32) return t;
  if (t.dtype() == DType::bf16) return t.to(DType::f32);
  fail(path_, "tensor '" + name + "' is " + dtype_name(t.dtype()) + ", expected F32 or BF16");
}

void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors, const json& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (!t.is_contiguous()) fail(path, "tensor '" + name + "' is not contiguous");
    if (header.contains(name)) fail(path, "duplicate tensor name '" + name + "'");
    header[name] = {{"dtype", dtype_name(t.dtype())}, {"shape", t.shape()}, {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string head = header.dump();
  head.append((8 - head.size() % 8) % 8, ' ');  // keeps the data section 8-byte aligned
  std::string bytes;
  bytes.reserve(8 + head.size() + offset);
  uint64_t n = head.size();
  for (int i = 0; i < 8; ++i) bytes.push_back(char((n >> (8 * i)) & 0xff));
  bytes += head;
  for (const auto& [name, t] : tensors) bytes.append(static_cast<const char*>(t.raw()), t.nbytes());
  write_file_atomic(path, bytes);
}

}  // namespace nemokit::rt
