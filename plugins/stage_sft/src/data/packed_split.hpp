#pragma once
// One split of packed SFT data, as a folder of NumPy arrays (numpy.load reads each):
//   input_ids.npy     int32 [packs, pack_size]  token ids; padding after the last document
//   loss_mask.npy     uint8 [packs, pack_size]  1 where the NEXT token is an assistant token of
//                                               the same document (the mask is already shifted:
//                                               position t trains the prediction of t+1)
//   seq_start_id.npy  int32 [documents]         each document's first position in its pack
//   seq_start_ptr.npy int64 [packs + 1]         pack p's documents are
//                                               seq_start_id[seq_start_ptr[p]:seq_start_ptr[p+1]]
//   pack_length.npy   int32 [packs]             end of the pack's last document; positions from
//                                               there to pack_size are padding (pad_id, mask 0)
// omni3 data adds its media (absent for text-only data):
//   media.npy         int64 [items, 6]          pack, first position, modality (0 vision,
//                                               1 audio), first tile/frame, tiles/frames, positions
//   tiles.npy         uint8 [tiles, 3, S, S]    RGB image and video tiles
//   audio.npy         float32 [frames, mels]    log-mel frames, normalized per clip and mel bin

#include <cstdint>
#include <filesystem>
#include <vector>

namespace nemokit::sft {

struct PackedSplit {
  int64_t pack_size = 0;
  std::vector<int32_t> input_ids;     // packs * pack_size
  std::vector<uint8_t> loss_mask;     // packs * pack_size
  std::vector<int32_t> seq_start_id;  // documents
  std::vector<int64_t> seq_start_ptr; // packs + 1
  std::vector<int32_t> pack_length;   // packs
  std::vector<int64_t> media;         // items * kMediaColumns, sorted by pack
  std::vector<uint8_t> tiles;         // tiles * 3 * tile_size^2
  std::vector<float> audio;           // frames * mel_bins
  int64_t tile_size = 0, mel_bins = 0;
  static constexpr int64_t kMediaColumns = 6;

  int64_t media_items() const { return int64_t(media.size()) / kMediaColumns; }
  const int64_t* media_item(int64_t i) const { return media.data() + i * kMediaColumns; }

  int64_t packs() const { return int64_t(seq_start_ptr.empty() ? 0 : seq_start_ptr.size() - 1); }
  // Start positions of pack p's documents, then the end of its last document.
  std::vector<int64_t> document_bounds(int64_t pack) const;

  void write(const std::filesystem::path& dir) const;
  // Reads and cross-checks the four arrays; errors name the file.
  static PackedSplit read(const std::filesystem::path& dir);
};

}  // namespace nemokit::sft
