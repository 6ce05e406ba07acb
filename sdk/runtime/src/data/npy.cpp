#include "nemokit/runtime/data/npy.hpp"

#include "nemokit/runtime/atomic_file.hpp"

#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace nemokit::rt {
namespace {

constexpr char kMagic[] = "\x93NUMPY";

[[noreturn]] void fail(const std::filesystem::path& p, const std::string& what) {
  throw std::runtime_error(p.string() + ": " + what);
}

// The value of 'key': in numpy's header dict (a Python literal numpy itself writes).
std::string header_value(const std::string& header, const std::string& key, const std::filesystem::path& p) {
  size_t k = header.find("'" + key + "'");
  if (k == std::string::npos) fail(p, "npy header has no '" + key + "'");
  size_t colon = header.find(':', k);
  if (colon == std::string::npos) fail(p, "npy header is malformed near '" + key + "'");
  size_t b = header.find_first_not_of(' ', colon + 1);
  if (b == std::string::npos) fail(p, "npy header is malformed near '" + key + "'");
  if (header[b] == '\'') {
    size_t e = header.find('\'', b + 1);
    if (e == std::string::npos) fail(p, "npy header is malformed near '" + key + "'");
    return header.substr(b + 1, e - b - 1);
  }
  if (header[b] == '(') {
    size_t e = header.find(')', b);
    if (e == std::string::npos) fail(p, "npy header is malformed near '" + key + "'");
    return header.substr(b + 1, e - b - 1);
  }
  size_t e = header.find_first_of(",}", b);
  return header.substr(b, e - b);
}

}  // namespace

size_t npy_item_size(NpyType t) {
  switch (t) {
    case NpyType::U8: return 1;
    case NpyType::I32: return 4;
    case NpyType::F32: return 4;
    case NpyType::I64: return 8;
  }
  return 0;
}

const char* npy_descr(NpyType t) {
  switch (t) {
    case NpyType::U8: return "|u1";
    case NpyType::I32: return "<i4";
    case NpyType::F32: return "<f4";
    case NpyType::I64: return "<i8";
  }
  return "";
}

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

void write_npy(const std::filesystem::path& path, NpyType type, const std::vector<int64_t>& shape, const void* data) {
  int64_t n = 1;
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) {
    n *= shape[i];
    dims += (i ? ", " : "") + std::to_string(shape[i]);
  }
  if (shape.size() == 1) dims += ',';  // Python's one-element tuple: "(3,)"
  std::string header = "{'descr': '" + std::string(npy_descr(type)) + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Magic (6) + version (2) + length (2) + header + '\n', padded with spaces to 64 bytes.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out(kMagic, 6);
  out += '\x01';
  out += '\x00';
  uint16_t len = uint16_t(header.size());
  out += char(len & 0xff);
  out += char(len >> 8);
  out += header;
  out.append(static_cast<const char*>(data), size_t(n) * npy_item_size(type));
  write_file_atomic(path, out);
}

NpyArray read_npy(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open");
  char pre[10];
  if (!in.read(pre, 10) || std::memcmp(pre, kMagic, 6) != 0) fail(path, "not a .npy file (bad magic)");
  const int major = uint8_t(pre[6]);
  uint32_t hlen = uint8_t(pre[8]) | (uint32_t(uint8_t(pre[9])) << 8);
  if (major == 2 || major == 3) {
    char more[2];
    if (!in.read(more, 2)) fail(path, "truncated header");
    hlen |= (uint32_t(uint8_t(more[0])) << 16) | (uint32_t(uint8_t(more[1])) << 24);
  } else if (major != 1) {
    fail(path, "unsupported .npy version " + std::to_string(major));
  }
  if (hlen > (1u << 20)) fail(path, "header of " + std::to_string(hlen) + " bytes is too large");
  std::string header(hlen, '\0');
  if (!in.read(header.data(), hlen)) fail(path, "truncated header");

  NpyArray a;
  std::string descr = header_value(header, "descr", path);
  if (descr == "|u1" || descr == "<u1" || descr == "|b1") a.type = NpyType::U8;
  else if (descr == "<i4") a.type = NpyType::I32;
  else if (descr == "<i8") a.type = NpyType::I64;
  else if (descr == "<f4") a.type = NpyType::F32;
  else fail(path, "unsupported dtype '" + descr + "' (expected u1, <i4, <i8 or <f4)");
  if (header_value(header, "fortran_order", path) != "False") fail(path, "Fortran-ordered arrays are not supported");
  std::stringstream dims(header_value(header, "shape", path));
  std::string dim;
  while (std::getline(dims, dim, ',')) {
    size_t b = dim.find_first_not_of(' ');
    if (b == std::string::npos) continue;
    try {
      a.shape.push_back(std::stoll(dim.substr(b)));
    } catch (const std::exception&) {
      fail(path, "bad shape entry '" + dim + "'");
    }
    if (a.shape.back() < 0) fail(path, "negative dimension in shape");
  }
  const uint64_t bytes = uint64_t(a.numel()) * npy_item_size(a.type);
  a.bytes.resize(bytes);
  if (bytes && !in.read(reinterpret_cast<char*>(a.bytes.data()), std::streamsize(bytes)))
    fail(path, "data is truncated: expected " + std::to_string(bytes) + " bytes for the shape in the header");
  return a;
}

}  // namespace nemokit::rt
