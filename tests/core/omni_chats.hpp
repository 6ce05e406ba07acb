// The omni chats scripts/setup.sh makes (plugins/stage_sft/corpus/make_omni_chats.sh), and small
// subsets of them that carry along the image, audio and video files their records reference.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>
#include "support/setup_data.hpp"

namespace nemokit::test {

inline std::filesystem::path omni_chats_dir() { return setup_data_dir("NEMOKIT_OMNI_CHATS_DIR", "omni-chats"); }

// The first `per_kind` records of each kind (by the file a record names) of `from`, written to
// TO_DIR/NAME, with the media files they reference copied beside them.
inline void take_omni_chats(const std::filesystem::path& from, const std::filesystem::path& to_dir,
                            const std::string& name, int per_kind) {
  namespace fs = std::filesystem;
  std::ifstream in(from);
  std::ofstream out(to_dir / name);
  std::map<std::string, int> kinds;
  for (std::string line; std::getline(in, line);) {
    nlohmann::json r = nlohmann::json::parse(line);
    std::vector<std::string> files;
    for (const char* key : {"images", "audios"})
      if (r.contains(key))
        for (const auto& f : r[key]) files.push_back(f.get<std::string>());
    if (r.contains("videos"))
      for (const auto& v : r["videos"])
        for (const auto& f : v["frames"]) files.push_back(f.get<std::string>());
    if (files.empty()) continue;
    const std::string kind = files[0].substr(files[0].find('/') + 1, 2);  // fm, dg, w_, v_
    if (kinds[kind]++ >= per_kind) continue;
    for (const auto& f : files) {
      fs::create_directories((to_dir / f).parent_path());
      fs::copy_file(from.parent_path() / f, to_dir / f, fs::copy_options::skip_existing);
    }
    out << line << "\n";
  }
}

}  // namespace nemokit::test
