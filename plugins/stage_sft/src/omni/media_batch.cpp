#include "omni/media_batch.hpp"

#include <algorithm>

namespace nemokit::sft {

namespace {

// Collects items into one input per modality.
struct Builder {
  rt::MediaInput vision, audio;
  std::vector<const float*> clips;  // audio: each clip's frames, padded when finished
  std::vector<int64_t> clip_frames;
  int64_t tile_size = 0, mel_bins = 0;

  void add(int modality, const uint8_t* tiles, const float* frames, int64_t count, int64_t first_position, int64_t positions) {
    rt::MediaInput& in = modality == 0 ? vision : audio;
    for (int64_t j = 0; j < positions; ++j) in.positions.push_back(first_position + j);
    if (modality == 0) {
      std::vector<float> px = tile_pixels(tiles, count, tile_size, rt::media::TileOptions{});
      vision.data.insert(vision.data.end(), px.begin(), px.end());
      vision.items += count;
    } else {
      clips.push_back(frames);
      clip_frames.push_back(count);
    }
  }

  void finish(std::vector<rt::MediaInput>& out) {
    vision.modality = rt::Modality::vision;
    if (vision.items > 0) out.push_back(std::move(vision));
    if (clips.empty()) return;
    audio.modality = rt::Modality::audio;
    audio.items = int64_t(clips.size());
    audio.length = *std::max_element(clip_frames.begin(), clip_frames.end());
    audio.valid = clip_frames;
    audio.data.assign(audio.items * audio.length * mel_bins, 0.0f);
    for (size_t i = 0; i < clips.size(); ++i)
      std::copy_n(clips[i], clip_frames[i] * mel_bins, audio.data.begin() + int64_t(i) * audio.length * mel_bins);
    out.push_back(std::move(audio));
  }
};

}  // namespace

void add_pack_media(rt::Batch& batch, const PackedSplit& split, const std::vector<int64_t>& packs) {
  if (split.media.empty()) return;
  Builder b;
  b.tile_size = split.tile_size, b.mel_bins = split.mel_bins;
  const int64_t n = split.media_items(), tile = 3 * split.tile_size * split.tile_size;
  for (size_t r = 0; r < packs.size(); ++r) {
    // media rows are sorted by pack
    int64_t lo = 0, hi = n;
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (split.media_item(mid)[0] < packs[r]) lo = mid + 1;
      else hi = mid;
    }
    for (int64_t i = lo; i < n && split.media_item(i)[0] == packs[r]; ++i) {
      const int64_t* m = split.media_item(i);
      const int64_t at = int64_t(r) * batch.seq + m[1];
      if (m[2] == 0) b.add(0, split.tiles.data() + m[3] * tile, nullptr, m[4], at, m[5]);
      else b.add(1, nullptr, split.audio.data() + m[3] * split.mel_bins, m[4], at, m[5]);
    }
  }
  b.finish(batch.media);
}

std::vector<rt::MediaInput> media_inputs(const std::vector<MediaItem>& items, const std::vector<int64_t>& positions,
                                         int64_t tile_size, int64_t mel_bins) {
  Builder b;
  b.tile_size = tile_size, b.mel_bins = mel_bins;
  for (size_t j = 0; j < items.size(); ++j) {
    const MediaItem& m = items[j];
    const bool vision = m.modality == rt::Modality::vision;
    b.add(vision ? 0 : 1, vision ? m.tiles.data() : nullptr, vision ? nullptr : m.frames.data(), m.count, positions[j], m.tokens);
  }
  std::vector<rt::MediaInput> out;
  b.finish(out);
  return out;
}

void append_media(std::vector<rt::MediaInput>& batch, const std::vector<rt::MediaInput>& sequence, int64_t offset) {
  for (const rt::MediaInput& in : sequence) {
    auto it = std::find_if(batch.begin(), batch.end(), [&](const rt::MediaInput& m) { return m.modality == in.modality; });
    if (it == batch.end()) {
      batch.push_back(in);
      for (int64_t& p : batch.back().positions) p += offset;
      continue;
    }
    rt::MediaInput& to = *it;
    for (int64_t p : in.positions) to.positions.push_back(p + offset);
    if (in.modality == rt::Modality::vision) {
      to.data.insert(to.data.end(), in.data.begin(), in.data.end());
      to.items += in.items;
      continue;
    }
    // audio: both sides padded to the longer clip length
    const int64_t M = in.length > 0 ? int64_t(in.data.size()) / (in.items * in.length) : 0;
    const int64_t L = std::max(to.length, in.length);
    auto repad = [&](const rt::MediaInput& m) {
      std::vector<float> out(m.items * L * M, 0.0f);
      for (int64_t i = 0; i < m.items; ++i)
        std::copy_n(m.data.begin() + i * m.length * M, m.length * M, out.begin() + i * L * M);
      return out;
    };
    std::vector<float> data = repad(to), more = repad(in);
    data.insert(data.end(), more.begin(), more.end());
    to.data = std::move(data);
    to.length = L;
    to.items += in.items;
    to.valid.insert(to.valid.end(), in.valid.begin(), in.valid.end());
  }
}

}  // namespace nemokit::sft
