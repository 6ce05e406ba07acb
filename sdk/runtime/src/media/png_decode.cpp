// PNG -> RGB8 with libpng. libpng reports errors by longjmp: the frame that calls setjmp
// (run_png) holds no C++ object, and everything that outlives an error (the decoder state, the
// pixels, the row pointers) belongs to PngDecode, owned by the caller, so a longjmp skips no
// destructor.
#include "image_codecs.hpp"

#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace nemokit::rt::media::detail {
namespace {

struct PngDecode {
  const unsigned char* data = nullptr;
  size_t size = 0, pos = 0;
  const std::string* name = nullptr;
  char error[512] = {};
  png_structp png = nullptr;
  png_infop info = nullptr;
  Image image;
  std::vector<png_bytep> rows;

  ~PngDecode() {
    if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
  }
};

void on_png_error(png_structp png, png_const_charp message) {
  auto* d = static_cast<PngDecode*>(png_get_error_ptr(png));
  std::snprintf(d->error, sizeof d->error, "%s", message);
  png_longjmp(png, 1);
}

void on_png_warning(png_structp, png_const_charp) {}  // ancillary-chunk trouble: the pixels are fine

void read_png_bytes(png_structp png, png_bytep out, size_t n) {
  auto* d = static_cast<PngDecode*>(png_get_io_ptr(png));
  if (n > d->size - d->pos) png_error(png, "truncated: the data ends before the image does");
  std::memcpy(out, d->data + d->pos, n);
  d->pos += n;
}

// Returns false with d.error set when libpng reports a problem; throws (no libpng frame is in
// between) when the image is too large.
bool run_png(PngDecode& d) {
  if (setjmp(png_jmpbuf(d.png))) return false;
  png_set_read_fn(d.png, &d, read_png_bytes);
  png_read_info(d.png, d.info);
  const png_uint_32 width = png_get_image_width(d.png, d.info), height = png_get_image_height(d.png, d.info);
  check_image_size(width, height, *d.name, "PNG");
  const int color = png_get_color_type(d.png, d.info), depth = png_get_bit_depth(d.png, d.info);
  if (depth == 16) png_set_strip_16(d.png);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(d.png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(d.png);
  // Expanding a palette (or low-bit gray) with a tRNS chunk adds an alpha channel: drop it too.
  if ((color & PNG_COLOR_MASK_ALPHA) || png_get_valid(d.png, d.info, PNG_INFO_tRNS)) png_set_strip_alpha(d.png);
  if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(d.png);
  png_set_interlace_handling(d.png);
  png_read_update_info(d.png, d.info);
  if (png_get_channels(d.png, d.info) != 3 || png_get_bit_depth(d.png, d.info) != 8 ||
      png_get_rowbytes(d.png, d.info) != size_t(width) * 3) {
    std::snprintf(d.error, sizeof d.error, "colour type %d at %d bits does not convert to RGB8", color, depth);
    return false;
  }
  d.image.width = int(width);
  d.image.height = int(height);
  d.image.rgb.resize(size_t(width) * height * 3);
  d.rows.resize(height);
  for (png_uint_32 y = 0; y < height; ++y) d.rows[y] = d.image.rgb.data() + size_t(y) * width * 3;
  png_read_image(d.png, d.rows.data());
  png_read_end(d.png, nullptr);
  return true;
}

}  // namespace

Image decode_png(std::string_view bytes, const std::string& name) {
  PngDecode d;
  d.data = reinterpret_cast<const unsigned char*>(bytes.data());
  d.size = bytes.size();
  d.name = &name;
  d.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &d, on_png_error, on_png_warning);
  if (!d.png) throw std::runtime_error(name + ": cannot decode PNG: libpng could not start");
  d.info = png_create_info_struct(d.png);
  if (!d.info) throw std::runtime_error(name + ": cannot decode PNG: libpng could not start");
  if (!run_png(d)) throw std::runtime_error(name + ": cannot decode PNG: " + d.error);
  return std::move(d.image);
}

}  // namespace nemokit::rt::media::detail
