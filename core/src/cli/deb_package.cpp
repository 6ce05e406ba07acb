#include "cli/deb_package.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iterator>
#include <set>
#include <stdexcept>

#include "util/read_file.hpp"

#include "nemokit/runtime/atomic_file.hpp"

namespace nemokit::cli {
namespace fs = std::filesystem;

namespace {

// A tar (ustar/pax, uncompressed) built in memory.
class TarWriter {
 public:
  TarWriter() : a_(archive_write_new()) {
    archive_write_set_format_pax_restricted(a_);
    archive_write_set_bytes_in_last_block(a_, 1);
    if (archive_write_open(a_, &out_, nullptr, append, nullptr) != ARCHIVE_OK) fail("opening");
  }
  ~TarWriter() { archive_write_free(a_); }
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;

  void directory(const std::string& path, time_t mtime) { add(path, AE_IFDIR | 0755, mtime, nullptr, 0, ""); }
  void file(const std::string& path, unsigned mode, time_t mtime, const std::string& bytes) {
    add(path, AE_IFREG | mode, mtime, bytes.data(), bytes.size(), "");
  }
  void symlink(const std::string& path, time_t mtime, const std::string& target) { add(path, AE_IFLNK | 0777, mtime, nullptr, 0, target); }
  std::string finish() {
    if (archive_write_close(a_) != ARCHIVE_OK) fail("closing");
    return std::move(out_);
  }

 private:
  static la_ssize_t append(struct archive*, void* out, const void* data, size_t n) {
    static_cast<std::string*>(out)->append(static_cast<const char*>(data), n);
    return la_ssize_t(n);
  }
  [[noreturn]] void fail(const std::string& what) { throw std::runtime_error("package tar: " + what + ": " + archive_error_string(a_)); }
  void add(const std::string& path, unsigned mode, time_t mtime, const char* data, size_t size, const std::string& link) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, ("./" + path).c_str());
    archive_entry_set_mode(e, mode);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_entry_set_uname(e, "root");
    archive_entry_set_gname(e, "root");
    archive_entry_set_mtime(e, mtime, 0);
    archive_entry_set_size(e, la_int64_t(size));
    if (!link.empty()) archive_entry_set_symlink(e, link.c_str());
    if (archive_write_header(a_, e) != ARCHIVE_OK) {
      archive_entry_free(e);
      fail(path);
    }
    if (size && archive_write_data(a_, data, size) != la_ssize_t(size)) {
      archive_entry_free(e);
      fail(path);
    }
    archive_entry_free(e);
  }
  struct archive* a_;
  std::string out_;
};

// One member of the ar archive: the 60-byte header, the bytes, padded to an even length.
void ar_member(std::string& out, const std::string& name, const std::string& bytes) {
  char header[61];
  std::snprintf(header, sizeof header, "%-16s%-12d%-6d%-6d%-8s%-10zu`\n", name.c_str(), 0, 0, 0, "100644", bytes.size());
  out.append(header, 60);
  out += bytes;
  if (bytes.size() % 2) out += '\n';
}

}  // namespace

std::string deb_architecture() {
  struct utsname u;
  if (uname(&u) != 0) throw std::runtime_error(std::string("uname: ") + std::strerror(errno));
  const std::string m = u.machine;
  if (m == "x86_64") return "amd64";
  if (m == "aarch64") return "arm64";
  if (m == "ppc64le") return "ppc64el";
  if (m == "s390x" || m == "riscv64") return m;
  throw std::runtime_error("no Debian architecture name for this machine (" + m + ")");
}

void write_deb(const DebPackage& package, const fs::path& out) {
  // data.tar: the files, each folder above them first (as dpkg-deb lays them out).
  TarWriter data;
  data.directory("", 0);
  std::set<std::string> folders;
  for (const DebFile& f : package.files) {
    struct stat st;
    if (lstat(f.source.c_str(), &st) != 0)
      throw std::runtime_error(f.source.string() + ": " + std::strerror(errno) + " (for " + package.name + ")");
    const fs::path inside(f.path);
    std::string folder;
    for (auto it = inside.begin(); std::next(it) != inside.end(); ++it) {
      folder += (folder.empty() ? "" : "/") + it->string();
      if (folders.insert(folder).second) data.directory(folder + "/", st.st_mtime);
    }
    if (S_ISLNK(st.st_mode))
      data.symlink(f.path, st.st_mtime, fs::read_symlink(f.source).string());
    else if (S_ISREG(st.st_mode))
      data.file(f.path, st.st_mode & 07777, st.st_mtime, read_file(f.source));
    else
      throw std::runtime_error(f.source.string() + ": neither a file nor a symbolic link (for " + package.name + ")");
  }

  std::string depends;
  for (const std::string& d : package.depends) depends += (depends.empty() ? "" : ", ") + d;
  std::string control_text = "Package: " + package.name + "\nVersion: " + package.version + "\nArchitecture: " +
                             package.architecture + "\nMaintainer: " + package.maintainer + "\n";
  if (!depends.empty()) control_text += "Depends: " + depends + "\n";
  control_text += "Section: science\nPriority: optional\nDescription: " + package.description + "\n";
  TarWriter control;
  control.directory("", 0);
  control.file("control", 0644, 0, control_text);

  std::string deb = "!<arch>\n";
  ar_member(deb, "debian-binary", "2.0\n");
  ar_member(deb, "control.tar", control.finish());
  ar_member(deb, "data.tar", data.finish());
  rt::write_file_atomic(out, deb);
}

}  // namespace nemokit::cli
