#include "foreign_exec.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace nemokit::dockerfile {
namespace {

// The names qemu-user's binfmt entries carry (qemu-<name>), by OCI architecture.
std::string qemu_name(const oci::Platform& p) {
  if (p.architecture == "amd64") return "x86_64";
  if (p.architecture == "arm64") return "aarch64";
  if (p.architecture == "386") return "i386";
  return p.architecture;  // arm, ppc64le, s390x, riscv64
}

}  // namespace

std::optional<std::string> foreign_exec_problem(const oci::Platform& platform, const std::string& binfmt_dir) {
  const oci::Platform host = oci::host_platform();
  if (platform.architecture == host.architecture ||
      (host.architecture == "amd64" && platform.architecture == "386"))  // x86-64 kernels run i386 programs
    return std::nullopt;
  const std::string head = "this machine (" + host.str() + ") cannot run " + platform.str() + " programs: ";
  const std::string fix = "; install qemu-user-static (Debian) to register one, or build on a " + platform.str() +
                          " machine (nemokit build IMAGE --run PROFILE with an " + platform.architecture + " build partition)";
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(fs::path(binfmt_dir) / "status", ec))
    return head + "binfmt_misc is not mounted at " + binfmt_dir + ", so no emulator is registered" + fix;
  const fs::path entry = fs::path(binfmt_dir) / ("qemu-" + qemu_name(platform));
  std::ifstream in(entry);
  if (!in) return head + "no binfmt_misc handler " + entry.string() + " is registered" + fix;
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  if (text.rfind("enabled", 0) != 0) return head + "the binfmt_misc handler " + entry.string() + " is disabled" + fix;
  // Without F (fix binary) the kernel looks the emulator up inside the image's root, where it is not.
  size_t flags = text.find("\nflags: ");
  std::string f = flags == std::string::npos ? "" : text.substr(flags + 8, text.find('\n', flags + 1) - flags - 8);
  if (f.find('F') == std::string::npos)
    return head + "the binfmt_misc handler " + entry.string() +
           " is registered without the F flag, so its emulator is not found inside the image" + fix;
  return std::nullopt;
}

}  // namespace nemokit::dockerfile
