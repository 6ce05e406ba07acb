#pragma once
// The files enroot writes into an image from its config, so that pyxis/enroot
// start the container as the image intends: /etc/environment (Env), /etc/rc
// (labels as comments, WorkingDir, Entrypoint/Cmd with exec), /etc/rc.local (a
// stub rc sources), /etc/fstab (a bind mount per Volume).
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace nemokit::oci {

struct GeneratedFile {
  std::string path;  // relative to the image root
  std::string content;
  uint32_t mode = 0644;
};

struct EnrootFiles {
  std::vector<GeneratedFile> files;
  std::string workdir;  // created when missing, as enroot does
};

EnrootFiles enroot_files(const nlohmann::json& image_config);

}  // namespace nemokit::oci
