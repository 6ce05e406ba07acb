#include "omni/media_paths.hpp"

#include <stdexcept>

namespace nemokit::sft {
namespace fs = std::filesystem;
using nlohmann::json;

fs::path resolve_media_path(const fs::path& base, const std::string& rel, const std::string& where) {
  fs::path p(rel);
  if (rel.empty() || p.is_absolute())
    throw std::invalid_argument(where + ": media path \"" + rel + "\" must be relative to the data file's folder");
  const fs::path root = fs::weakly_canonical(base);
  const fs::path full = fs::weakly_canonical(root / p);
  auto r = full.lexically_relative(root);
  if (r.empty() || *r.begin() == "..")
    throw std::invalid_argument(where + ": media path \"" + rel + "\" leaves the data file's folder");
  if (!fs::is_regular_file(full)) throw std::invalid_argument(where + ": media file " + full.string() + " does not exist");
  return full;
}

std::vector<json*> media_paths(json& record) {
  std::vector<json*> out;
  for (const char* key : {"images", "audios"})
    if (record.contains(key) && record[key].is_array())
      for (auto& p : record[key])
        if (p.is_string()) out.push_back(&p);
  if (record.contains("videos") && record["videos"].is_array())
    for (auto& v : record["videos"])
      if (v.is_object() && v.contains("frames") && v["frames"].is_array())
        for (auto& p : v["frames"])
          if (p.is_string()) out.push_back(&p);
  return out;
}

}  // namespace nemokit::sft
