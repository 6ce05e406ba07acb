#include "nemokit/runtime/run/resume_check.hpp"

#include "nemokit/runtime/sha256.hpp"

#include <algorithm>
#include <stdexcept>
#include <vector>

namespace nemokit::rt {
namespace fs = std::filesystem;
using nlohmann::json;

json describe_data(const fs::path& prepared) {
  constexpr uintmax_t kHashedUpTo = 1 << 20;
  json files = json::object();
  std::vector<fs::path> found;
  for (auto it = fs::recursive_directory_iterator(prepared); it != fs::recursive_directory_iterator(); ++it) {
    if (it.depth() >= 1) it.disable_recursion_pending();  // the folder and its split folders
    if (it->is_regular_file()) found.push_back(it->path());
  }
  std::sort(found.begin(), found.end());
  for (const auto& f : found) {
    const uintmax_t size = fs::file_size(f);
    json entry = {{"bytes", size}};
    if (size <= kHashedUpTo && f.parent_path() == prepared) entry["sha256"] = sha256_file(f);
    files[f.lexically_relative(prepared).generic_string()] = entry;
  }
  return {{"path", fs::absolute(prepared).lexically_normal().string()}, {"files", files}};
}

void check_same_data(const json& saved, const json& now, const std::string& checkpoint) {
  if (!saved.is_object() || saved.empty() || saved == now) return;
  const std::string start_over =
      ": point checkpoint.dir elsewhere, or set checkpoint.resume = false, to start over on the config's data";
  const std::string was = saved.value("path", "?"), is = now.value("path", "?");
  if (was != is)
    throw std::runtime_error("resuming from " + checkpoint + ": it was trained on " + was + ", the config names " + is + start_over);
  const json& a = saved.value("files", json::object());
  const json& b = now.value("files", json::object());
  std::string what = "its files differ";
  for (const auto& [name, entry] : a.items()) {
    if (!b.contains(name)) { what = name + " is gone"; break; }
    if (b[name] != entry) { what = name + " changed (" + entry.dump() + " then, " + b[name].dump() + " now)"; break; }
  }
  if (what == "its files differ")
    for (const auto& [name, _] : b.items())
      if (!a.contains(name)) { what = name + " is new"; break; }
  throw std::runtime_error("resuming from " + checkpoint + ": the data in " + is + " was prepared again since (" + what + ")" +
                           start_over);
}

}  // namespace nemokit::rt
