#pragma once
// Packing tokenized conversations into fixed-size rows (Megatron-Bridge's packers):
//   first_fit_shuffle     shuffle (seeded), then put each into the first pack with room (default)
//   first_fit_decreasing  longest first, first pack with room: the fewest packs
//   concatenative         in input order, a new pack when the next one does not fit
// A pack is a list of document indices; documents keep their order inside a pack.

#include <cstdint>
#include <string>
#include <vector>

namespace nemokit::sft {

enum class Packer { FirstFitShuffle, FirstFitDecreasing, Concatenative };

// Throws std::invalid_argument naming data.packer for an unknown name.
Packer parse_packer(const std::string& name);
const char* packer_name(Packer p);

// lengths[i] <= pack_size for every i (the caller rejects or skips longer ones).
std::vector<std::vector<int64_t>> pack_documents(const std::vector<int64_t>& lengths, int64_t pack_size, Packer packer,
                                                 uint64_t seed);

}  // namespace nemokit::sft
