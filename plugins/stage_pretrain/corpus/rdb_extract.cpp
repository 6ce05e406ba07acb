// rdb_extract BASE OUT_DIR PREFIX
// Writes every character vector of the R lazy-load data base BASE.rdx/BASE.rdb to
// OUT_DIR/PREFIX<variable>.txt, one element per line. extract.sh builds and runs it; the caller
// owns atomicity (OUT_DIR is a staging folder that is renamed into place).

#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "r_data.hpp"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: rdb_extract BASE OUT_DIR PREFIX   (BASE.rdx and BASE.rdb must exist)\n";
    return 2;
  }
  try {
    const auto db = nemokit::pretrain::RLazyLoadDb::open(argv[1]);
    const std::filesystem::path out_dir = argv[2];
    int written = 0;
    for (const auto& name : db.variables()) {
      const auto value = db.load(name);
      if (value.type != nemokit::pretrain::RValue::Type::Strings) continue;
      const auto path = out_dir / (std::string(argv[3]) + name + ".txt");
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      for (const auto& line : value.strings) out << line << '\n';
      out.flush();
      if (!out) {
        std::cerr << "rdb_extract: " << path.string() << ": write failed\n";
        return 1;
      }
      std::cout << path.filename().string() << ' ' << value.strings.size() << " lines\n";
      ++written;
    }
    if (written == 0) {
      std::cerr << "rdb_extract: " << argv[1] << ": no character vectors found\n";
      return 1;
    }
  } catch (const std::exception& e) {
    std::cerr << "rdb_extract: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
