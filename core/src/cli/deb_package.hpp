#pragma once
// A Debian binary package written by nemokit itself (nemokit-base installs the nemokit that
// builds it as one, so dpkg in the image knows its files and checks its dependencies).

#include <filesystem>
#include <string>
#include <vector>

namespace nemokit::cli {

struct DebFile {
  std::filesystem::path source;  // on this machine: a file or a symbolic link (kept as one)
  std::string path;              // in the package, without a leading "/": "usr/bin/nemokit"
};

struct DebPackage {
  std::string name, version, architecture, maintainer, description;
  std::vector<std::string> depends;  // package names
  std::vector<DebFile> files;
};

// dpkg's name for this machine's architecture: amd64, arm64, ...
std::string deb_architecture();

// Writes `package` at `out` (through a temporary file renamed into place): an ar archive of
// debian-binary, control.tar and data.tar (uncompressed tars, which dpkg reads). Entries are
// root's, with the files' modes and modification times, so the same files give the same bytes
// and a layer that copies the package stays cached. Throws std::runtime_error naming the file.
void write_deb(const DebPackage& package, const std::filesystem::path& out);

}  // namespace nemokit::cli
