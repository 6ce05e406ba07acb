// ADD <url> from a python3 http.server on loopback: Docker's file name, mode 0600 and
// Last-Modified mtime, --checksum verified (a mismatch fails at its line); compared with buildah.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>

#include "fidelity_fixture.hpp"

using namespace buildtest;

namespace {

// `python3 -m http.server` serving `dir` on a port the kernel picks, stopped with the object.
class HttpServer {
 public:
  explicit HttpServer(const fs::path& dir) {
    int out[2];
    if (pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      close(out[0]);
      execlp("python3", "python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", dir.c_str(),
             (char*)nullptr);
      _exit(127);
    }
    close(out[1]);
    // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
    std::string line;
    char c;
    while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
    close(out[0]);
    size_t p = line.find(" port ");
    if (p != std::string::npos) port_ = std::stoi(line.substr(p + 6));
  }
  ~HttpServer() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

using AddUrl = Fidelity;

TEST_F(AddUrl, DownloadsWithDockersRulesAndVerifiesTheChecksum) {
  write_file(dir_ / "www/files/model.bin", "weights\n");
  struct timespec times[2] = {{1620284889, 0}, {1620284889, 0}};  // 2021-05-06 07:08:09 UTC
  ASSERT_EQ(utimensat(AT_FDCWD, (dir_ / "www/files/model.bin").c_str(), times, 0), 0);
  HttpServer server(dir_ / "www");
  ASSERT_GT(server.port(), 0) << "python3 -m http.server did not start";
  std::string digest = nemokit::rt::Sha256::digest_of("weights\n");
  std::string url = server.url("/files/model.bin");

  Result r = build("FROM scratch\nADD --checksum=" + digest + " " + url + " /dl/\nADD " + url + "?v=1 /named\n", "url");
  ASSERT_EQ(r.code, 0) << r.err;
  Image mine = ours("url");
  EXPECT_EQ(mine.tree["dl/model.bin"], file_entry("600", "0:0", "weights\n"));
  EXPECT_EQ(mine.tree["named"], file_entry("600", "0:0", "weights\n"));
  {
    SquashfsMount mnt(dir_ / "cache/containers/url.sqsh");
    struct stat st;
    ASSERT_EQ(stat((mnt.root() / "dl/model.bin").c_str(), &st), 0);
    EXPECT_EQ(st.st_mtime, 1620284889);  // Last-Modified
  }
  // buildah 1.28 has no --checksum: it builds the same ADDs without it.
  if (has_buildah_) {
    build("FROM scratch\nADD " + url + " /dl/\nADD " + url + "?v=1 /named\n", "url-plain");
    expect_same_as_buildah("url-plain", mine);
  }

  r = build("FROM scratch\nCOPY a.txt /\nADD --checksum=sha256:" + std::string(64, '0') + " " + url + " /dl/\n", "bad");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("Dockerfile.bad:3:1: ADD " + url + ": checksum mismatch: --checksum=sha256:" + std::string(64, '0') +
                       ", the download is " + digest),
            std::string::npos)
      << r.err;
  r = build("FROM scratch\nADD " + server.url("/missing") + " /x\n", "missing");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("Dockerfile.missing:2:1: ADD " + server.url("/missing") + ": "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("404"), std::string::npos) << r.err;
}

}  // namespace
