#pragma once

#include <string>
#include <string_view>

#include "nemokit/runtime/shell_quote.hpp"

namespace nemokit {

// `value` as one bash word that expands to exactly itself (nemokit/runtime/shell_quote.hpp).
using rt::shell_quote;

// `value` as the argument of an #SBATCH line. sbatch reads those lines itself (no shell), splits
// on blanks and honours "..." and backslash escapes, and a newline would end the line and start
// a shell command in the script body: so control characters are refused (UserError naming
// `key`) and the rest is double-quoted with " and \ escaped.
std::string sbatch_quote(std::string_view value, std::string_view key);

// A comment line's text: control characters become '?', so a value can never end the comment.
std::string comment_safe(std::string_view text);

// True for names a shell accepts after `export` ([A-Za-z_][A-Za-z0-9_]*).
bool is_env_name(std::string_view name);

}  // namespace nemokit
