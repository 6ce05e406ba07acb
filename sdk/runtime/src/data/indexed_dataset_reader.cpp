#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <sstream>
#include <stdexcept>
#include <string>

#include "nemokit/runtime/data/indexed_dataset.hpp"

namespace nemokit::rt {
namespace {

constexpr char kMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', '\0', '\0'};
constexpr size_t kHeaderBytes = 9 + 8 + 1 + 8 + 8;

[[noreturn]] void bad(const std::filesystem::path& file, const std::string& what) {
  throw std::runtime_error(file.string() + ": " + what);
}

// A read-only mapping of a whole file, unmapped on destruction.
class MappedFile {
 public:
  MappedFile(const std::filesystem::path& path, const char* open_error) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) bad(path, std::string(open_error) + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      bad(path, "cannot stat");
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
      void* m = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
      if (m == MAP_FAILED) {
        ::close(fd);
        bad(path, std::string("mmap failed: ") + std::strerror(errno));
      }
      data_ = static_cast<const char*>(m);
    }
    ::close(fd);
  }
  ~MappedFile() {
    if (data_) ::munmap(const_cast<char*>(data_), size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  std::string_view bytes() const { return {data_ ? data_ : "", size_}; }

 private:
  const char* data_ = nullptr;
  size_t size_ = 0;
};

template <typename T>
T load_le(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

bool is_token_dtype(uint8_t code) {
  return code >= 1 && code <= 8 && code != static_cast<uint8_t>(TokenDType::Float32) &&
         code != static_cast<uint8_t>(TokenDType::Float64);
}

template <typename T>
void widen(const unsigned char* src, std::span<int32_t> out) {
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<int32_t>(load_le<T>(src + i * sizeof(T)));
}

}  // namespace

std::shared_ptr<const IndexedDataset> IndexedDataset::open(const std::filesystem::path& prefix) {
  std::shared_ptr<IndexedDataset> ds(new IndexedDataset());
  ds->prefix_ = prefix;
  const auto idx_file = idx_path(prefix);
  const auto bin_file = bin_path(prefix);

  // The index is mapped only while it is parsed; its arrays are copied out (they are unaligned).
  const MappedFile idx_map(idx_file, "cannot open index (is the dataset prefix right?)");
  const std::string_view idx = idx_map.bytes();
  const auto* p = reinterpret_cast<const unsigned char*>(idx.data());

  if (idx.size() < kHeaderBytes) bad(idx_file, "too short for a Megatron index header (" +
                                               std::to_string(idx.size()) + " bytes)");
  if (std::memcmp(p, kMagic, sizeof kMagic) != 0)
    bad(idx_file, "bad magic: not a Megatron indexed dataset index (expected MMIDIDX)");
  const auto version = load_le<uint64_t>(p + 9);
  if (version != 1) bad(idx_file, "unsupported index version " + std::to_string(version) + " (expected 1)");
  const uint8_t code = p[17];
  if (!is_token_dtype(code)) bad(idx_file, "dtype code " + std::to_string(code) + " is not an integer token type");
  ds->dtype_ = static_cast<TokenDType>(code);
  const auto seq_count = load_le<uint64_t>(p + 18);
  const auto doc_count = load_le<uint64_t>(p + 26);
  if (doc_count < 1) bad(idx_file, "document_count is 0 (it counts a leading 0 entry, so at least 1)");

  // The sizes must match exactly; each count is bounded first so the products cannot overflow.
  const uint64_t body = idx.size() - kHeaderBytes;
  if (seq_count > body / 12 || doc_count > body / 8 || seq_count * 12 + doc_count * 8 != body) {
    std::ostringstream msg;
    msg << "size " << idx.size() << " bytes does not match sequence_count " << seq_count
        << " and document_count " << doc_count << " (expected "
        << (kHeaderBytes + seq_count * 12 + doc_count * 8) << ")";
    bad(idx_file, msg.str());
  }

  const unsigned char* lengths = p + kHeaderBytes;
  const unsigned char* pointers = lengths + seq_count * 4;
  const unsigned char* docs = pointers + seq_count * 8;
  ds->lengths_.resize(seq_count);
  ds->pointers_.resize(seq_count);
  ds->document_indices_.resize(doc_count);
  for (uint64_t i = 0; i < seq_count; ++i) {
    ds->lengths_[i] = load_le<int32_t>(lengths + i * 4);
    ds->pointers_[i] = load_le<int64_t>(pointers + i * 8);
  }
  for (uint64_t i = 0; i < doc_count; ++i) ds->document_indices_[i] = load_le<int64_t>(docs + i * 8);

  const int fd = ::open(bin_file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) bad(bin_file, std::string("cannot open data file: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    bad(bin_file, "cannot stat");
  }
  ds->bin_size_ = static_cast<size_t>(st.st_size);
  if (ds->bin_size_ > 0) {
    void* map = ::mmap(nullptr, ds->bin_size_, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
      ::close(fd);
      bad(bin_file, std::string("mmap failed: ") + std::strerror(errno));
    }
    ds->bin_ = static_cast<const unsigned char*>(map);
  }
  ::close(fd);

  const auto item = static_cast<int64_t>(token_dtype_size(ds->dtype_));
  int64_t expected_pointer = 0;
  for (uint64_t i = 0; i < seq_count; ++i) {
    const int32_t len = ds->lengths_[i];
    if (len < 0) bad(idx_file, "sequence " + std::to_string(i) + " has negative length " + std::to_string(len));
    if (ds->pointers_[i] != expected_pointer)
      bad(idx_file, "sequence " + std::to_string(i) + " starts at byte " + std::to_string(ds->pointers_[i]) +
                        ", expected " + std::to_string(expected_pointer) + " (sequences must be contiguous)");
    expected_pointer += len * item;
    ds->total_tokens_ += static_cast<uint64_t>(len);
  }
  if (static_cast<uint64_t>(expected_pointer) != ds->bin_size_)
    bad(bin_file, "size " + std::to_string(ds->bin_size_) + " bytes, but the index describes " +
                      std::to_string(expected_pointer) + " bytes of " + token_dtype_name(ds->dtype_) + " tokens");
  if (ds->document_indices_[0] != 0) bad(idx_file, "document_indices must start at 0");
  for (uint64_t i = 1; i < doc_count; ++i) {
    if (ds->document_indices_[i] < ds->document_indices_[i - 1])
      bad(idx_file, "document_indices decrease at entry " + std::to_string(i));
  }
  if (static_cast<uint64_t>(ds->document_indices_.back()) != seq_count)
    bad(idx_file, "last document index " + std::to_string(ds->document_indices_.back()) +
                      " is not the sequence count " + std::to_string(seq_count));
  return ds;
}

IndexedDataset::~IndexedDataset() {
  if (bin_) ::munmap(const_cast<unsigned char*>(bin_), bin_size_);
}

void IndexedDataset::read(size_t seq, size_t offset, std::span<int32_t> out) const {
  if (seq >= lengths_.size() || offset > static_cast<size_t>(lengths_[seq]) ||
      out.size() > static_cast<size_t>(lengths_[seq]) - offset)
    throw std::out_of_range(prefix_.string() + ": tokens [" + std::to_string(offset) + ", " +
                            std::to_string(offset + out.size()) + ") of sequence " + std::to_string(seq) +
                            " are outside the data");
  if (out.empty()) return;
  const size_t item = token_dtype_size(dtype_);
  const unsigned char* src = bin_ + pointers_[seq] + offset * item;
  switch (dtype_) {
    case TokenDType::UInt8: widen<uint8_t>(src, out); break;
    case TokenDType::Int8: widen<int8_t>(src, out); break;
    case TokenDType::Int16: widen<int16_t>(src, out); break;
    case TokenDType::UInt16: widen<uint16_t>(src, out); break;
    case TokenDType::Int32: widen<int32_t>(src, out); break;
    case TokenDType::Int64: widen<int64_t>(src, out); break;
    default: throw std::logic_error("unreachable dtype");
  }
}

std::vector<int32_t> IndexedDataset::sequence(size_t seq) const {
  if (seq >= lengths_.size())
    throw std::out_of_range(prefix_.string() + ": sequence " + std::to_string(seq) + " of " +
                            std::to_string(lengths_.size()));
  std::vector<int32_t> out(static_cast<size_t>(lengths_[seq]));
  read(seq, 0, out);
  return out;
}

}  // namespace nemokit::rt
