// InternVL's dynamic-resolution tiling (dynamic_preprocess / find_closest_aspect_ratio).
#include "tile_pixels.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace nemokit::rt::media {
namespace detail {

void check_tile_options(const TileOptions& o) {
  if (o.tile_size <= 0 || o.tile_size > 4096)
    throw std::invalid_argument("tile options: tile_size " + std::to_string(o.tile_size) + " is not in 1..4096");
  if (o.min_tiles < 1 || o.max_tiles < o.min_tiles)
    throw std::invalid_argument("tile options: need 1 <= min_tiles <= max_tiles, got " + std::to_string(o.min_tiles) +
                                " and " + std::to_string(o.max_tiles));
  if (int64_t(o.max_tiles) * o.tile_size * o.tile_size > kMaxImagePixels)
    throw std::invalid_argument("tile options: max_tiles " + std::to_string(o.max_tiles) + " tiles of " +
                                std::to_string(o.tile_size) + " pixels exceed the image size limit");
  for (int c = 0; c < 3; ++c)
    if (!std::isfinite(o.mean[c]) || !std::isfinite(o.std[c]) || o.std[c] == 0)
      throw std::invalid_argument("tile options: mean and std must be finite and std non-zero");
}

void write_tile(const Image& image, int x0, int y0, const TileOptions& o, float* out) {
  const int t = o.tile_size;
  float lut[3][256];
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) lut[c][v] = (float(v) / 255.0f - o.mean[c]) / o.std[c];
  const size_t plane = size_t(t) * size_t(t);
  for (int y = 0; y < t; ++y) {
    const uint8_t* src = image.rgb.data() + (size_t(y0 + y) * size_t(image.width) + size_t(x0)) * 3;
    for (int x = 0; x < t; ++x)
      for (int c = 0; c < 3; ++c) out[size_t(c) * plane + size_t(y) * size_t(t) + size_t(x)] = lut[c][src[size_t(x) * 3 + c]];
  }
}

}  // namespace detail

std::array<int, 2> choose_tile_grid(int width, int height, const TileOptions& o) {
  detail::check_tile_options(o);
  if (width <= 0 || height <= 0)
    throw std::invalid_argument("choose_tile_grid: image is " + std::to_string(width) + "x" + std::to_string(height));
  // dynamic_preprocess's candidate grids sorted by area (a stable sort; equal areas keep i ascending).
  std::vector<std::array<int, 2>> grids;
  for (int i = 1; i <= o.max_tiles; ++i)
    for (int j = 1; j <= o.max_tiles; ++j)
      if (i * j >= o.min_tiles && i * j <= o.max_tiles) grids.push_back({i, j});
  std::stable_sort(grids.begin(), grids.end(), [](const auto& a, const auto& b) { return a[0] * a[1] < b[0] * b[1]; });
  const double aspect = double(width) / double(height);
  const double area = double(width) * double(height);
  double best_diff = std::numeric_limits<double>::infinity();
  std::array<int, 2> best{1, 1};
  for (const auto& g : grids) {
    const double diff = std::fabs(aspect - double(g[0]) / double(g[1]));
    if (diff < best_diff) {
      best_diff = diff;
      best = g;
    } else if (diff == best_diff && area > 0.5 * o.tile_size * o.tile_size * g[0] * g[1]) {
      best = g;
    }
  }
  return best;
}

Tiles tile_image(const Image& image, const TileOptions& o) {
  const auto [cols, rows] = choose_tile_grid(image.width, image.height, o);
  const int t = o.tile_size;
  const Image resized = resize_bilinear(image, cols * t, rows * t);
  Tiles tiles;
  tiles.tile_size = t;
  tiles.grid_w = cols;
  tiles.grid_h = rows;
  const int64_t grid = int64_t(cols) * rows;
  tiles.count = grid + (o.thumbnail && grid > 1 ? 1 : 0);
  const size_t per_tile = size_t(3) * size_t(t) * size_t(t);
  tiles.pixels.resize(size_t(tiles.count) * per_tile);
  for (int64_t k = 0; k < grid; ++k)
    detail::write_tile(resized, int(k % cols) * t, int(k / cols) * t, o, tiles.pixels.data() + size_t(k) * per_tile);
  if (tiles.count > grid)
    detail::write_tile(resize_bilinear(image, t, t), 0, 0, o, tiles.pixels.data() + size_t(grid) * per_tile);
  return tiles;
}

}  // namespace nemokit::rt::media
