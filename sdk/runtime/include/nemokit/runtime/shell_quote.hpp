#pragma once
// Quoting for shell scripts that nemokit writes (sbatch scripts, enroot's rc file).

#include <string>
#include <string_view>

namespace nemokit::rt {

// `value` as one sh/bash word that expands to exactly itself: single quotes, with each ' written
// as '\'' (what bash's ${var@Q} gives for printable text). Nothing inside ($(), backticks,
// newlines, globs) is interpreted.
std::string shell_quote(std::string_view value);

}  // namespace nemokit::rt
