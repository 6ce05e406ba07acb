#include "cli/base_image.hpp"

#include "cli/deb_package.hpp"
#include "exec/process.hpp"
#include "util/error.hpp"
#include "util/read_file.hpp"

#include "nemokit/runtime/atomic_file.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace nemokit::cli {
namespace fs = std::filesystem;

namespace {

// The package names of debian-packages.txt (whitespace-separated, '#' comments).
std::vector<std::string> package_names(const fs::path& list) {
  std::ifstream in(list);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    if (auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    std::istringstream words(line);
    for (std::string w; words >> w;) out.push_back(w);
  }
  return out;
}

}  // namespace

BaseImageBuild installed_base_image(const fs::path& build_cache_dir, bool write) {
  const fs::path prefix = self_executable().parent_path().parent_path();
  const fs::path containers = prefix / "share" / "nemokit" / "containers";
  const fs::path packages = containers / "debian-packages.txt";
  for (const fs::path& need : {containers / "Dockerfile.base", packages, prefix / "lib" / "nemokit" / "plugins"}) {
    if (!fs::exists(need))
      throw UserError(std::string(kBaseImageName) + " is built from an installed nemokit, and " + need.string() +
                      " is missing (a build tree? `cmake --install BUILD --prefix DIR`, then DIR/bin/nemokit build " +
                      kBaseImageName + ")");
  }
  const fs::path context = build_cache_dir / "base-context";
  if (!write) return {containers / "Dockerfile.base", context};

  DebPackage deb;
  deb.name = "nemokit";
  deb.version = NEMOKIT_VERSION_STRING;
  deb.architecture = deb_architecture();
  deb.maintainer = "nemokit maintainers <nemokit@localhost>";
  deb.description = "Build, prepare data for and train the Nemotron 3 recipes, here or on Slurm";
  deb.depends = package_names(packages);
  deb.files.push_back({prefix / "bin" / "nemokit", "usr/bin/nemokit"});
  for (const auto& e : fs::directory_iterator(prefix / "lib")) {
    const std::string name = e.path().filename().string();
    if (name.rfind("libnemokit_runtime", 0) == 0) deb.files.push_back({e.path(), "usr/lib/" + name});
  }
  for (const auto& e : fs::directory_iterator(prefix / "lib" / "nemokit" / "plugins"))
    deb.files.push_back({e.path(), "usr/lib/nemokit/plugins/" + e.path().filename().string()});
  // The same files in the same order give the same package, whichever order the folder lists.
  std::sort(deb.files.begin(), deb.files.end(), [](const DebFile& a, const DebFile& b) { return a.path < b.path; });
  fs::create_directories(context);
  write_deb(deb, context / "nemokit.deb");
  rt::write_file_atomic(context / "debian-packages.txt", read_file(packages));
  return {containers / "Dockerfile.base", context};
}

}  // namespace nemokit::cli
