#include "omni_sources.hpp"

#include <zlib.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

namespace omni {
namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) { throw std::runtime_error(where + ": " + what); }

// The whole decompressed content of a gzip file; a damaged stream (CRC, truncation) is an error.
std::string read_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) fail(path, "cannot open");
  gzbuffer(f, 1 << 17);
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const int n = gzread(f, buf, sizeof buf);
    if (n < 0) {
      int code = 0;
      std::string message = gzerror(f, &code);
      gzclose(f);
      fail(path, "not a valid gzip stream: " + message);
    }
    if (n == 0) break;
    out.append(buf, size_t(n));
  }
  if (gzdirect(f)) {
    gzclose(f);
    fail(path, "not gzip-compressed");
  }
  // gzread returns 0 both at a clean end and when the stream stops early: gzerror tells which.
  int code = 0;
  const char* message = gzerror(f, &code);
  if (code != Z_OK && code != Z_BUF_ERROR) {
    std::string m = message;
    gzclose(f);
    fail(path, "not a valid gzip stream: " + m);
  }
  if (code == Z_BUF_ERROR) {
    gzclose(f);
    fail(path, "truncated gzip stream");
  }
  gzclose(f);
  return out;
}

uint32_t be32(const std::string& s, size_t at) {
  return uint32_t(uint8_t(s[at])) << 24 | uint32_t(uint8_t(s[at + 1])) << 16 | uint32_t(uint8_t(s[at + 2])) << 8 |
         uint32_t(uint8_t(s[at + 3]));
}

// Header of an IDX file of unsigned bytes: the dimensions, after checking the magic and that the
// payload has exactly their product of bytes.
std::vector<uint32_t> idx_dims(const std::string& data, const std::string& path, int want_dims) {
  if (data.size() < 4) fail(path, "too short for an IDX header");
  if (data[0] != 0 || data[1] != 0)
    fail(path, "not an IDX file (the first two bytes must be zero)");
  if (uint8_t(data[2]) != 0x08) fail(path, "IDX element type " + std::to_string(uint8_t(data[2])) + ", expected 8 (unsigned byte)");
  if (uint8_t(data[3]) != want_dims)
    fail(path, "IDX with " + std::to_string(uint8_t(data[3])) + " dimensions, expected " + std::to_string(want_dims));
  const size_t header = 4 + 4 * size_t(want_dims);
  if (data.size() < header) fail(path, "truncated IDX header");
  std::vector<uint32_t> dims;
  uint64_t payload = 1;
  for (int i = 0; i < want_dims; ++i) {
    dims.push_back(be32(data, 4 + 4 * size_t(i)));
    payload *= dims.back();
  }
  if (data.size() - header != payload)
    fail(path, "IDX payload is " + std::to_string(data.size() - header) + " bytes, the header says " +
                   std::to_string(payload));
  return dims;
}

}  // namespace

IdxImages read_idx_pair(const std::string& images_gz, const std::string& labels_gz, int num_classes) {
  const std::string images = read_gz(images_gz), labels = read_gz(labels_gz);
  const std::vector<uint32_t> d = idx_dims(images, images_gz, 3), l = idx_dims(labels, labels_gz, 1);
  if (d[0] != l[0])
    fail(labels_gz, std::to_string(l[0]) + " labels for " + std::to_string(d[0]) + " images in " + images_gz);
  if (d[1] == 0 || d[2] == 0 || d[1] > 4096 || d[2] > 4096)
    fail(images_gz, "image size " + std::to_string(d[1]) + "x" + std::to_string(d[2]) + " is not plausible");
  IdxImages out;
  out.count = d[0];
  out.rows = int(d[1]);
  out.cols = int(d[2]);
  out.pixels.assign(images.begin() + 16, images.end());
  out.labels.assign(labels.begin() + 8, labels.end());
  for (size_t i = 0; i < out.labels.size(); ++i)
    if (out.labels[i] >= num_classes)
      fail(labels_gz, "label " + std::to_string(out.labels[i]) + " of item " + std::to_string(i) + " is not below " +
                          std::to_string(num_classes));
  return out;
}

std::vector<Digit> read_digits_csv_gz(const std::string& path) {
  std::istringstream in(read_gz(path));
  std::vector<Digit> digits;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const std::string where = path + ":" + std::to_string(n);
    Digit d;
    size_t pos = 0;
    for (int field = 0; field < 65; ++field) {
      size_t end = line.find(',', pos);
      if ((field < 64) != (end != std::string::npos))
        fail(where, "expected 65 comma-separated values (64 pixels and the digit)");
      const std::string text = line.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
      // Values are written as integers ("13") or floats with a zero fraction ("13.0").
      size_t used = 0;
      double v = 0;
      try {
        v = std::stod(text, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != text.size() || v != double(int(v)))
        fail(where, "value " + std::to_string(field + 1) + " '" + text + "' is not an integer");
      const int iv = int(v);
      if (field < 64) {
        if (iv < 0 || iv > 16) fail(where, "pixel " + std::to_string(field) + " is " + text + ", not in 0..16");
        d.pixels[size_t(field)] = uint8_t(iv);
      } else {
        if (iv < 0 || iv > 9) fail(where, "digit " + text + " is not in 0..9");
        d.label = iv;
      }
      pos = end + 1;
    }
    digits.push_back(d);
  }
  if (digits.empty()) fail(path, "no digits");
  return digits;
}

std::vector<std::string> common_words(const std::string& dict_file, const std::string& wordnet_dir, size_t min_len,
                                      size_t max_len) {
  auto plain = [&](const std::string& w) {
    return w.size() >= min_len && w.size() <= max_len &&
           std::all_of(w.begin(), w.end(), [](char c) { return c >= 'a' && c <= 'z'; });
  };
  std::ifstream dict(dict_file);
  if (!dict) fail(dict_file, "cannot open");
  std::set<std::string> known;
  for (std::string w; std::getline(dict, w);)
    if (plain(w)) known.insert(w);
  std::map<std::string, int64_t> tagged;
  for (const char* pos : {"noun", "verb", "adj", "adv"}) {
    const std::string path = wordnet_dir + "/index." + pos;
    std::ifstream in(path);
    if (!in) fail(path, "cannot open");
    std::string line;
    for (int64_t n = 1; std::getline(in, line); ++n) {
      if (line.empty() || line[0] == ' ') continue;  // the licence header
      // lemma pos synset_cnt p_cnt [ptr_symbol]{p_cnt} sense_cnt tagsense_cnt synset_offset...
      std::istringstream f(line);
      std::string lemma, p;
      int64_t synsets = -1, pointers = -1;
      f >> lemma >> p >> synsets >> pointers;
      std::string skip;
      for (int64_t i = 0; f && i < pointers; ++i) f >> skip;
      int64_t senses = -1, tags = -1;
      f >> senses >> tags;
      if (!f || synsets < 1 || pointers < 0 || tags < 0)
        fail(path + ":" + std::to_string(n), "not a WordNet index line");
      if (plain(lemma) && known.count(lemma)) tagged[lemma] += tags;
    }
  }
  std::vector<std::pair<int64_t, std::string>> ranked;
  for (const auto& [w, c] : tagged) ranked.push_back({-c, w});
  std::sort(ranked.begin(), ranked.end());
  std::vector<std::string> words;
  for (const auto& [_, w] : ranked) words.push_back(w);
  return words;
}

std::uint64_t fnv1a64(const void* data, size_t size) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < size; ++i) h = (h ^ static_cast<const uint8_t*>(data)[i]) * 0x100000001b3ull;
  return h;
}

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace omni
