// The omni chat data's sources, read and validated: Fashion-MNIST's IDX files, scikit-learn's
// 8x8 digits CSV, and common short words (wamerican, ranked by WordNet's sense-tagged counts).
// Every reader throws std::runtime_error naming the file (and line) of what it cannot accept.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace omni {

// One gzip-compressed IDX file pair: n images of rows x cols bytes and n labels.
struct IdxImages {
  int64_t count = 0;
  int rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // count * rows * cols, row-major
  std::vector<uint8_t> labels;  // count
};
// Checks magic numbers (0x803 images, 0x801 labels), that both files hold the same count, that
// the payload is exactly what the header says, and that labels are < num_classes.
IdxImages read_idx_pair(const std::string& images_gz, const std::string& labels_gz, int num_classes);

// load_digits' CSV (gzip): lines of 64 values 0..16 (8x8, row-major) and the digit 0..9.
struct Digit {
  std::array<uint8_t, 64> pixels{};
  int label = 0;
};
std::vector<Digit> read_digits_csv_gz(const std::string& path);

// Lowercase a-z words of min_len..max_len letters that are in the dictionary and in WordNet,
// most sense-tagged first (the tagsense_cnt field of index.{noun,verb,adj,adv}, summed over
// parts of speech), ties alphabetical.
std::vector<std::string> common_words(const std::string& dict_file, const std::string& wordnet_dir, size_t min_len,
                                      size_t max_len);

std::uint64_t fnv1a64(const void* data, size_t size);
std::uint64_t splitmix64(std::uint64_t x);
inline std::uint64_t hash_of(const std::string& s, std::uint64_t salt) { return splitmix64(fnv1a64(s.data(), s.size()) ^ salt); }

}  // namespace omni
