#include "r_data.hpp"

#include <zlib.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace nemokit::pretrain {
namespace {

// SEXP type codes and the pseudo-types of R's serialize.c.
constexpr int kSymSxp = 1, kListSxp = 2, kCharSxp = 9, kLglSxp = 10, kIntSxp = 13, kRealSxp = 14,
              kStrSxp = 16, kVecSxp = 19, kExprSxp = 20;
constexpr int kBaseEnv = 241, kEmptyEnv = 242, kMissingArg = 251, kUnbound = 252, kGlobalEnv = 253,
              kNilValue = 254, kRefSxp = 255, kBaseNamespace = 250;
constexpr int kLatin1Mask = 1 << 2;

std::string latin1_to_utf8(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (unsigned char c : in) {
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

class XdrReader {
 public:
  XdrReader(std::string_view bytes, std::string_view origin) : bytes_(bytes), origin_(origin) {}

  RValue read_stream() {
    if (bytes_.substr(0, 2) != "X\n")
      fail("not R binary XDR serialization (expected header \"X\\n\")");
    pos_ = 2;
    const int32_t version = read_int();
    read_int();  // R version that wrote it
    read_int();  // oldest R version that reads it
    if (version == 3) {
      const int32_t n = read_int();
      read_bytes(n);  // native encoding name; strings carry their own encoding flags
    } else if (version != 2) {
      fail("unsupported serialization version " + std::to_string(version));
    }
    return read_item();
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    std::ostringstream msg;
    msg << origin_ << ": R data at byte " << pos_ << ": " << what;
    throw std::runtime_error(msg.str());
  }

  int32_t read_int() {
    if (pos_ + 4 > bytes_.size()) fail("truncated (integer past the end)");
    const auto* p = reinterpret_cast<const unsigned char*>(bytes_.data() + pos_);
    pos_ += 4;
    return static_cast<int32_t>((uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) |
                                (uint32_t{p[2]} << 8) | uint32_t{p[3]});
  }

  double read_double() {
    const uint64_t hi = static_cast<uint32_t>(read_int());
    const uint64_t lo = static_cast<uint32_t>(read_int());
    const uint64_t bits = (hi << 32) | lo;
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
  }

  std::string_view read_bytes(int64_t n) {
    if (n < 0 || pos_ + static_cast<size_t>(n) > bytes_.size()) fail("truncated (string past the end)");
    std::string_view s = bytes_.substr(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }

  int64_t read_length() {
    const int32_t n = read_int();
    if (n >= 0) return n;
    if (n != -1) fail("negative vector length");
    const int64_t hi = static_cast<uint32_t>(read_int());
    const int64_t lo = static_cast<uint32_t>(read_int());
    const int64_t len = (hi << 32) | lo;
    // Every element takes at least 4 bytes, so a length beyond that is corrupt, not just big.
    if (len > static_cast<int64_t>(bytes_.size())) fail("vector length larger than the data");
    return len;
  }

  // A CHARSXP: returns the string and whether it is NA.
  std::pair<std::string, bool> read_charsxp(int32_t flags) {
    const int32_t len = read_int();
    if (len == -1) return {std::string(), true};
    std::string_view raw = read_bytes(len);
    const int levels = flags >> 12;
    if (levels & kLatin1Mask) return {latin1_to_utf8(raw), false};
    return {std::string(raw), false};
  }

  void read_attributes_into(RValue& v) {
    RValue attrs = read_item();
    if (attrs.type != RValue::Type::PairList) fail("attributes are not a pairlist");
    for (size_t i = 0; i < attrs.items.size(); ++i)
      v.attributes.emplace_back(attrs.tags[i], std::move(attrs.items[i]));
  }

  std::string read_tag() {
    RValue tag = read_item();
    if (tag.type != RValue::Type::Symbol) fail("pairlist tag is not a symbol");
    return tag.symbol;
  }

  // Pairlists are read as a loop over their cdr chain, so long lists cannot overflow the stack.
  RValue read_pairlist(int32_t flags) {
    RValue list;
    list.type = RValue::Type::PairList;
    bool first = true;
    for (;;) {
      const int type = flags & 0xFF;
      if (type == kNilValue) break;
      if (type != kListSxp) fail("pairlist continues with SEXP type " + std::to_string(type));
      RValue cell_attrs;
      if (flags & (1 << 9)) read_attributes_into(first ? list : cell_attrs);
      list.tags.push_back((flags & (1 << 10)) ? read_tag() : std::string());
      list.items.push_back(read_item());
      first = false;
      flags = read_int();
    }
    return list;
  }

  RValue read_item() {
    if (++depth_ > 200) fail("nesting deeper than 200 levels");
    const int32_t flags = read_int();
    const int type = flags & 0xFF;
    const bool has_attr = flags & (1 << 9);
    RValue v;
    switch (type) {
      case kNilValue:
      case kEmptyEnv:
      case kBaseEnv:
      case kGlobalEnv:
      case kUnbound:
      case kMissingArg:
      case kBaseNamespace:
        break;
      case kRefSxp: {
        int64_t index = flags >> 8;
        if (index == 0) index = read_int();
        if (index < 1 || index > static_cast<int64_t>(refs_.size()))
          fail("reference " + std::to_string(index) + " to an unknown object");
        v = refs_[static_cast<size_t>(index - 1)];
        break;
      }
      case kSymSxp: {
        const int32_t char_flags = read_int();
        if ((char_flags & 0xFF) != kCharSxp) fail("symbol name is not a CHARSXP");
        v.type = RValue::Type::Symbol;
        v.symbol = read_charsxp(char_flags).first;
        refs_.push_back(v);
        break;
      }
      case kListSxp:
        v = read_pairlist(flags);
        break;
      case kCharSxp: {
        auto [s, is_na] = read_charsxp(flags);
        v.type = RValue::Type::Strings;
        v.strings.push_back(std::move(s));
        v.na.push_back(is_na);
        break;
      }
      case kLglSxp:
      case kIntSxp: {
        v.type = type == kLglSxp ? RValue::Type::Logicals : RValue::Type::Ints;
        const int64_t n = read_length();
        v.ints.reserve(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) v.ints.push_back(read_int());
        if (has_attr) read_attributes_into(v);
        break;
      }
      case kRealSxp: {
        v.type = RValue::Type::Reals;
        const int64_t n = read_length();
        v.reals.reserve(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) v.reals.push_back(read_double());
        if (has_attr) read_attributes_into(v);
        break;
      }
      case kStrSxp: {
        v.type = RValue::Type::Strings;
        const int64_t n = read_length();
        v.strings.reserve(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) {
          const int32_t char_flags = read_int();
          if ((char_flags & 0xFF) != kCharSxp) fail("character vector element is not a CHARSXP");
          auto [s, is_na] = read_charsxp(char_flags);
          v.strings.push_back(std::move(s));
          v.na.push_back(is_na);
        }
        if (has_attr) read_attributes_into(v);
        break;
      }
      case kVecSxp:
      case kExprSxp: {
        v.type = RValue::Type::List;
        const int64_t n = read_length();
        for (int64_t i = 0; i < n; ++i) v.items.push_back(read_item());
        if (has_attr) read_attributes_into(v);
        break;
      }
      default:
        fail("unsupported SEXP type " + std::to_string(type) +
             " (only vectors, lists and symbols are read)");
    }
    --depth_;
    return v;
  }

  std::string_view bytes_;
  std::string origin_;
  size_t pos_ = 0;
  int depth_ = 0;
  std::vector<RValue> refs_;
};

std::string read_whole_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": cannot open for reading");
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) throw std::runtime_error(path.string() + ": read error");
  return std::move(buf).str();
}

uint32_t big_endian_u32(std::string_view b) {
  const auto* p = reinterpret_cast<const unsigned char*>(b.data());
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace

const RValue* RValue::attribute(std::string_view name) const {
  for (const auto& [key, value] : attributes)
    if (key == name) return &value;
  return nullptr;
}

std::vector<std::string> RValue::names() const {
  const RValue* n = attribute("names");
  return n && n->type == Type::Strings ? n->strings : std::vector<std::string>{};
}

RValue r_unserialize(std::string_view bytes, std::string_view origin) {
  return XdrReader(bytes, origin).read_stream();
}

std::string inflate_bytes(std::string_view compressed, size_t expected_size, std::string_view origin) {
  z_stream zs{};
  // 15 + 32: accept both zlib and gzip headers (the .rdx is gzip, .rdb entries are zlib).
  if (inflateInit2(&zs, 15 + 32) != Z_OK) throw std::runtime_error(std::string(origin) + ": zlib init failed");
  std::string out;
  out.resize(expected_size ? expected_size : compressed.size() * 4 + 1024);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  zs.avail_in = static_cast<uInt>(compressed.size());
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    if (zs.total_out == out.size()) {
      if (expected_size) break;  // more data than the header promised
      out.resize(out.size() * 2);
    }
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + zs.total_out);
    zs.avail_out = static_cast<uInt>(out.size() - zs.total_out);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&zs);
      throw std::runtime_error(std::string(origin) + ": corrupt compressed data (zlib: " +
                               (zs.msg ? zs.msg : std::to_string(rc)) + ")");
    }
  }
  const size_t produced = zs.total_out;
  inflateEnd(&zs);
  if (rc != Z_STREAM_END)
    throw std::runtime_error(std::string(origin) + ": compressed data longer than its stated size " +
                             std::to_string(expected_size));
  if (expected_size && produced != expected_size)
    throw std::runtime_error(std::string(origin) + ": inflated to " + std::to_string(produced) +
                             " bytes, header says " + std::to_string(expected_size));
  out.resize(produced);
  return out;
}

RLazyLoadDb RLazyLoadDb::open(const std::filesystem::path& base) {
  RLazyLoadDb db;
  std::filesystem::path rdx = base;
  rdx += ".rdx";
  db.rdb_path_ = base;
  db.rdb_path_ += ".rdb";
  const std::string rdx_bytes = read_whole_file(rdx);
  const RValue index = r_unserialize(inflate_bytes(rdx_bytes, 0, rdx.string()), rdx.string());

  const auto names = index.names();
  const RValue* variables = nullptr;
  for (size_t i = 0; i < names.size() && i < index.items.size(); ++i) {
    if (names[i] == "variables") variables = &index.items[i];
    if (names[i] == "compressed") {
      const RValue& c = index.items[i];
      if (c.type == RValue::Type::Logicals && !c.ints.empty()) db.compression_ = c.ints[0] ? 1 : 0;
      if (c.type == RValue::Type::Reals && !c.reals.empty()) db.compression_ = static_cast<int>(c.reals[0]);
      if (c.type == RValue::Type::Ints && !c.ints.empty()) db.compression_ = c.ints[0];
    }
  }
  if (index.type != RValue::Type::List || !variables || variables->type != RValue::Type::List)
    throw std::runtime_error(rdx.string() + ": not a lazy-load index (no \"variables\" list)");
  const auto var_names = variables->names();
  for (size_t i = 0; i < var_names.size() && i < variables->items.size(); ++i) {
    const RValue& r = variables->items[i];
    if (r.type != RValue::Type::Ints || r.ints.size() != 2 || r.ints[0] < 0 || r.ints[1] < 4)
      throw std::runtime_error(rdx.string() + ": variable \"" + var_names[i] +
                               "\" has no valid (offset, length) pair");
    db.ranges_[var_names[i]] = {r.ints[0], r.ints[1]};
  }
  db.rdb_bytes_ = read_whole_file(db.rdb_path_);
  return db;
}

std::vector<std::string> RLazyLoadDb::variables() const {
  std::vector<std::string> out;
  for (const auto& [name, range] : ranges_) out.push_back(name);
  return out;
}

RValue RLazyLoadDb::load(const std::string& variable) const {
  const auto it = ranges_.find(variable);
  const std::string origin = rdb_path_.string() + " (variable \"" + variable + "\")";
  if (it == ranges_.end()) throw std::runtime_error(origin + ": no such variable in the index");
  const auto [offset, length] = it->second;
  if (static_cast<uint64_t>(offset) + static_cast<uint64_t>(length) > rdb_bytes_.size())
    throw std::runtime_error(origin + ": byte range past the end of the file");
  std::string_view entry(rdb_bytes_.data() + offset, static_cast<size_t>(length));
  const uint32_t inflated_size = big_endian_u32(entry);
  std::string_view payload = entry.substr(4);
  if (compression_ == 0) return r_unserialize(payload, origin);
  if (compression_ != 1) {
    // Typed entries: one byte after the length says how the rest is stored.
    if (payload.empty()) throw std::runtime_error(origin + ": empty entry");
    const char kind = payload[0];
    payload = payload.substr(1);
    if (kind == '0') return r_unserialize(payload, origin);
    if (kind != 'Z')
      throw std::runtime_error(origin + ": compression type '" + std::string(1, kind) +
                               "' is not supported (only zlib)");
  }
  return r_unserialize(inflate_bytes(payload, inflated_size, origin), origin);
}

}  // namespace nemokit::pretrain
