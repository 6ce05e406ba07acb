#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "nemokit/runtime/atomic_file.hpp"
#include "nemokit/runtime/data/indexed_dataset.hpp"

namespace nemokit::rt {
namespace {

constexpr char kMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', '\0', '\0'};
constexpr size_t kBufferBytes = 1 << 20;

template <typename T>
void append_le(std::string& out, T value) {
  // The format is little-endian; so is every machine nemokit targets (x86-64, aarch64).
  static_assert(std::endian::native == std::endian::little);
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

template <typename T>
bool store_tokens(std::span<const int32_t> tokens, std::vector<unsigned char>& buffer) {
  const size_t start = buffer.size();
  buffer.resize(start + tokens.size() * sizeof(T));
  auto* out = buffer.data() + start;
  for (int32_t t : tokens) {
    if (t < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
        t > static_cast<int64_t>(std::numeric_limits<T>::max())) {
      buffer.resize(start);
      return false;
    }
    const T v = static_cast<T>(t);
    std::memcpy(out, &v, sizeof(T));
    out += sizeof(T);
  }
  return true;
}

}  // namespace

TokenDType token_dtype_for_vocab(int64_t vocab_size) {
  return vocab_size < 65500 ? TokenDType::UInt16 : TokenDType::Int32;
}

size_t token_dtype_size(TokenDType t) {
  switch (t) {
    case TokenDType::UInt8:
    case TokenDType::Int8: return 1;
    case TokenDType::Int16:
    case TokenDType::UInt16: return 2;
    case TokenDType::Int32:
    case TokenDType::Float32: return 4;
    case TokenDType::Int64:
    case TokenDType::Float64: return 8;
  }
  return 0;
}

const char* token_dtype_name(TokenDType t) {
  switch (t) {
    case TokenDType::UInt8: return "uint8";
    case TokenDType::Int8: return "int8";
    case TokenDType::Int16: return "int16";
    case TokenDType::Int32: return "int32";
    case TokenDType::Int64: return "int64";
    case TokenDType::Float64: return "float64";
    case TokenDType::Float32: return "float32";
    case TokenDType::UInt16: return "uint16";
  }
  return "unknown";
}

std::filesystem::path idx_path(const std::filesystem::path& prefix) {
  auto p = prefix;
  p += ".idx";
  return p;
}

std::filesystem::path bin_path(const std::filesystem::path& prefix) {
  auto p = prefix;
  p += ".bin";
  return p;
}

IndexedDatasetWriter::IndexedDatasetWriter(std::filesystem::path prefix, TokenDType dtype)
    : prefix_(std::move(prefix)), dtype_(dtype) {
  if (dtype_ == TokenDType::Float32 || dtype_ == TokenDType::Float64)
    throw std::invalid_argument(prefix_.string() + ": token data needs an integer dtype");
  bin_tmp_ = temp_path_beside(bin_path(prefix_));
  idx_tmp_ = temp_path_beside(idx_path(prefix_));
  bin_fd_ = ::open(bin_tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (bin_fd_ < 0)
    throw std::runtime_error(bin_tmp_.string() + ": cannot create: " + std::strerror(errno));
  buffer_.reserve(kBufferBytes + 64 * 1024);
}

IndexedDatasetWriter::~IndexedDatasetWriter() {
  if (bin_fd_ >= 0) ::close(bin_fd_);
  if (!finished_) {
    std::error_code ignored;
    std::filesystem::remove(bin_tmp_, ignored);
    std::filesystem::remove(idx_tmp_, ignored);
  }
}

void IndexedDatasetWriter::flush_buffer() {
  write_all(bin_fd_, buffer_.data(), buffer_.size(), bin_tmp_);
  buffer_.clear();
}

void IndexedDatasetWriter::add_document(std::span<const int32_t> tokens) {
  if (finished_) throw std::logic_error(prefix_.string() + ": add_document after finish");
  if (tokens.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    throw std::length_error(prefix_.string() + ": a document longer than 2^31-1 tokens");
  bool ok = false;
  switch (dtype_) {
    case TokenDType::UInt8: ok = store_tokens<uint8_t>(tokens, buffer_); break;
    case TokenDType::Int8: ok = store_tokens<int8_t>(tokens, buffer_); break;
    case TokenDType::Int16: ok = store_tokens<int16_t>(tokens, buffer_); break;
    case TokenDType::UInt16: ok = store_tokens<uint16_t>(tokens, buffer_); break;
    case TokenDType::Int32: ok = store_tokens<int32_t>(tokens, buffer_); break;
    case TokenDType::Int64: ok = store_tokens<int64_t>(tokens, buffer_); break;
    default: break;
  }
  if (!ok)
    throw std::out_of_range(prefix_.string() + ": document " + std::to_string(lengths_.size()) +
                            " has a token id that does not fit " + token_dtype_name(dtype_));
  lengths_.push_back(static_cast<int32_t>(tokens.size()));
  tokens_ += tokens.size();
  if (buffer_.size() >= kBufferBytes) flush_buffer();
}

void IndexedDatasetWriter::finish() {
  if (finished_) return;
  flush_buffer();
  if (::close(bin_fd_) != 0) {
    bin_fd_ = -1;
    throw std::runtime_error(bin_tmp_.string() + ": close failed: " + std::strerror(errno));
  }
  bin_fd_ = -1;

  const uint64_t n = lengths_.size();
  std::string idx;
  idx.reserve(34 + n * 20 + 8);
  idx.append(kMagic, sizeof kMagic);
  append_le<uint64_t>(idx, 1);
  append_le<uint8_t>(idx, static_cast<uint8_t>(dtype_));
  append_le<uint64_t>(idx, n);
  append_le<uint64_t>(idx, n + 1);  // one document per sequence, plus the leading 0
  for (int32_t len : lengths_) append_le<int32_t>(idx, len);
  int64_t pointer = 0;
  const auto item = static_cast<int64_t>(token_dtype_size(dtype_));
  for (int32_t len : lengths_) {
    append_le<int64_t>(idx, pointer);
    pointer += len * item;
  }
  for (uint64_t d = 0; d <= n; ++d) append_le<int64_t>(idx, static_cast<int64_t>(d));

  const int fd = ::open(idx_tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(idx_tmp_.string() + ": cannot create: " + std::strerror(errno));
  try {
    write_all(fd, idx.data(), idx.size(), idx_tmp_);
  } catch (...) {
    ::close(fd);
    throw;
  }
  if (::close(fd) != 0) throw std::runtime_error(idx_tmp_.string() + ": close failed");
  // .bin first: a reader that sees the .idx must find the matching .bin. An .idx an earlier
  // write left goes before that, so that no moment pairs it with the new .bin (a kill between
  // the two renames left an old .idx describing a new .bin of another length); a .bin alone is
  // no dataset to a reader, which opens the .idx first.
  if (::unlink(idx_path(prefix_).c_str()) != 0 && errno != ENOENT)
    throw std::runtime_error(idx_path(prefix_).string() + ": cannot remove the earlier index: " + std::strerror(errno));
  commit_temp_file(bin_tmp_, bin_path(prefix_));
  commit_temp_file(idx_tmp_, idx_path(prefix_));
  finished_ = true;
}

}  // namespace nemokit::rt
