// Indexes an uncompressed tar (docker save, oci-archive) by member path so
// blobs are read in place. Only what image archives use is understood: ustar,
// pax path/size records, GNU long names, and symlinks between members (old
// docker save links identical layer.tar files).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <vector>

#include "nemokit/oci/blob_store.hpp"
#include "nemokit/oci/error.hpp"

namespace nemokit::oci {
namespace {

uint64_t parse_octal_or_base256(const char* field, size_t len, const std::string& what) {
  auto u = reinterpret_cast<const unsigned char*>(field);
  if (u[0] & 0x80) {  // GNU base-256 for sizes >= 8 GiB
    uint64_t v = u[0] & 0x7f;
    for (size_t i = 1; i < len; ++i) v = (v << 8) | u[i];
    return v;
  }
  uint64_t v = 0;
  size_t i = 0;
  while (i < len && (field[i] == ' ' || field[i] == '\0')) ++i;
  for (; i < len && field[i] >= '0' && field[i] <= '7'; ++i) v = v * 8 + uint64_t(field[i] - '0');
  if (i < len && field[i] != ' ' && field[i] != '\0') throw Error(what + ": corrupt tar header");
  return v;
}

std::string field_string(const char* field, size_t len) { return std::string(field, strnlen(field, len)); }

// pax records: "<len> <key>=<value>\n"
void parse_pax(const std::string& data, std::string& path, std::string& linkpath, std::optional<uint64_t>& size,
               const std::string& what) {
  size_t pos = 0;
  while (pos < data.size()) {
    size_t sp = data.find(' ', pos);
    if (sp == std::string::npos) throw Error(what + ": corrupt pax header");
    uint64_t reclen = 0;
    try {
      reclen = std::stoull(data.substr(pos, sp - pos));
    } catch (const std::exception&) {
      throw Error(what + ": corrupt pax header");
    }
    if (reclen == 0 || pos + reclen > data.size()) throw Error(what + ": corrupt pax header");
    std::string rec = data.substr(sp + 1, pos + reclen - sp - 2);
    size_t eq = rec.find('=');
    if (eq != std::string::npos) {
      std::string key = rec.substr(0, eq), value = rec.substr(eq + 1);
      if (key == "path")
        path = value;
      else if (key == "linkpath")
        linkpath = value;
      else if (key == "size") {
        try {
          size = std::stoull(value);
        } catch (const std::exception&) {
          throw Error(what + ": corrupt pax size record");
        }
      }
    }
    pos += reclen;
  }
}

struct Member {
  uint64_t offset, size;
  bool symlink;
  std::string target;
};

class TarStore : public BlobStore {
 public:
  explicit TarStore(std::filesystem::path file) : file_(std::move(file)) { index(); }

  std::optional<BlobRange> find(const std::string& relpath) const override {
    auto norm = normalize_member_path(relpath);
    if (!norm) throw Error(describe() + ": path leaves the archive root: " + relpath);
    std::string path = *norm;
    for (int hops = 0; hops < 16; ++hops) {
      auto it = members_.find(path);
      if (it == members_.end()) return std::nullopt;
      if (!it->second.symlink) return BlobRange{file_, it->second.offset, it->second.size, file_.string() + ":" + path};
      // Link targets are relative to the link's folder and must stay inside.
      std::string base = path.find('/') == std::string::npos ? std::string() : path.substr(0, path.rfind('/') + 1);
      const std::string& target = it->second.target;
      if (target.empty() || target[0] == '/') throw Error(describe() + ": member " + path + " links outside the archive");
      // Resolve ".." against the link's folder; climbing above the root is an escape.
      std::vector<std::string> parts;
      std::string joined = base + target;
      size_t i = 0;
      while (i <= joined.size()) {
        size_t j = joined.find('/', i);
        if (j == std::string::npos) j = joined.size();
        std::string part = joined.substr(i, j - i);
        i = j + 1;
        if (part.empty() || part == ".") continue;
        if (part == "..") {
          if (parts.empty()) throw Error(describe() + ": member " + path + " links outside the archive");
          parts.pop_back();
          continue;
        }
        parts.push_back(part);
      }
      path.clear();
      for (auto& p : parts) path += (path.empty() ? "" : "/") + p;
    }
    throw Error(describe() + ": too many symlinks resolving " + relpath);
  }
  std::string describe() const override { return file_.string(); }

 private:
  void index() {
    int fd = ::open(file_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(file_.string() + ": " + std::strerror(errno));
    struct stat st;
    ::fstat(fd, &st);
    uint64_t file_size = uint64_t(st.st_size);
    const std::string what = file_.string();
    try {
      uint64_t pos = 0;
      std::string long_name, long_link, pax_path, pax_link;
      std::optional<uint64_t> pax_size;
      char h[512];
      while (pos + 512 <= file_size) {
        read_exact_at(fd, pos, h, 512, what);
        bool zero = true;
        for (char c : h)
          if (c) {
            zero = false;
            break;
          }
        if (zero) break;
        if (std::memcmp(h + 257, "ustar", 5) != 0)
          throw Error(what + ": not a tar archive (bad header at byte " + std::to_string(pos) + ")");
        unsigned sum = 0;
        for (int i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[i]);
        if (sum != parse_octal_or_base256(h + 148, 8, what))
          throw Error(what + ": tar header checksum mismatch at byte " + std::to_string(pos));
        uint64_t size = parse_octal_or_base256(h + 124, 12, what);
        char type = h[156];
        uint64_t data = pos + 512;
        if (type == 'x' || type == 'L' || type == 'K') {
          if (size > (16u << 20)) throw Error(what + ": oversized extended header");
          std::string ext(size, '\0');
          read_exact_at(fd, data, ext.data(), size, what);
          if (type == 'x')
            parse_pax(ext, pax_path, pax_link, pax_size, what);
          else if (type == 'L')
            long_name = field_string(ext.data(), ext.size());
          else
            long_link = field_string(ext.data(), ext.size());
        } else if (type != 'g') {
          std::string name = field_string(h, 100);
          std::string prefix = field_string(h + 345, 155);
          if (!prefix.empty()) name = prefix + "/" + name;
          if (!long_name.empty()) name = long_name;
          if (!pax_path.empty()) name = pax_path;
          std::string link = field_string(h + 157, 100);
          if (!long_link.empty()) link = long_link;
          if (!pax_link.empty()) link = pax_link;
          if (pax_size) size = *pax_size;
          auto norm = normalize_member_path(name);
          if (!norm) throw Error(what + ": member path leaves the archive: " + name);
          if (type == '0' || type == '\0' || type == '7')
            members_[*norm] = Member{data, size, false, {}};
          else if (type == '2')
            members_[*norm] = Member{0, 0, true, link};
          else if (type == '1') {
            auto target = normalize_member_path(link);
            auto it = target ? members_.find(*target) : members_.end();
            if (it == members_.end()) throw Error(what + ": hard link " + name + " to missing member " + link);
            members_[*norm] = it->second;
          }
          long_name.clear();
          long_link.clear();
          pax_path.clear();
          pax_link.clear();
          pax_size.reset();
        }
        pos = data + (size + 511) / 512 * 512;
        if (pos > file_size) throw Error(what + ": archive is truncated");
      }
    } catch (...) {
      ::close(fd);
      throw;
    }
    ::close(fd);
  }

  std::filesystem::path file_;
  std::map<std::string, Member> members_;
};

}  // namespace

std::unique_ptr<BlobStore> open_tar_store(const std::filesystem::path& tar_file) { return std::make_unique<TarStore>(tar_file); }

}  // namespace nemokit::oci
