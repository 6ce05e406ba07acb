// Video as one tile per sampled frame, with efficient video sampling (dropping frames that barely
// differ from the last kept one).
#include "tile_pixels.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace nemokit::rt::media {

std::vector<int64_t> sample_video_frames(int64_t n_frames, double source_fps, const VideoOptions& v) {
  if (n_frames < 0) throw std::invalid_argument("video: negative frame count");
  if (!(source_fps > 0) || !std::isfinite(source_fps))
    throw std::invalid_argument("video: source fps must be positive, got " + std::to_string(source_fps));
  if (!(v.fps > 0) || !std::isfinite(v.fps))
    throw std::invalid_argument("video: sampling fps must be positive, got " + std::to_string(v.fps));
  if (v.max_frames < 1) throw std::invalid_argument("video: max_frames must be at least 1");
  if (!(v.evs_threshold >= 0)) throw std::invalid_argument("video: evs_threshold must be >= 0");
  std::vector<int64_t> picked;
  if (v.fps >= source_fps) {
    for (int64_t k = 0; k < n_frames; ++k) picked.push_back(k);
  } else {
    const double step = source_fps / v.fps;
    for (int64_t k = 0;; ++k) {
      // The small allowance keeps exact multiples (30 / 2 * k) from flooring one frame early.
      const auto index = int64_t(std::floor(double(k) * step + 1e-9));
      if (index >= n_frames) break;
      picked.push_back(index);
    }
  }
  const int64_t n = int64_t(picked.size()), m = v.max_frames;
  if (n <= m) return picked;
  std::vector<int64_t> spread;
  for (int64_t i = 0; i < m; ++i)
    spread.push_back(picked[size_t(m == 1 ? 0 : (2 * i * (n - 1) + (m - 1)) / (2 * (m - 1)))]);
  return spread;
}

Tiles video_tiles(const std::vector<std::filesystem::path>& frame_files, double source_fps, const VideoOptions& video,
                  const TileOptions& options, std::vector<int64_t>* kept_frames) {
  detail::check_tile_options(options);
  if (frame_files.empty()) throw std::invalid_argument("video: no frames");
  const std::vector<int64_t> sampled = sample_video_frames(int64_t(frame_files.size()), source_fps, video);
  const int t = options.tile_size;
  const size_t per_tile = size_t(3) * size_t(t) * size_t(t);
  Tiles tiles;
  tiles.tile_size = t;
  tiles.grid_w = tiles.grid_h = 1;
  if (kept_frames) kept_frames->clear();
  std::vector<float> tile(per_tile);
  for (int64_t index : sampled) {
    detail::write_tile(resize_bilinear(read_image(frame_files[size_t(index)]), t, t), 0, 0, options, tile.data());
    if (video.evs_threshold > 0 && tiles.count > 0) {
      const float* last = tiles.pixels.data() + tiles.pixels.size() - per_tile;
      double sum = 0;
      for (size_t i = 0; i < per_tile; ++i) sum += std::fabs(double(tile[i]) - double(last[i]));
      if (sum / double(per_tile) < video.evs_threshold) continue;
    }
    tiles.pixels.insert(tiles.pixels.end(), tile.begin(), tile.end());
    ++tiles.count;
    if (kept_frames) kept_frames->push_back(index);
  }
  return tiles;
}

}  // namespace nemokit::rt::media
