#include "cli/base_image.hpp"

#include "exec/process.hpp"
#include "util/error.hpp"

namespace nemokit::cli {
namespace fs = std::filesystem;

BaseImageBuild installed_base_image() {
  const fs::path prefix = self_executable().parent_path().parent_path();
  const fs::path containers = prefix / "share" / "nemokit" / "containers";
  // What containers/Dockerfile.base copies from the context, in its order.
  for (const fs::path& need : {containers / "Dockerfile.base", containers / "debian-packages.txt",
                               prefix / "lib" / "nemokit" / "plugins"}) {
    if (!fs::exists(need))
      throw UserError(std::string(kBaseImageName) + " is built from an installed nemokit, and " + need.string() +
                      " is missing (a build tree? `cmake --install BUILD --prefix DIR`, then DIR/bin/nemokit build " +
                      kBaseImageName + ")");
  }
  return {containers / "Dockerfile.base", prefix};
}

}  // namespace nemokit::cli
