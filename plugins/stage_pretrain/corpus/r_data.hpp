#pragma once
// Reads the character vectors out of an R package's lazy-load data base (data/Rdata.rdx +
// data/Rdata.rdb), without R. Just enough of R's serialization format (XDR, versions 2 and 3) for
// data sets made of atomic vectors, lists and their attributes; anything else is a clear error.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nemokit::pretrain {

// One unserialized R value. Only the member that matches `type` is filled.
struct RValue {
  enum class Type { Null, Symbol, Strings, Ints, Logicals, Reals, List, PairList };
  Type type = Type::Null;
  std::string symbol;                       // Symbol
  std::vector<std::string> strings;         // Strings (NA is stored as "" and flagged in na)
  std::vector<bool> na;                     // Strings: true where the element is NA_character_
  std::vector<int32_t> ints;                // Ints and Logicals
  std::vector<double> reals;                // Reals
  std::vector<RValue> items;                // List and PairList elements
  std::vector<std::string> tags;            // PairList tags ("" when untagged)
  std::vector<std::pair<std::string, RValue>> attributes;

  const RValue* attribute(std::string_view name) const;
  // The "names" attribute as strings (empty when absent).
  std::vector<std::string> names() const;
};

// Unserializes one value from R's binary XDR format ("X\n" header). `origin` names the source in
// errors, which also give the byte offset where reading failed.
RValue r_unserialize(std::string_view bytes, std::string_view origin);

// Inflates a zlib or gzip stream; `expected_size` (0 = unknown) is checked when given.
std::string inflate_bytes(std::string_view compressed, size_t expected_size, std::string_view origin);

// A lazy-load data base: the index (.rdx) maps variable names to byte ranges in the .rdb.
class RLazyLoadDb {
 public:
  // `base` is the path without extension, e.g. ".../janeaustenr/data/Rdata".
  static RLazyLoadDb open(const std::filesystem::path& base);
  std::vector<std::string> variables() const;
  RValue load(const std::string& variable) const;

 private:
  std::filesystem::path rdb_path_;
  std::string rdb_bytes_;
  int compression_ = 1;  // the index's "compressed" flag: 1 = zlib, 2/3 = typed (byte after length)
  std::map<std::string, std::pair<int64_t, int64_t>> ranges_;  // name -> (offset, length)
};

}  // namespace nemokit::pretrain
