#include "data/packed_split.hpp"

#include "nemokit/runtime/data/npy.hpp"

#include <cstring>
#include <stdexcept>

namespace nemokit::sft {
namespace fs = std::filesystem;

namespace {

template <class T> std::vector<T> take(const rt::NpyArray& a) {
  std::vector<T> v(size_t(a.numel()));
  if (!v.empty()) std::memcpy(v.data(), a.bytes.data(), v.size() * sizeof(T));
  return v;
}

rt::NpyArray load(const fs::path& file, rt::NpyType type, size_t dims) {
  rt::NpyArray a = rt::read_npy(file);
  if (a.type != type) throw std::runtime_error(file.string() + ": expected dtype " + rt::npy_descr(type) + ", found " + rt::npy_descr(a.type));
  if (a.shape.size() != dims) throw std::runtime_error(file.string() + ": expected " + std::to_string(dims) + " dimensions");
  return a;
}

}  // namespace

std::vector<int64_t> PackedSplit::document_bounds(int64_t pack) const {
  std::vector<int64_t> b;
  for (int64_t i = seq_start_ptr[size_t(pack)]; i < seq_start_ptr[size_t(pack) + 1]; ++i) b.push_back(seq_start_id[size_t(i)]);
  b.push_back(pack_length[size_t(pack)]);
  return b;
}

void PackedSplit::write(const fs::path& dir) const {
  fs::create_directories(dir);
  const int64_t P = packs();
  rt::write_npy(dir / "input_ids.npy", rt::NpyType::I32, {P, pack_size}, input_ids.data());
  rt::write_npy(dir / "loss_mask.npy", rt::NpyType::U8, {P, pack_size}, loss_mask.data());
  rt::write_npy(dir / "seq_start_id.npy", rt::NpyType::I32, {int64_t(seq_start_id.size())}, seq_start_id.data());
  rt::write_npy(dir / "seq_start_ptr.npy", rt::NpyType::I64, {P + 1}, seq_start_ptr.data());
  rt::write_npy(dir / "pack_length.npy", rt::NpyType::I32, {P}, pack_length.data());
  if (media.empty()) return;
  rt::write_npy(dir / "media.npy", rt::NpyType::I64, {media_items(), kMediaColumns}, media.data());
  if (tile_size > 0)
    rt::write_npy(dir / "tiles.npy", rt::NpyType::U8, {int64_t(tiles.size()) / (3 * tile_size * tile_size), 3, tile_size, tile_size},
                  tiles.data());
  if (mel_bins > 0)
    rt::write_npy(dir / "audio.npy", rt::NpyType::F32, {int64_t(audio.size()) / mel_bins, mel_bins}, audio.data());
}

PackedSplit PackedSplit::read(const fs::path& dir) {
  PackedSplit s;
  rt::NpyArray ids = load(dir / "input_ids.npy", rt::NpyType::I32, 2);
  rt::NpyArray mask = load(dir / "loss_mask.npy", rt::NpyType::U8, 2);
  rt::NpyArray starts = load(dir / "seq_start_id.npy", rt::NpyType::I32, 1);
  rt::NpyArray ptr = load(dir / "seq_start_ptr.npy", rt::NpyType::I64, 1);
  rt::NpyArray len = load(dir / "pack_length.npy", rt::NpyType::I32, 1);
  const int64_t P = ids.shape[0];
  s.pack_size = ids.shape[1];
  auto inconsistent = [&](const std::string& file, const std::string& what) {
    throw std::runtime_error((dir / file).string() + ": " + what);
  };
  if (mask.shape != ids.shape) inconsistent("loss_mask.npy", "shape differs from input_ids.npy");
  if (ptr.shape[0] != P + 1) inconsistent("seq_start_ptr.npy", "expected packs + 1 = " + std::to_string(P + 1) + " entries");
  if (len.shape[0] != P) inconsistent("pack_length.npy", "expected one entry per pack (" + std::to_string(P) + ")");
  s.input_ids = take<int32_t>(ids);
  s.loss_mask = take<uint8_t>(mask);
  s.seq_start_id = take<int32_t>(starts);
  s.seq_start_ptr = take<int64_t>(ptr);
  s.pack_length = take<int32_t>(len);
  if (s.seq_start_ptr.front() != 0 || s.seq_start_ptr.back() != int64_t(s.seq_start_id.size()))
    inconsistent("seq_start_ptr.npy", "must run from 0 to the number of documents");
  for (int64_t p = 0; p < P; ++p) {
    const int64_t b = s.seq_start_ptr[size_t(p)], e = s.seq_start_ptr[size_t(p) + 1];
    const int32_t n = s.pack_length[size_t(p)];
    if (e <= b) inconsistent("seq_start_ptr.npy", "pack " + std::to_string(p) + " has no documents");
    if (n <= 0 || n > s.pack_size) inconsistent("pack_length.npy", "pack " + std::to_string(p) + " has a bad length");
    if (s.seq_start_id[size_t(b)] != 0) inconsistent("seq_start_id.npy", "pack " + std::to_string(p) + " does not start at 0");
    for (int64_t i = b + 1; i < e; ++i)
      if (s.seq_start_id[size_t(i)] <= s.seq_start_id[size_t(i) - 1] || s.seq_start_id[size_t(i)] >= n)
        inconsistent("seq_start_id.npy", "pack " + std::to_string(p) + " has unordered or out-of-range starts");
  }
  if (!fs::exists(dir / "media.npy")) return s;
  rt::NpyArray media = load(dir / "media.npy", rt::NpyType::I64, 2);
  if (media.shape[1] != kMediaColumns) inconsistent("media.npy", "expected " + std::to_string(kMediaColumns) + " columns");
  s.media = take<int64_t>(media);
  int64_t tiles = 0, frames = 0;
  if (fs::exists(dir / "tiles.npy")) {
    rt::NpyArray t = load(dir / "tiles.npy", rt::NpyType::U8, 4);
    if (t.shape[1] != 3 || t.shape[2] != t.shape[3]) inconsistent("tiles.npy", "expected [tiles, 3, size, size]");
    s.tile_size = t.shape[2], tiles = t.shape[0];
    s.tiles = take<uint8_t>(t);
  }
  if (fs::exists(dir / "audio.npy")) {
    rt::NpyArray a = load(dir / "audio.npy", rt::NpyType::F32, 2);
    s.mel_bins = a.shape[1], frames = a.shape[0];
    s.audio = take<float>(a);
  }
  for (int64_t i = 0; i < s.media_items(); ++i) {
    const int64_t* m = s.media_item(i);
    const int64_t pack = m[0], pos = m[1], kind = m[2], first = m[3], count = m[4], positions = m[5];
    const std::string at = "item " + std::to_string(i);
    if (pack < 0 || pack >= P || (i > 0 && pack < s.media_item(i - 1)[0])) inconsistent("media.npy", at + ": bad or unsorted pack");
    if (kind != 0 && kind != 1) inconsistent("media.npy", at + ": modality must be 0 or 1");
    const int64_t have = kind == 0 ? tiles : frames;
    if (count < 1 || first < 0 || first + count > have) inconsistent("media.npy", at + ": tiles/frames out of range");
    if (positions < 1 || pos < 0 || pos + positions > s.pack_length[size_t(pack)])
      inconsistent("media.npy", at + ": positions outside the pack");
  }
  return s;
}

}  // namespace nemokit::sft
