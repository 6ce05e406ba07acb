#pragma once

#include <string>
#include <vector>

namespace nemokit {

// The known names closest to a misspelt one, nearest first (ties in the order given), at most
// `limit`. A name counts as close when its edit distance (insert, delete, replace, or swap two
// neighbours; case ignored) is at most a third of the longer word, and at least 1: "trian" finds
// "train", while a short word is not matched to every other short word.
std::vector<std::string> closest_names(const std::string& typed, const std::vector<std::string>& known, size_t limit = 3);

// "; did you mean 'a'?" or "; did you mean 'a' or 'b'?" for the end of an error message, or ""
// when nothing is close.
std::string did_you_mean(const std::string& typed, const std::vector<std::string>& known);

// The same ending for names already chosen (closest_names rewritten for display), "" for none.
std::string did_you_mean(const std::vector<std::string>& near);

}  // namespace nemokit
