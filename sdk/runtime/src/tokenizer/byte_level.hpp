#pragma once
// GPT-2's byte-to-unicode table: every byte gets a printable code point so that BPE tokens are
// plain strings in tokenizer.json ("Ġ" stands for the space byte 0x20).

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nemokit::rt::tok {

// The code point that stands for `byte` in tokenizer.json strings.
char32_t byte_to_codepoint(uint8_t byte);
// The byte a code point stands for, or nothing when it is not one of the 256 stand-ins.
std::optional<uint8_t> codepoint_to_byte(char32_t cp);

// Raw bytes -> their byte-level spelling (UTF-8 of the stand-in code points).
std::string bytes_to_byte_level(std::string_view raw);
// Byte-level spelling -> raw bytes; nothing when a character is not a stand-in
// (such a token decodes as its own UTF-8 text, as the ByteLevel decoder does).
std::optional<std::string> byte_level_to_bytes(std::string_view spelled);

void append_utf8(std::string& out, char32_t cp);
// Unicode White_Space (what Rust's char::is_whitespace and the regex \s of the split patterns see).
bool is_unicode_space(char32_t c);
// Decodes one UTF-8 code point at s[i], advancing i; invalid input yields nothing and advances one byte.
std::optional<char32_t> next_utf8(std::string_view s, size_t& i);

}  // namespace nemokit::rt::tok
