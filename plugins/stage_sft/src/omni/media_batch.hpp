#pragma once
// The media of packed omni3 rows as the runtime's encoder inputs: every tile of the rows' images
// and videos in one vision input, every clip in one audio input (zero-padded to the longest),
// each item's tokens at its placeholder positions.

#include "data/packed_split.hpp"
#include "omni/media_items.hpp"

#include "nemokit/runtime/model.hpp"

#include <vector>

namespace nemokit::sft {

// Adds to `batch` (rows = `packs`, in order) the media of those packs; nothing for text data.
void add_pack_media(rt::Batch& batch, const PackedSplit& split, const std::vector<int64_t>& packs);

// Encoder inputs for media items placed at `positions` of one sequence of length `seq` (row 0),
// used by generation: one input per modality present.
std::vector<rt::MediaInput> media_inputs(const std::vector<MediaItem>& items, const std::vector<int64_t>& positions,
                                         int64_t tile_size, int64_t mel_bins);

// Appends one sequence's encoder inputs (positions within it) to a batch's, the positions moved
// by `offset` (row * seq): tiles join the vision input, clips the audio input (re-padded to
// the longest clip).
void append_media(std::vector<rt::MediaInput>& batch, const std::vector<rt::MediaInput>& sequence, int64_t offset);

}  // namespace nemokit::sft
