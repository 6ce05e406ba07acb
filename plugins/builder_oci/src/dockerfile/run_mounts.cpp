#include "run_mounts.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "nemokit/dockerfile/rootfs_path.hpp"
#include "nemokit/runtime/sha256.hpp"

namespace nemokit::dockerfile {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// BuildKit reads the flag as one CSV record: fields split at commas, a field may be quoted.
std::vector<std::string> csv_fields(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (char c : text) {
    if (c == '"') quoted = !quoted;
    if (c == ',' && !quoted) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

std::string join_workdir(const std::string& workdir, const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  return (fs::path(workdir) / path).lexically_normal().string();
}

// A bind's source as a cleaned path inside its root ("" for the root itself); it may not climb
// out of the context or stage.
std::string bind_source(const RunMount& m) {
  std::string rel;
  if (!clean_relative(m.source, rel))
    throw BuildError(m.where.str() + ": --mount source=" + m.source + " leaves " +
                     (m.from.empty() ? "the build context" : "--from=" + m.from));
  return rel;
}

const SecretSource* find_secret(const RunMountSources& src, const std::string& id) {
  if (src.secrets)
    for (auto& s : *src.secrets)
      if (s.id == id) return &s;
  return nullptr;
}

}  // namespace

RunMount parse_run_mount(const Flag& flag, const Vars& vars, const WordOptions& words, const std::string& workdir) {
  auto fail = [&](const std::string& msg) { throw BuildError(flag.where.str() + ": --mount=" + flag.value + ": " + msg); };
  RunMount m;
  m.where = flag.where;
  std::string type = "bind";
  std::optional<bool> read_only;
  std::optional<unsigned> mode;
  std::vector<std::pair<std::string, std::string>> fields;
  for (auto& f : csv_fields(flag.value)) {
    if (f.empty()) continue;
    size_t eq = f.find('=');
    std::string key = f.substr(0, eq);
    for (auto& c : key) c = char(std::tolower(static_cast<unsigned char>(c)));
    std::string value = eq == std::string::npos ? "" : process_word(f.substr(eq + 1), vars, words, flag.where);
    if (key == "type")
      type = value;
    else
      fields.emplace_back(key, eq == std::string::npos ? std::string("\x01") : value);
  }
  if (type == "bind")
    m.type = RunMount::Type::bind;
  else if (type == "cache")
    m.type = RunMount::Type::cache;
  else if (type == "tmpfs")
    m.type = RunMount::Type::tmpfs;
  else if (type == "secret")
    m.type = RunMount::Type::secret;
  else if (type == "ssh")
    fail("type=ssh is not supported by this builder (no SSH agent is forwarded)");
  else
    fail("unknown type '" + type + "' (bind, cache, tmpfs, secret)");

  auto boolean = [&](const std::string& key, const std::string& v) {
    if (v == "\x01" || v == "true" || v == "1") return true;
    if (v == "false" || v == "0") return false;
    fail(key + "=" + v + ": expected true or false");
    return false;
  };
  auto number = [&](const std::string& key, const std::string& v, int base) -> unsigned long long {
    if (v.empty() || v == "\x01" || v.find_first_not_of(base == 8 ? "01234567" : "0123456789") != std::string::npos)
      fail(key + "=" + v + ": expected " + (base == 8 ? "an octal mode" : "a number"));
    return std::stoull(v, nullptr, base);
  };
  auto need_value = [&](const std::string& key, const std::string& v) {
    if (v == "\x01" || v.empty()) fail(key + " needs a value");
    return v;
  };
  using T = RunMount::Type;
  for (auto& [key, v] : fields) {
    if (key == "target" || key == "dst" || key == "destination")
      m.target = need_value(key, v);
    else if ((key == "source" || key == "src") && m.type == T::bind)
      m.source = need_value(key, v);
    else if (key == "from" && m.type == T::bind)
      m.from = need_value(key, v);
    else if ((key == "ro" || key == "readonly") && (m.type == T::bind || m.type == T::cache))
      read_only = boolean(key, v);
    else if ((key == "rw" || key == "readwrite") && (m.type == T::bind || m.type == T::cache))
      read_only = !boolean(key, v);
    else if (key == "id" && (m.type == T::cache || m.type == T::secret))
      m.id = need_value(key, v);
    else if (key == "sharing" && m.type == T::cache) {
      m.sharing = v;
      if (v != "shared" && v != "private" && v != "locked") fail("sharing=" + v + ": use shared, private or locked");
    } else if (key == "mode" && (m.type == T::cache || m.type == T::secret))
      mode = unsigned(number(key, v, 8));
    else if (key == "uid" && (m.type == T::cache || m.type == T::secret))
      m.uid = unsigned(number(key, v, 10));
    else if (key == "gid" && (m.type == T::cache || m.type == T::secret))
      m.gid = unsigned(number(key, v, 10));
    else if (key == "env" && m.type == T::secret)
      m.env = need_value(key, v);
    else if (key == "required" && m.type == T::secret)
      m.required = boolean(key, v);
    else if (key == "size" && m.type == T::tmpfs)
      m.size = number(key, v, 10);
    else if ((key == "from" || key == "source" || key == "src") && m.type == T::cache)
      fail(key + "=: seeding a cache mount from a stage is not supported by this builder");
    else
      fail("'" + key + "' is not an option of type=" + type);
  }
  if (m.type == T::secret) {
    if (m.id.empty() && m.target.empty()) fail("a secret needs id= or target=");
    if (m.id.empty()) m.id = fs::path(m.target).filename().string();
    if (m.target.empty() && m.env.empty()) m.target = "/run/secrets/" + m.id;
    m.mode = mode.value_or(0400);
    m.read_only = true;
  } else {
    if (m.target.empty()) fail("target= is required");
    if (m.type == T::cache) {
      m.read_only = read_only.value_or(false);
      m.mode = mode.value_or(0755);
    } else if (m.type == T::bind) {
      m.read_only = read_only.value_or(true);
      if (m.source.empty()) m.source = "/";
    } else {
      m.read_only = false;
    }
  }
  if (!m.target.empty()) {
    m.target = join_workdir(workdir, m.target);
    if (fs::path(m.target).lexically_normal() == "/") fail("cannot mount over the root folder");
  }
  if (m.type == T::cache && m.id.empty()) m.id = m.target;
  return m;
}

json RunMount::key() const {
  static const char* names[] = {"bind", "cache", "tmpfs", "secret"};
  json k = {{"type", names[int(type)]}, {"target", target}, {"ro", read_only}};
  switch (type) {
    case Type::bind:
      k["source"] = source, k["from"] = from;
      break;
    case Type::cache:
      k["id"] = id, k["sharing"] = sharing, k["mode"] = mode, k["uid"] = uid, k["gid"] = gid;
      break;
    case Type::tmpfs:
      k["size"] = size;
      break;
    case Type::secret:
      k["id"] = id, k["env"] = env, k["mode"] = mode, k["uid"] = uid, k["gid"] = gid;
      break;
  }
  return k;
}

json run_mounts_key(const std::vector<RunMount>& mounts, const RunMountSources& src) {
  json out = json::array();
  for (auto& m : mounts) {
    json k = m.key();
    if (m.type == RunMount::Type::bind && m.from.empty()) {
      std::string state;
      std::string rel = bind_source(m);
      if (fs::exists(resolve_in_root(src.context, rel, true))) hash_tree(src.context, rel, src.ignore, state);
      k["content"] = rt::Sha256::digest_of(state);
    } else if (m.type == RunMount::Type::bind) {
      k["chain"] = src.tree_of(m.from, m.where).chain;
    }
    out.push_back(k);
  }
  return out;
}

std::vector<std::unique_ptr<CacheMountLock>> add_run_mounts(const std::vector<RunMount>& mounts, const RunMountSources& src,
                                                            const fs::path& scratch, SandboxSpec& spec) {
  std::vector<std::unique_ptr<CacheMountLock>> locks;
  for (size_t i = 0; i < mounts.size(); ++i) {
    const RunMount& m = mounts[i];
    fs::path own = scratch / ("mount-" + std::to_string(i));
    switch (m.type) {
      case RunMount::Type::bind: {
        BindMount b;
        b.source = bind_source(m);
        b.target = m.target;
        b.read_only = m.read_only;
        if (m.from.empty()) {
          b.source_root = src.context;
          if (!fs::exists(resolve_in_root(src.context, b.source.string(), true)))
            throw BuildError(m.where.str() + ": --mount source=" + m.source + ": not in the build context");
        } else {
          MountSourceTree tree = src.tree_of(m.from, m.where);
          fs::create_directories(own / "tree");
          b.source_root = own / "tree";
          if (tree.lowers.size() == 1)
            b.source_root = tree.lowers[0];  // an empty stage: its one folder
          else
            spec.overlays.push_back(ExtraOverlay{tree.lowers, own / "tree"});
        }
        if (!m.read_only) {
          fs::create_directories(own / "writes");
          b.discard_writes_in = own / "writes";
        }
        spec.mounts.binds.push_back(b);
        break;
      }
      case RunMount::Type::cache: {
        fs::path dir = cache_mount_dir(src.build_cache_dir, m);
        if (m.sharing != "shared") locks.push_back(std::make_unique<CacheMountLock>(dir));
        spec.mounts.binds.push_back(BindMount{dir, m.target, m.read_only, {}, {}});
        break;
      }
      case RunMount::Type::tmpfs:
        spec.mounts.tmpfs.push_back(TmpfsMount{m.target, m.size});
        break;
      case RunMount::Type::secret: {
        const SecretSource* s = find_secret(src, m.id);
        std::optional<std::string> value = s ? read_secret(*s) : std::nullopt;
        if (!value) {
          if (!m.required) break;  // as BuildKit: an optional secret that is not given is absent
          throw BuildError(m.where.str() + ": secret " + m.id + " is required but " +
                           (s ? (s->env.empty() ? s->file.string() + " cannot be read" : "$" + s->env + " is not set")
                              : "not given (nemokit build --secret id=" + m.id + ",src=FILE)"));
        }
        if (!m.env.empty()) {
          std::erase_if(spec.env, [&](const std::string& e) { return e.compare(0, m.env.size() + 1, m.env + "=") == 0; });
          spec.env.push_back(m.env + "=" + *value);
        }
        if (!m.target.empty()) spec.secrets.push_back(SecretFile{m.target, *value, m.mode, m.uid, m.gid});
        break;
      }
    }
  }
  if (!spec.secrets.empty()) {
    spec.secrets_dir = scratch / "secrets";
    fs::create_directories(spec.secrets_dir);
  }
  return locks;
}

fs::path cache_mount_dir(const fs::path& build_cache_dir, const RunMount& m) {
  fs::path parent = build_cache_dir / "build" / "mount-cache";
  fs::create_directories(parent);
  fs::path dir = parent / rt::Sha256::digest_of(m.id).substr(std::string("sha256:").size());
  if (mkdir(dir.c_str(), 0700) == 0) {
    // Owner and mode as the mount asks, set before anyone can use the folder.
    if (chown(dir.c_str(), m.uid, m.gid) != 0 || chmod(dir.c_str(), m.mode) != 0)
      throw BuildError(m.where.str() + ": cache mount " + dir.string() + ": " + std::strerror(errno));
  } else if (errno != EEXIST) {
    throw BuildError(m.where.str() + ": cache mount " + dir.string() + ": " + std::strerror(errno));
  }
  return dir;
}

CacheMountLock::CacheMountLock(const fs::path& dir) {
  fs::path lock = dir.string() + ".lock";
  fd_ = open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) throw BuildError("cache mount lock " + lock.string() + ": " + std::strerror(errno));
  while (flock(fd_, LOCK_EX) != 0)
    if (errno != EINTR) throw BuildError("cache mount lock " + lock.string() + ": " + std::strerror(errno));
}

CacheMountLock::~CacheMountLock() {
  if (fd_ >= 0) close(fd_);
}

}  // namespace nemokit::dockerfile
