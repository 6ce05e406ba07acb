// The R data reader that extracts Jane Austen's novels from r-cran-janeaustenr without R. The
// serialized bytes here are assembled field by field from R's serialize.c format description
// (XDR integers, SEXP flag words, CHARSXP encodings, symbol back-references), then compressed the
// way R's lazy-load data bases are: the .rdx index gzip'ed, each .rdb entry a 4-byte big-endian
// length plus a zlib stream.

#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>

#include "r_data.hpp"

namespace fs = std::filesystem;
using nemokit::pretrain::RLazyLoadDb;
using nemokit::pretrain::RValue;

namespace {

struct RWriter {
  std::string out;
  RWriter() {
    out = "X\n";
    integer(3);         // serialization version
    integer(0x040201);  // written by R 4.2.1
    integer(0x030500);  // readable from R 3.5.0
    integer(5);
    out += "UTF-8";
  }
  void integer(int32_t v) {
    const auto u = static_cast<uint32_t>(v);
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((u >> s) & 0xFF));
  }
  void charsxp(const std::string& s, int levels = 8 /* UTF8 */) {
    integer(9 | (levels << 12));
    integer(static_cast<int32_t>(s.size()));
    out += s;
  }
  void na_string() {
    integer(9);
    integer(-1);
  }
  void symbol(const std::string& name) {
    integer(1);
    charsxp(name, 64 /* ASCII */);
  }
  void ref(int index) { integer((index << 8) | 255); }
  void nil() { integer(254); }
  // names = <STRSXP>, with `names` either a fresh symbol or back-reference `names_ref`.
  void names_attribute(const std::vector<std::string>& names, int names_ref) {
    integer(2 | (1 << 10));  // LISTSXP with a tag
    if (names_ref) ref(names_ref); else symbol("names");
    integer(16);
    integer(static_cast<int32_t>(names.size()));
    for (const auto& n : names) charsxp(n);
    nil();
  }
};

std::string compress(const std::string& raw, bool gzip) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, gzip ? 31 : 15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, raw.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string rdb_entry(const std::string& serialized) {
  RWriter len;
  len.out.clear();
  len.integer(static_cast<int32_t>(serialized.size()));
  return len.out + compress(serialized, false);
}

std::string character_vector(const std::vector<std::string>& lines) {
  RWriter w;
  w.integer(16);
  w.integer(static_cast<int32_t>(lines.size()));
  for (const auto& l : lines) w.charsxp(l);
  return w.out;
}

}  // namespace

TEST(DataRData, ReadsStringsWithEncodingsNaAndNames) {
  RWriter w;
  w.integer(16 | (1 << 9));  // STRSXP with attributes
  w.integer(4);
  w.charsxp("It is a truth universally acknowledged");
  w.charsxp(std::string("caf\xe9", 4), 4);  // latin1 e-acute
  w.na_string();
  w.charsxp("");
  w.names_attribute({"a", "b", "c", "d"}, 0);
  const RValue v = nemokit::pretrain::r_unserialize(w.out, "test");
  ASSERT_EQ(v.type, RValue::Type::Strings);
  ASSERT_EQ(v.strings.size(), 4u);
  EXPECT_EQ(v.strings[0], "It is a truth universally acknowledged");
  EXPECT_EQ(v.strings[1], "caf\xc3\xa9");  // converted to UTF-8
  EXPECT_TRUE(v.na[2]);
  EXPECT_FALSE(v.na[3]);
  EXPECT_EQ(v.names(), (std::vector<std::string>{"a", "b", "c", "d"}));
}

TEST(DataRData, ReadsALazyLoadDataBase) {
  const fs::path dir = fs::path(NEMOKIT_BINARY_DIR) / "tests" / "data" / "tmp" / "rdata";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::vector<std::string> emma = {"EMMA", "", "By Jane Austen", "", "Emma Woodhouse, handsome, clever, and rich"};
  const std::vector<std::string> persuasion = {"PERSUASION", "", "Sir Walter Elliot, of Kellynch Hall"};
  const std::string e1 = rdb_entry(character_vector(emma));
  const std::string e2 = rdb_entry(character_vector(persuasion));
  std::ofstream(dir / "Rdata.rdb", std::ios::binary) << e1 << e2;

  // The index: list(variables = list(emma = c(off, len), persuasion = ...), references = list(),
  // compressed = TRUE), names via a symbol and then back-references to it.
  RWriter idx;
  idx.integer(19 | (1 << 9));
  idx.integer(3);
  idx.integer(19 | (1 << 9));  // variables
  idx.integer(2);
  for (auto [off, len] : {std::pair<size_t, size_t>{0, e1.size()}, {e1.size(), e2.size()}}) {
    idx.integer(13);
    idx.integer(2);
    idx.integer(static_cast<int32_t>(off));
    idx.integer(static_cast<int32_t>(len));
  }
  idx.names_attribute({"emma", "persuasion"}, 0);  // defines symbol 1 = names
  idx.integer(19);                                 // references: empty list
  idx.integer(0);
  idx.integer(10);                                 // compressed: TRUE
  idx.integer(1);
  idx.integer(1);
  idx.names_attribute({"variables", "references", "compressed"}, 1);
  std::ofstream(dir / "Rdata.rdx", std::ios::binary) << compress(idx.out, true);

  const auto db = RLazyLoadDb::open(dir / "Rdata");
  EXPECT_EQ(db.variables(), (std::vector<std::string>{"emma", "persuasion"}));
  EXPECT_EQ(db.load("emma").strings, emma);
  EXPECT_EQ(db.load("persuasion").strings, persuasion);
  try {
    db.load("mansfieldpark");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("Rdata.rdb (variable \"mansfieldpark\"): no such variable"),
              std::string::npos)
        << e.what();
  }
}

TEST(DataRData, DamagedDataIsAnErrorWithTheOriginAndOffset) {
  const std::string full = character_vector({"one", "two"});
  try {
    nemokit::pretrain::r_unserialize(full.substr(0, full.size() - 2), "novel.rdb");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("novel.rdb: R data at byte"), std::string::npos) << e.what();
  }
  EXPECT_THROW(nemokit::pretrain::r_unserialize("A\n", "x"), std::runtime_error);  // ASCII format
  RWriter env;
  env.integer(4);  // an environment: not something a data set of text needs
  EXPECT_THROW(nemokit::pretrain::r_unserialize(env.out, "x"), std::runtime_error);
  EXPECT_THROW(nemokit::pretrain::inflate_bytes("not zlib at all", 10, "x"), std::runtime_error);
}
