#pragma once
// Word counting for BPE training: the pieces the GPT-4 split pattern cuts from text files, with
// special tokens left out. Files are streamed in blocks, so memory stays near threads x block.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace nemokit::rt::tok {

using WordCounts = std::unordered_map<std::string, int64_t>;

// The counts are the same for any `threads` and `block_bytes`: text is only ever cut right after
// a newline that is followed by a non-space character, a point no split match crosses.
WordCounts count_words(const std::vector<std::filesystem::path>& files,
                       const std::vector<std::string>& specials, int threads,
                       size_t block_bytes = size_t{8} << 20);

// The last safe cut in `text` (an offset just after a '\n' followed by a non-space character),
// or 0 when there is none.
size_t last_safe_cut(std::string_view text);

}  // namespace nemokit::rt::tok
