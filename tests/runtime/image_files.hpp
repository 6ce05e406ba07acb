// PNG and JPEG files for runtime_image_test, written with libpng and libjpeg-turbo themselves
// (the test links both): every colour type, bit depth and interlacing the decoder must read.
#pragma once

#include <png.h>

#include <cstdio>  // jpeglib.h needs FILE and size_t first
#include <jpeglib.h>

#include <csetjmp>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace image_files {

struct PngSpec {
  int width = 0, height = 0;
  int color_type = PNG_COLOR_TYPE_RGB;
  int bit_depth = 8;
  bool interlaced = false;
  std::vector<uint8_t> rows;            // height rows as PNG stores them (packed, 16-bit big-endian)
  std::vector<png_color> palette;       // PNG_COLOR_TYPE_PALETTE
  std::vector<uint8_t> palette_alpha;   // tRNS for palette images
  bool has_transparent_colour = false;  // tRNS for gray and RGB images
  png_color_16 transparent_colour{};
};

namespace detail {
struct PngWrite {
  std::string out;
  char error[256] = {};
};
inline void on_error(png_structp png, png_const_charp message) {
  auto* w = static_cast<PngWrite*>(png_get_error_ptr(png));
  std::snprintf(w->error, sizeof w->error, "%s", message);
  png_longjmp(png, 1);
}
inline void on_write(png_structp png, png_bytep data, size_t n) {
  static_cast<PngWrite*>(png_get_io_ptr(png))->out.append(reinterpret_cast<const char*>(data), n);
}
inline void on_flush(png_structp) {}
inline bool run_png_write(PngWrite& w, const PngSpec& s, png_structp png, png_infop info, png_bytep* rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_write_fn(png, &w, on_write, on_flush);
  png_set_IHDR(png, info, png_uint_32(s.width), png_uint_32(s.height), s.bit_depth, s.color_type,
               s.interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!s.palette.empty()) png_set_PLTE(png, info, s.palette.data(), int(s.palette.size()));
  if (!s.palette_alpha.empty())
    png_set_tRNS(png, info, s.palette_alpha.data(), int(s.palette_alpha.size()), nullptr);
  if (s.has_transparent_colour) {
    png_color_16 colour = s.transparent_colour;
    png_set_tRNS(png, info, nullptr, 0, &colour);
  }
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, info);
  return true;
}
}  // namespace detail

inline std::string encode_png(const PngSpec& s) {
  detail::PngWrite w;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &w, detail::on_error, nullptr);
  png_infop info = png_create_info_struct(png);
  const size_t row_bytes = s.rows.size() / size_t(s.height);
  std::vector<png_bytep> rows(size_t(s.height));
  std::vector<uint8_t> data = s.rows;
  for (int y = 0; y < s.height; ++y) rows[size_t(y)] = data.data() + size_t(y) * row_bytes;
  const bool ok = detail::run_png_write(w, s, png, info, rows.data());
  png_destroy_write_struct(&png, &info);
  if (!ok) throw std::runtime_error(std::string("test PNG writer: ") + w.error);
  return w.out;
}

// Values 0..2^depth-1, one a pixel, packed most significant bits first as PNG rows are.
inline std::vector<uint8_t> pack_rows(const std::vector<int>& values, int width, int height, int depth) {
  const size_t row_bytes = (size_t(width) * size_t(depth) + 7) / 8;
  std::vector<uint8_t> out(row_bytes * size_t(height), 0);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const size_t bit = size_t(x) * size_t(depth);
      out[size_t(y) * row_bytes + bit / 8] |= uint8_t(values[size_t(y * width + x)] << (8 - depth - int(bit % 8)));
    }
  return out;
}

namespace detail {
struct JpegWrite {
  jpeg_compress_struct c{};
  jpeg_error_mgr err{};
  std::jmp_buf jump;
  char error[JMSG_LENGTH_MAX] = {};
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
};
inline void on_jpeg_error(j_common_ptr c) {
  auto* w = static_cast<JpegWrite*>(c->client_data);
  (*c->err->format_message)(c, w->error);
  std::longjmp(w->jump, 1);
}
inline bool run_jpeg_write(JpegWrite& w, int width, int height, int components, J_COLOR_SPACE space,
                           const uint8_t* pixels, int quality) {
  w.c.err = jpeg_std_error(&w.err);
  w.err.error_exit = on_jpeg_error;
  w.c.client_data = &w;
  if (setjmp(w.jump)) return false;
  jpeg_create_compress(&w.c);
  jpeg_mem_dest(&w.c, &w.buffer, &w.size);
  w.c.image_width = JDIMENSION(width);
  w.c.image_height = JDIMENSION(height);
  w.c.input_components = components;
  w.c.in_color_space = space;
  jpeg_set_defaults(&w.c);
  jpeg_set_quality(&w.c, quality, TRUE);
  jpeg_start_compress(&w.c, TRUE);
  while (w.c.next_scanline < w.c.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(pixels) + size_t(w.c.next_scanline) * size_t(width) * size_t(components);
    jpeg_write_scanlines(&w.c, &row, 1);
  }
  jpeg_finish_compress(&w.c);
  return true;
}
}  // namespace detail

// pixels: height x width x components (JCS_RGB: 3, JCS_GRAYSCALE: 1, JCS_CMYK: 4).
inline std::string encode_jpeg(int width, int height, int components, J_COLOR_SPACE space,
                               const std::vector<uint8_t>& pixels, int quality = 95) {
  detail::JpegWrite w;
  const bool ok = detail::run_jpeg_write(w, width, height, components, space, pixels.data(), quality);
  std::string out = ok ? std::string(reinterpret_cast<const char*>(w.buffer), w.size) : std::string();
  jpeg_destroy_compress(&w.c);
  std::free(w.buffer);
  if (!ok) throw std::runtime_error(std::string("test JPEG writer: ") + w.error);
  return out;
}

}  // namespace image_files
