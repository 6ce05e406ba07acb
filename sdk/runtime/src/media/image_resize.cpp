// Bilinear resampling, align_corners=false, no antialias: the arithmetic of torch's CPU
// upsample_bilinear2d in float32 (source index (dst + 0.5) * in / out - 0.5 clamped at 0, the
// upper neighbour clamped at the edge, rows blended after columns), then rounded to uint8.
#include "nemokit/runtime/media/image.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace nemokit::rt::media {
namespace {

struct Tap {
  int i0 = 0, i1 = 0;
  float w0 = 1, w1 = 0;
};

std::vector<Tap> taps(int in, int out) {
  std::vector<Tap> t(static_cast<size_t>(out));
  const float scale = float(in) / float(out);
  for (int o = 0; o < out; ++o) {
    float src = scale * (float(o) + 0.5f) - 0.5f;
    if (src < 0) src = 0;
    Tap& tap = t[size_t(o)];
    tap.i0 = std::min(int(src), in - 1);
    tap.i1 = tap.i0 + (tap.i0 < in - 1 ? 1 : 0);
    tap.w1 = std::clamp(src - float(tap.i0), 0.0f, 1.0f);
    tap.w0 = 1.0f - tap.w1;
  }
  return t;
}

}  // namespace

Image resize_bilinear(const Image& image, int width, int height) {
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != size_t(image.width) * size_t(image.height) * 3)
    throw std::invalid_argument("resize_bilinear: the image is " + std::to_string(image.width) + "x" +
                                std::to_string(image.height) + " with " + std::to_string(image.rgb.size()) +
                                " bytes, not RGB8");
  if (width <= 0 || height <= 0 || int64_t(width) * height > kMaxImagePixels)
    throw std::invalid_argument("resize_bilinear: bad target size " + std::to_string(width) + "x" +
                                std::to_string(height));
  if (width == image.width && height == image.height) return image;
  const std::vector<Tap> xs = taps(image.width, width), ys = taps(image.height, height);
  Image out;
  out.width = width;
  out.height = height;
  out.rgb.resize(size_t(width) * size_t(height) * 3);
  const size_t in_row = size_t(image.width) * 3;
  for (int y = 0; y < height; ++y) {
    const Tap& ty = ys[size_t(y)];
    const uint8_t* r0 = image.rgb.data() + size_t(ty.i0) * in_row;
    const uint8_t* r1 = image.rgb.data() + size_t(ty.i1) * in_row;
    uint8_t* dst = out.rgb.data() + size_t(y) * size_t(width) * 3;
    for (int x = 0; x < width; ++x) {
      const Tap& tx = xs[size_t(x)];
      const size_t a = size_t(tx.i0) * 3, b = size_t(tx.i1) * 3;
      for (int c = 0; c < 3; ++c) {
        const float top = tx.w0 * float(r0[a + c]) + tx.w1 * float(r0[b + c]);
        const float bottom = tx.w0 * float(r1[a + c]) + tx.w1 * float(r1[b + c]);
        const float v = ty.w0 * top + ty.w1 * bottom;
        dst[size_t(x) * 3 + c] = uint8_t(std::lround(std::clamp(v, 0.0f, 255.0f)));
      }
    }
  }
  return out;
}

}  // namespace nemokit::rt::media
