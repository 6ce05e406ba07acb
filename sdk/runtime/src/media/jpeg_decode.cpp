// JPEG -> RGB8 with libjpeg-turbo. Its errors end in longjmp: the frame that calls setjmp
// (run_jpeg) holds no C++ object; the decoder state and the pixels belong to JpegDecode, owned by
// the caller, so a longjmp skips no destructor. Truncated data and lost entropy-coded segments
// are errors (libjpeg would only warn and fill the rest with gray).
#include "image_codecs.hpp"

#include <cstdio>  // jpeglib.h needs FILE and size_t first
#include <jerror.h>
#include <jpeglib.h>

#include <csetjmp>
#include <stdexcept>

namespace nemokit::rt::media::detail {
namespace {

struct JpegDecode {
  jpeg_decompress_struct cinfo{};
  jpeg_error_mgr err{};
  std::jmp_buf jump;
  char error[JMSG_LENGTH_MAX + 64] = {};
  bool created = false;
  const std::string* name = nullptr;
  Image image;

  ~JpegDecode() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

JpegDecode* state(j_common_ptr cinfo) { return static_cast<JpegDecode*>(cinfo->client_data); }

void on_jpeg_error(j_common_ptr cinfo) {
  JpegDecode* d = state(cinfo);
  (*cinfo->err->format_message)(cinfo, d->error);
  std::longjmp(d->jump, 1);
}

void on_jpeg_message(j_common_ptr cinfo, int level) {
  if (level != -1) return;  // trace messages
  const int code = cinfo->err->msg_code;
  if (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_MUST_RESYNC) {
    JpegDecode* d = state(cinfo);
    char message[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, message);
    std::snprintf(d->error, sizeof d->error, "%s%s", code == JWRN_JPEG_EOF ? "truncated: " : "", message);
    std::longjmp(d->jump, 1);
  }
  // Other warnings (extraneous bytes before a marker, ...) leave the image intact.
}

// Returns false with d.error set when libjpeg reports a problem; throws (no libjpeg frame is in
// between) for images that are too large or in CMYK.
bool run_jpeg(JpegDecode& d, const unsigned char* data, size_t size) {
  jpeg_decompress_struct& c = d.cinfo;
  c.err = jpeg_std_error(&d.err);
  d.err.error_exit = on_jpeg_error;
  d.err.emit_message = on_jpeg_message;
  c.client_data = &d;
  if (setjmp(d.jump)) return false;
  jpeg_create_decompress(&c);
  d.created = true;
  jpeg_mem_src(&c, data, static_cast<unsigned long>(size));
  jpeg_read_header(&c, TRUE);
  check_image_size(c.image_width, c.image_height, *d.name, "JPEG");
  if (c.jpeg_color_space == JCS_CMYK || c.jpeg_color_space == JCS_YCCK)
    throw std::runtime_error(*d.name + ": CMYK JPEG images are not supported (convert it to RGB)");
  c.out_color_space = JCS_RGB;
  jpeg_start_decompress(&c);
  if (c.output_components != 3) {
    std::snprintf(d.error, sizeof d.error, "%d output components, expected 3", c.output_components);
    return false;
  }
  d.image.width = int(c.output_width);
  d.image.height = int(c.output_height);
  d.image.rgb.resize(size_t(c.output_width) * c.output_height * 3);
  while (c.output_scanline < c.output_height) {
    JSAMPROW row = d.image.rgb.data() + size_t(c.output_scanline) * c.output_width * 3;
    jpeg_read_scanlines(&c, &row, 1);
  }
  jpeg_finish_decompress(&c);
  return true;
}

}  // namespace

Image decode_jpeg(std::string_view bytes, const std::string& name) {
  JpegDecode d;
  d.name = &name;
  if (!run_jpeg(d, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()))
    throw std::runtime_error(name + ": cannot decode JPEG: " + d.error);
  return std::move(d.image);
}

}  // namespace nemokit::rt::media::detail
