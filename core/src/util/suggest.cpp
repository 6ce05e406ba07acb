#include "util/suggest.hpp"

#include <algorithm>
#include <cctype>

namespace nemokit {

namespace {

std::string lower(const std::string& s) {
  std::string out = s;
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Damerau-Levenshtein distance, restricted form (optimal string alignment): a swap of two
// neighbouring letters, the commonest typo, costs one edit instead of two.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

}  // namespace

std::vector<std::string> closest_names(const std::string& typed, const std::vector<std::string>& known, size_t limit) {
  // Words from the command line can be arbitrarily long; past this nothing is a typo of a name.
  constexpr size_t kLongest = 200;
  if (typed.empty() || typed.size() > kLongest) return {};
  std::string t = lower(typed);
  std::vector<std::pair<size_t, std::string>> near;
  for (const std::string& k : known) {
    if (k.empty() || k.size() > kLongest || k == typed) continue;
    if (std::any_of(near.begin(), near.end(), [&](auto& n) { return n.second == k; })) continue;
    size_t allowed = std::max<size_t>(1, std::max(t.size(), k.size()) / 3);
    size_t d = edit_distance(t, lower(k));
    if (d <= allowed) near.emplace_back(d, k);
  }
  std::stable_sort(near.begin(), near.end(), [](auto& x, auto& y) { return x.first < y.first; });
  std::vector<std::string> out;
  for (size_t i = 0; i < near.size() && i < limit; ++i) out.push_back(near[i].second);
  return out;
}

std::string did_you_mean(const std::string& typed, const std::vector<std::string>& known) {
  return did_you_mean(closest_names(typed, known));
}

std::string did_you_mean(const std::vector<std::string>& near) {
  if (near.empty()) return "";
  std::string out = "; did you mean ";
  for (size_t i = 0; i < near.size(); ++i)
    out += (i == 0 ? "" : i + 1 == near.size() ? " or " : ", ") + ("'" + near[i] + "'");
  return out + "?";
}

}  // namespace nemokit
