// One tile of an RGB8 image as normalized float planes, shared by image and video tiling.
#pragma once

#include "nemokit/runtime/media/image.hpp"

namespace nemokit::rt::media::detail {

// Throws std::invalid_argument naming the bad field.
void check_tile_options(const TileOptions& options);

// Writes the tile_size x tile_size block of `image` whose top-left pixel is (x0, y0) to out
// ([3, tile, tile], (v / 255 - mean[c]) / std[c] in float32, as torchvision's ToTensor + Normalize).
void write_tile(const Image& image, int x0, int y0, const TileOptions& options, float* out);

}  // namespace nemokit::rt::media::detail
