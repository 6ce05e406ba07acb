// Images for the multimodal models: PNG/JPEG decoding to RGB8, bilinear resizing, InternVL's
// dynamic-resolution tiling (as Nemotron Nano VL preprocesses images) and video frames as tiles.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace nemokit::rt::media {

// RGB, 8 bits a channel, row-major: pixel (x, y) is rgb[3 * (y * width + x) + c].
struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

// Images with more pixels than this are refused from their header, before any pixel memory is
// allocated.
inline constexpr int64_t kMaxImagePixels = int64_t{8192} * 8192;

// Decodes a PNG or JPEG, chosen by its first bytes (never the name's extension), to RGB8.
// PNG: gray, gray+alpha, palette, RGB and RGBA at any bit depth, interlaced or not. Alpha and
// palette transparency are dropped (the colour channels are kept as stored), as PIL's
// Image.convert("RGB") does; gray is copied to the three channels; 16-bit samples keep their
// high byte (as PIL reads 16-bit RGB); 1/2/4-bit gray is scaled to 0..255.
// JPEG: gray and YCbCr/RGB (libjpeg-turbo's colour conversion); CMYK/YCCK are refused.
// Every problem (empty, truncated or corrupt data, too many pixels, another format) is a
// std::runtime_error that starts with `name` and says what is wrong.
Image decode_image(std::string_view bytes, const std::string& name);
Image read_image(const std::filesystem::path& file);

// Bilinear resampling with align_corners=false and no antialiasing: output pixel (x, y) samples
// the source at ((x + 0.5) * in_w / w - 0.5, (y + 0.5) * in_h / h - 0.5), clamped to the image,
// as torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=False) does
// in float32; the result is rounded to the nearest integer (halves away from zero). Downscaling
// therefore reads only the 2x2 neighbourhood (PIL's BILINEAR filter widens its support and
// averages, so the two agree only when enlarging).
Image resize_bilinear(const Image& image, int width, int height);

struct TileOptions {
  int tile_size = 448;
  int min_tiles = 1;
  int max_tiles = 12;
  bool thumbnail = true;  // append the whole image as one more tile when the grid has several
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};
  std::array<float, 3> std{0.229f, 0.224f, 0.225f};
};

// `count` tiles of 3 x tile_size x tile_size floats, channel-major within a tile, each value
// (x / 255 - mean[c]) / std[c]. grid_w x grid_h is the grid the image was cut into (1 x 1 for a
// single tile and for video frames); with a thumbnail, count = grid_w * grid_h + 1.
struct Tiles {
  int64_t count = 0;
  int tile_size = 0;
  int grid_w = 0, grid_h = 0;
  std::vector<float> pixels;
};

// InternVL's dynamic_preprocess: among the grids (columns i, rows j) with
// min_tiles <= i * j <= max_tiles, in order of area, pick the one whose i / j is closest to the
// image's width / height; on a tie the later (larger) grid wins when the image's area exceeds half
// the grid's (i * j * tile_size^2 / 2), as find_closest_aspect_ratio. Grids of equal area are
// taken with i ascending. The image is resized (bilinear) to (i * tile_size, j * tile_size), cut
// into tiles row by row, and, when there are several and options.thumbnail is set, followed by the
// whole image resized to one tile.
Tiles tile_image(const Image& image, const TileOptions& options);
// The grid tile_image would choose for a width x height image: {columns, rows}.
std::array<int, 2> choose_tile_grid(int width, int height, const TileOptions& options);

struct VideoOptions {
  double fps = 2.0;          // frames sampled per second of video
  int max_frames = 8;        // cap; when more would be sampled, this many are spread evenly
  double evs_threshold = 0;  // efficient video sampling; 0 = off
};

// Video as one tile per sampled frame (each frame resized to tile_size x tile_size, no grid).
// Frame k of the video is frame_files[k], shown at k / source_fps seconds. Sampling takes, for
// t = 0, 1 / fps, 2 / fps, ... before the end, the frame floor(t * source_fps) (every frame when
// fps >= source_fps); when that gives more than max_frames, the m-th of max_frames is candidate
// round(m * (n - 1) / (max_frames - 1)). Efficient video sampling: with evs_threshold > 0, a
// frame whose tile differs from the last kept tile by a mean absolute difference (over all
// normalized values) below the threshold is dropped; the first sampled frame is always kept.
// Only the sampled frames are read. kept_frames, if given, receives the kept frames' indices.
Tiles video_tiles(const std::vector<std::filesystem::path>& frame_files, double source_fps, const VideoOptions& video,
                  const TileOptions& options, std::vector<int64_t>* kept_frames = nullptr);
// The frame indices video_tiles samples (before efficient video sampling) from n_frames frames.
std::vector<int64_t> sample_video_frames(int64_t n_frames, double source_fps, const VideoOptions& video);

}  // namespace nemokit::rt::media
