#pragma once
// Finding the final answer in a model's response, shared by the verifiable environments.
// The rule (README.md): the content of the last \boxed{...} if there is one; else the rest of
// the last line that starts with "Answer:" (or "Final answer:"; any case; leading spaces, '*',
// '#' and '>' allowed, trailing '*' and '.' dropped); else nothing, and each environment says
// what it does then.

#include <optional>
#include <string>
#include <string_view>

namespace nemokit::rl {

std::optional<std::string> marked_answer(std::string_view response);

// The response after a leading <think>...</think> reasoning block (only spaces and newlines
// before it); empty when that block is never closed; the response itself when it has none.
std::string_view without_reasoning(std::string_view response);

// The content of the last \boxed{...} with balanced braces, or nullopt.
std::optional<std::string> last_boxed(std::string_view text);
// How many \boxed{ openings the text has.
size_t count_boxed(std::string_view text);

// The last number in `text` as written ("-12", "3.5"); digits glued to letters ("x2", "2nd") do
// not count. A '-' is its sign only when it does not follow a letter or digit ("5-3": 5 and 3).
std::optional<std::string> last_number(std::string_view text);
// "-007" -> "-7", "+3" -> "3", "-0" -> "0"; nullopt when `text` is not [+-]?digits.
std::optional<std::string> normalize_integer(std::string_view text);

std::string trim(std::string_view s);
// For reasons: at most `n` bytes, cut between UTF-8 characters, control characters shown as '?',
// "..." when cut.
std::string excerpt(std::string_view s, size_t n = 60);

}  // namespace nemokit::rl
