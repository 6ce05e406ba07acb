// The King James Bible the setup extracts from Debian's bible-kjv (NEMOKIT_CORPUS_DIR, else
// ~/.cache/nemokit/corpus), and the slice of it the pretraining tests train on: real text, small
// enough for a few steps in seconds.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include "support/setup_data.hpp"

namespace nemokit::test {

inline std::filesystem::path kjv_bible() { return setup_data_dir("NEMOKIT_CORPUS_DIR", "corpus") / "kjv-bible.txt"; }

// Genesis to Ruth (the first 12,000 lines) as DIR/genesis-to-ruth.txt; returns its path.
inline std::filesystem::path write_bible_slice(const std::filesystem::path& dir) {
  const std::filesystem::path text = dir / "genesis-to-ruth.txt";
  std::ifstream in(kjv_bible());
  std::ofstream out(text);
  std::string line;
  for (int i = 0; i < 12000 && std::getline(in, line); ++i) out << line << "\n";
  return text;
}

}  // namespace nemokit::test
