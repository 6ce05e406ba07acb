#include "env/code/repo.hpp"

#include <fstream>
#include <sstream>

namespace nemokit::rl::code {
namespace fs = std::filesystem;

namespace {

std::string checked_path(const std::string& rel, const std::string& where) {
  try {
    return clean_repo_path(rel);
  } catch (const PatchError& e) {
    throw std::invalid_argument(where + ": " + e.what());
  }
}

Files from_json(const nlohmann::json& files) {
  if (!files.is_object()) throw std::invalid_argument("task: \"files\" must be an object {path: content}");
  Files out;
  size_t total = 0;
  for (const auto& [path, v] : files.items()) {
    std::string where = "task: files." + path;
    File f;
    if (v.is_string()) {
      f.content = v.get<std::string>();
    } else if (v.is_object() && v.contains("content") && v["content"].is_string()) {
      f.content = v["content"].get<std::string>();
      if (v.contains("executable") && !v["executable"].is_boolean()) throw std::invalid_argument(where + ".executable must be true or false");
      f.executable = v.value("executable", false);
    } else {
      throw std::invalid_argument(where + " must be a text or {\"content\": text, \"executable\": bool}");
    }
    total += f.content.size();
    out[checked_path(path, where)] = std::move(f);
  }
  if (total > kMaxRepoBytes) throw std::invalid_argument("task: \"files\" hold more than 64 MiB");
  return out;
}

Files from_folder(const fs::path& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw std::invalid_argument("task: \"repo\": " + root.string() + " is not a folder");
  Files out;
  size_t total = 0;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::none, ec); it != fs::end(it); it.increment(ec)) {
    if (ec) throw std::invalid_argument("task: \"repo\": reading " + root.string() + ": " + ec.message());
    const fs::path& p = it->path();
    // Lexically: fs::relative would resolve a symlink's target.
    std::string rel = p.lexically_relative(root).generic_string();
    auto st = it->symlink_status();
    if (fs::is_symlink(st)) {
      out[checked_path(rel, p.string())] = File{"", false, fs::read_symlink(p).string()};
    } else if (fs::is_regular_file(st)) {
      std::ifstream in(p, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      if (!in) throw std::invalid_argument("task: \"repo\": cannot read " + p.string());
      bool exec = (st.permissions() & fs::perms::owner_exec) != fs::perms::none;
      total += ss.str().size();
      out[checked_path(rel, p.string())] = File{ss.str(), exec, ""};
    } else if (!fs::is_directory(st)) {
      throw std::invalid_argument("task: \"repo\": " + p.string() + " is neither a file, a folder nor a symlink");
    }
    if (total > kMaxRepoBytes || out.size() > kMaxRepoFiles)
      throw std::invalid_argument("task: \"repo\": " + root.string() + " is larger than 64 MiB or 20000 files");
  }
  return out;
}

}  // namespace

Files load_repo(const nlohmann::json& task) {
  if (task.contains("files")) return from_json(task["files"]);
  if (task.contains("repo")) {
    if (!task["repo"].is_string()) throw std::invalid_argument("task: \"repo\" must be a folder path");
    return from_folder(task["repo"].get<std::string>());
  }
  throw std::invalid_argument("task: needs \"files\" ({path: content}) or \"repo\" (a folder)");
}

}  // namespace nemokit::rl::code
