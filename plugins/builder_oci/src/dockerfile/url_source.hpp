#pragma once
// ADD <url>: the download, with Docker's rules for what lands in the image.
// Private to the builder (src/dockerfile).
#include <filesystem>
#include <string>

namespace nemokit::dockerfile {

bool is_url_source(const std::string& word);

struct DownloadedFile {
  std::filesystem::path path;  // <folder>/<name>
  std::string name;            // the URL path's last component ("index.html" when it has none)
  std::string digest;          // "sha256:<hex>" of the bytes
};

// Downloads `url` (redirects followed; an HTTP error status fails) into `folder` as Docker
// saves it: the file name from the URL's path, mode 0600, mtime from Last-Modified when the
// server sends one. `what` ("Dockerfile:3:1: ADD") prefixes errors.
DownloadedFile download_url(const std::string& url, const std::filesystem::path& folder, const std::string& what);

}  // namespace nemokit::dockerfile
