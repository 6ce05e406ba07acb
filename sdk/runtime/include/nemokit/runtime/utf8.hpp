#pragma once
// UTF-8 checks for text that will be written as JSON (which must be UTF-8): finding the byte lets
// an error name where the text goes wrong rather than fail later in the JSON writer.

#include <string>
#include <string_view>

namespace nemokit::rt {

// Where `s` stops being UTF-8 (an invalid, overlong, surrogate or cut sequence), or npos.
size_t invalid_utf8_at(std::string_view s);

}  // namespace nemokit::rt
