#include "url_source.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "nemokit/dockerfile/dockerfile.hpp"
#include "nemokit/runtime/fd_io.hpp"
#include "nemokit/runtime/sha256.hpp"

namespace nemokit::dockerfile {
namespace fs = std::filesystem;

namespace {

struct Sink {
  int fd = -1;
  rt::Sha256 hash;
  bool failed = false;
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<Sink*>(user);
  if (!rt::write_all(s->fd, data, size * n)) {
    s->failed = true;
    return 0;
  }
  s->hash.update(std::string_view(data, size * n));
  return size * n;
}

// The last component of the URL's path, without query or fragment.
std::string file_name_of(const std::string& url) {
  size_t start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  size_t path = url.find('/', start);
  if (path == std::string::npos) return "index.html";
  std::string p = url.substr(path, url.find_first_of("?#", path) - path);
  while (!p.empty() && p.back() == '/') p.pop_back();
  std::string name = p.substr(p.rfind('/') + 1);
  return name.empty() || name == "." || name == ".." ? "index.html" : name;
}

}  // namespace

bool is_url_source(const std::string& word) { return word.rfind("http://", 0) == 0 || word.rfind("https://", 0) == 0; }

DownloadedFile download_url(const std::string& url, const fs::path& folder, const std::string& what) {
  static bool curl_ready = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  if (!curl_ready) throw BuildError(what + " " + url + ": libcurl failed to start");
  DownloadedFile out;
  out.name = file_name_of(url);
  out.path = folder / out.name;
  fs::path part = folder / (out.name + ".part");
  Sink sink;
  sink.fd = open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (sink.fd < 0) throw BuildError(what + " " + url + ": " + part.string() + ": " + std::strerror(errno));
  CURL* c = curl_easy_init();
  char error[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "nemokit");
  curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(c, CURLOPT_FILETIME, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  CURLcode rc = curl_easy_perform(c);
  curl_off_t filetime = -1;
  curl_easy_getinfo(c, CURLINFO_FILETIME_T, &filetime);
  curl_easy_cleanup(c);
  bool closed = close(sink.fd) == 0;
  if (rc != CURLE_OK || sink.failed || !closed) {
    fs::remove(part);
    throw BuildError(what + " " + url + ": " +
                     (sink.failed ? "writing " + part.string() : std::string(*error ? error : curl_easy_strerror(rc))));
  }
  if (filetime >= 0) {
    struct timespec times[2] = {{time_t(filetime), 0}, {time_t(filetime), 0}};
    utimensat(AT_FDCWD, part.c_str(), times, 0);
  }
  fs::rename(part, out.path);
  out.digest = sink.hash.finish_digest();
  return out;
}

}  // namespace nemokit::dockerfile
