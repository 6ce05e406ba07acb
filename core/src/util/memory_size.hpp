#pragma once
// Memory sizes as Slurm writes them ("64G", "512M", "80000"): a number and an optional unit K,
// M, G or T (powers of 1024, M when absent), with an optional "B" or "iB" after it ("80GB",
// "141GiB").
#include <string>

namespace nemokit {

// Bytes. Throws UserError naming `key` for anything else.
long double parse_memory_size(const std::string& text, const std::string& key);

}  // namespace nemokit
