#pragma once
// A data record's media paths ("images", "audios", "videos"[].frames): found for rewriting and
// resolved inside the data file's folder. Plain JSON and paths, nothing decoded: the RL data prep
// uses them too.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace nemokit::sft {

// `rel` (a record's media path) as a file inside `base`: relative, not leaving it (symbolic links
// resolved), existing. Throws std::invalid_argument naming `where`.
std::filesystem::path resolve_media_path(const std::filesystem::path& base, const std::string& rel, const std::string& where);

// Every media path of a record ("images", "audios", "videos"[].frames), for rewriting in place.
std::vector<nlohmann::json*> media_paths(nlohmann::json& record);

}  // namespace nemokit::sft
