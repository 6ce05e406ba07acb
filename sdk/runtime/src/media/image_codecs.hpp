// The decoders decode_image dispatches to (by the data's first bytes). Each throws
// std::runtime_error("<name>: ...") on any problem and refuses images over kMaxImagePixels
// before allocating their pixels.
#pragma once

#include "nemokit/runtime/media/image.hpp"

#include <string>
#include <string_view>

namespace nemokit::rt::media::detail {

Image decode_png(std::string_view bytes, const std::string& name);
Image decode_jpeg(std::string_view bytes, const std::string& name);

// "<name>: WxH image has more than kMaxImagePixels pixels" when it does.
void check_image_size(int64_t width, int64_t height, const std::string& name, const char* format);

}  // namespace nemokit::rt::media::detail
