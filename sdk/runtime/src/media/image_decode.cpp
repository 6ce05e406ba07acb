// decode_image / read_image: the format comes from the first bytes (PNG's 8-byte signature,
// JPEG's SOI marker followed by a marker), never from the file's name.
#include "image_codecs.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace nemokit::rt::media {
namespace {

// Larger files are refused before reading: no image within kMaxImagePixels needs this much.
constexpr std::uintmax_t kMaxImageFileBytes = std::uintmax_t{1} << 30;

bool starts_with(std::string_view bytes, std::string_view magic) { return bytes.substr(0, magic.size()) == magic; }

std::string first_bytes_hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < bytes.size() && i < 8; ++i) {
    if (i) s += ' ';
    s += digits[uint8_t(bytes[i]) >> 4];
    s += digits[uint8_t(bytes[i]) & 15];
  }
  return s;
}

}  // namespace

namespace detail {

void check_image_size(int64_t width, int64_t height, const std::string& name, const char* format) {
  if (width <= 0 || height <= 0)
    throw std::runtime_error(name + ": " + format + " image has no pixels (" + std::to_string(width) + "x" +
                             std::to_string(height) + ")");
  if (width * height > kMaxImagePixels)
    throw std::runtime_error(name + ": " + format + " image is " + std::to_string(width) + "x" +
                             std::to_string(height) + ", more than the " + std::to_string(kMaxImagePixels) +
                             " pixels allowed");
}

}  // namespace detail

Image decode_image(std::string_view bytes, const std::string& name) {
  if (bytes.empty()) throw std::runtime_error(name + ": empty file, not an image");
  if (starts_with(bytes, "\x89PNG\r\n\x1a\n")) return detail::decode_png(bytes, name);
  if (bytes.size() >= 3 && uint8_t(bytes[0]) == 0xFF && uint8_t(bytes[1]) == 0xD8 && uint8_t(bytes[2]) == 0xFF)
    return detail::decode_jpeg(bytes, name);
  throw std::runtime_error(name + ": not a PNG or JPEG image (it starts with " + first_bytes_hex(bytes) + ")");
}

Image read_image(const std::filesystem::path& file) {
  const std::string name = file.string();
  std::error_code ec;
  const auto status = std::filesystem::status(file, ec);
  if (ec || !std::filesystem::exists(status))
    throw std::runtime_error(name + ": cannot open image: " + (ec ? ec.message() : "no such file"));
  if (!std::filesystem::is_regular_file(status)) throw std::runtime_error(name + ": not a regular file, not an image");
  const std::uintmax_t size = std::filesystem::file_size(file, ec);
  if (ec) throw std::runtime_error(name + ": cannot open image: " + ec.message());
  if (size > kMaxImageFileBytes)
    throw std::runtime_error(name + ": " + std::to_string(size) + " bytes is too large for an image");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error(name + ": cannot open image: " + std::strerror(errno));
  std::string bytes(size, '\0');
  in.read(bytes.data(), std::streamsize(size));
  if (in.gcount() != std::streamsize(size)) throw std::runtime_error(name + ": cannot read image: short read");
  return decode_image(bytes, name);
}

}  // namespace nemokit::rt::media
