#include "nemokit/runtime/artifacts.hpp"

#include "nemokit/runtime/atomic_file.hpp"
#include "nemokit/runtime/run/checkpoint_dir.hpp"
#include "nemokit/runtime/run/paths.hpp"
#include "nemokit/runtime/run/utc_time.hpp"
#include "nemokit/runtime/sha256.hpp"
#include "nemokit/runtime/json_file.hpp"

#include <fcntl.h>
#include <cctype>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <sstream>

namespace nemokit::rt::artifacts {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::optional<int64_t> version_of_folder(const std::string& name) {
  if (name.size() < 2 || name[0] != 'v' || name.size() > 19) return std::nullopt;
  int64_t v = 0;
  for (size_t i = 1; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    v = v * 10 + (name[i] - '0');
  }
  if (v <= 0 || name[1] == '0') return std::nullopt;
  return v;
}

int64_t mtime_ns(const struct stat& st) { return int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec; }

// Every regular file under `path` (or `path` itself), relative names sorted, with size and mtime.
struct FileStat {
  std::string rel;
  fs::path full;
  uint64_t size = 0;
  int64_t mtime = 0;
};
std::vector<FileStat> list_files(const fs::path& path, const std::vector<std::string>& exclude) {
  std::vector<FileStat> out;
  auto add = [&](const fs::path& full, const std::string& rel) {
    struct stat st {};
    if (::stat(full.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
    if (std::find(exclude.begin(), exclude.end(), rel) != exclude.end()) return;
    out.push_back({rel, full, uint64_t(st.st_size), mtime_ns(st)});
  };
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    add(path, path.filename().string());
  } else {
    fs::recursive_directory_iterator it(path, fs::directory_options::follow_directory_symlink, ec);
    if (ec) throw std::runtime_error(path.string() + ": cannot list: " + ec.message());
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) throw std::runtime_error(path.string() + ": cannot list: " + ec.message());
      add(it->path(), it->path().lexically_relative(path).generic_string());
    }
  }
  std::sort(out.begin(), out.end(), [](const FileStat& a, const FileStat& b) { return a.rel < b.rel; });
  return out;
}

fs::path canonical_or_normal(const fs::path& p) {
  std::error_code ec;
  fs::path c = fs::weakly_canonical(fs::absolute(p), ec);
  return ec ? fs::absolute(p).lexically_normal() : c;
}

// rename(2) that fails when `to` exists (RENAME_NOREPLACE where the file system has it; where it
// has not, plain rename, which fails all the same on a folder that is not empty, as every
// version folder is). Returns errno, 0 on success.
int rename_noreplace(const fs::path& from, const fs::path& to) {
#ifdef SYS_renameat2
  if (::syscall(SYS_renameat2, AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return errno;
#endif
  struct stat st {};
  if (::stat(to.c_str(), &st) == 0) return EEXIST;
  return ::rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
}

std::string hidden_temp_name() {
  static std::atomic<unsigned> counter{0};
  std::random_device rd;
  return ".publish-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" + std::to_string(rd());
}

std::string sanitize_name(std::string s) {
  for (char& c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) c = '-';
  while (!s.empty() && s[0] == '.') s.erase(0, 1);
  return s.empty() ? "model" : s;
}

}  // namespace

fs::path store_root(const std::string& configured) {
  if (const char* env = std::getenv("NEMOKIT_ARTIFACTS_ROOT"); env && *env) return fs::absolute(expand_home(env));
  if (!configured.empty()) return fs::absolute(expand_home(configured));
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return fs::absolute(fs::path(xdg) / "nemokit" / "artifacts");
  const char* home = std::getenv("HOME");
  return fs::absolute(fs::path(home && *home ? home : "/tmp") / ".cache" / "nemokit" / "artifacts");
}

bool valid_name(std::string_view name) {
  if (name.empty() || name[0] == '.' || name.size() > 200) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

std::optional<Ref> parse_ref(std::string_view text) {
  size_t colon = text.rfind(':');
  Ref r;
  r.name = std::string(text.substr(0, colon));
  if (!valid_name(r.name)) return std::nullopt;
  if (colon == std::string_view::npos) return r;
  std::string tag(text.substr(colon + 1));
  if (tag == "latest") return r;
  auto v = version_of_folder(tag);
  if (!v) return std::nullopt;
  r.version = v;
  return r;
}

bool looks_like_ref(std::string_view text) { return text.find(':') != std::string_view::npos && parse_ref(text).has_value(); }

std::vector<std::string> Artifact::used() const {
  std::vector<std::string> out;
  if (!metadata.contains("tracking") || !metadata["tracking"].is_object()) return out;
  for (const auto& u : metadata["tracking"].value("used_artifacts", json::array())) {
    if (u.is_string()) out.push_back(u.get<std::string>());
    else if (u.is_object() && u.contains("ref")) out.push_back(u["ref"].get<std::string>());
  }
  return out;
}

Content content_of(const fs::path& path, const std::vector<std::string>& exclude) {
  if (!fs::exists(path)) throw std::invalid_argument(path.string() + ": does not exist");
  Content c;
  c.files = json::array();
  Sha256 all;
  for (const auto& f : list_files(path, exclude)) {
    const std::string hex = sha256_file(f.full);
    all.update(hex + " " + std::to_string(f.size) + " " + f.rel + "\n");
    c.files.push_back({{"path", f.rel}, {"size", f.size}, {"mtime_ns", f.mtime}, {"sha256", hex}});
    c.bytes += f.size;
  }
  c.digest = all.finish_digest();
  return c;
}

Store::Store(fs::path root) : root_(std::move(root)) {}

std::vector<std::string> Store::names() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root_, ec)) {
    std::string n = e.path().filename().string();
    if (valid_name(n) && e.is_directory(ec) && !versions(n).empty()) out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<int64_t> Store::versions(const std::string& name) const {
  std::vector<int64_t> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root_ / name, ec))
    if (auto v = version_of_folder(e.path().filename().string()); v && fs::exists(e.path() / "metadata.json")) out.push_back(*v);
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<int64_t> Store::latest(const std::string& name) const {
  // The pointer is for readers that do not list folders; a publisher that died between claiming
  // its version and moving the pointer leaves it behind, so the highest version wins.
  auto vs = versions(name);
  if (vs.empty()) return std::nullopt;
  return vs.back();
}

std::string describe_missing(const Store& store, const std::string& ref_text, const std::string& why) {
  std::string list;
  for (const auto& n : store.names()) {
    auto vs = store.versions(n);
    list += (list.empty() ? "" : ", ") + n + ":v" + std::to_string(vs.front());
    if (vs.size() > 1) list += "..v" + std::to_string(vs.back());
  }
  return "artifact " + ref_text + ": " + why + " in the store " + store.root().string() +
         " (artifacts there: " + (list.empty() ? "none" : list) + ")";
}

namespace {

// The keys every reader of a metadata.json takes for granted, checked once where it is read, so
// a hand-edited or damaged file is named with its key instead of the JSON library's words.
void check_metadata(const json& m, const fs::path& file) {
  const std::string where = file.string() + ": ";
  if (!m.is_object()) throw std::runtime_error(where + "the metadata is " + std::string(m.type_name()) + ", not a JSON object");
  for (const char* key : {"type", "name", "content_digest", "path", "created_at"})
    if (m.contains(key) && !m[key].is_string())
      throw std::runtime_error(where + "\"" + key + "\" is " + m[key].type_name() + ", not a string");
  if (m.contains("digest_excludes")) {
    const json& ex = m["digest_excludes"];
    if (!ex.is_array() || !std::all_of(ex.begin(), ex.end(), [](const json& e) { return e.is_string(); }))
      throw std::runtime_error(where + "\"digest_excludes\" must be a list of strings");
  }
  if (m.contains("source_datasets")) {  // the raw files a data artifact was made from (lineage)
    const json& src = m["source_datasets"];
    if (!src.is_array()) throw std::runtime_error(where + "\"source_datasets\" must be a list");
    for (size_t i = 0; i < src.size(); ++i)
      for (const char* key : {"path", "sha256"})
        if (!src[i].is_object() || (src[i].contains(key) && !src[i][key].is_string()))
          throw std::runtime_error(where + "source_datasets[" + std::to_string(i) + "] must be a table whose \"" + key +
                                   "\" is a string");
  }
  if (!m.contains("tracking")) return;
  if (!m["tracking"].is_object()) throw std::runtime_error(where + "\"tracking\" is " + m["tracking"].type_name() + ", not a table");
  const json& tracking = m["tracking"];
  if (!tracking.contains("used_artifacts")) return;
  const json& used = tracking["used_artifacts"];
  if (!used.is_array()) throw std::runtime_error(where + "\"tracking.used_artifacts\" must be a list");
  for (size_t i = 0; i < used.size(); ++i) {
    const json& u = used[i];
    if (u.is_string() || (u.is_object() && u.contains("ref") && u["ref"].is_string())) continue;
    throw std::runtime_error(where + "tracking.used_artifacts[" + std::to_string(i) +
                             "] must be a reference string or a table with a string \"ref\"");
  }
}

}  // namespace

Artifact Store::get(const Ref& ref) const {
  std::optional<int64_t> v = ref.version;
  if (!v) {
    v = latest(ref.name);
    if (!v) throw NotFound(describe_missing(*this, ref.text(), "no such name"));
  }
  Artifact a;
  a.name = ref.name;
  a.version = *v;
  a.dir = root_ / ref.name / ("v" + std::to_string(*v));
  if (!fs::exists(a.dir / "metadata.json")) {
    auto vs = versions(ref.name);
    throw NotFound(describe_missing(*this, ref.text(), vs.empty() ? "no such name" : "no such version"));
  }
  a.metadata = rt::read_json_file(a.dir / "metadata.json");
  check_metadata(a.metadata, a.dir / "metadata.json");
  return a;
}

Artifact Store::resolve(std::string_view ref_text) const {
  auto r = parse_ref(ref_text);
  if (!r)
    throw NotFound("artifact reference \"" + std::string(ref_text) + "\": expected NAME, NAME:latest or NAME:vN (NAME of letters, digits, . _ -)");
  return get(*r);
}

std::vector<Artifact> Store::all() const {
  std::vector<Artifact> out;
  for (const auto& n : names())
    for (int64_t v : versions(n)) out.push_back(get(Ref{n, v}));
  return out;
}

namespace {
// Each readable version of `name`, newest first, until `visit` returns false; a version folder
// that cannot be read is skipped (it is no one's, and describes nothing).
void each_version_newest_first(const Store& store, const std::string& name, const std::function<bool(Artifact&)>& visit) {
  auto vs = store.versions(name);
  for (auto v = vs.rbegin(); v != vs.rend(); ++v) {
    Artifact a;
    try {
      a = store.get(Ref{name, *v});
    } catch (const std::exception&) {
      continue;
    }
    if (!visit(a)) return;
  }
}
}  // namespace

std::vector<Artifact> Store::published_by(const fs::path& job_dir, const std::string& name) const {
  const fs::path want = canonical_or_normal(job_dir);
  std::vector<Artifact> out;
  for (const auto& n : name.empty() ? names() : std::vector<std::string>{name})
    each_version_newest_first(*this, n, [&](Artifact& a) {
      if (a.metadata.contains("job_dir") && a.metadata["job_dir"].is_string() &&
          canonical_or_normal(a.metadata["job_dir"].get<std::string>()) == want)
        out.push_back(std::move(a));
      return true;
    });
  return out;
}

std::optional<Artifact> Store::find_by_path(const fs::path& path) const {
  const fs::path want = canonical_or_normal(path);
  std::optional<Artifact> best;
  for (const auto& n : names())
    each_version_newest_first(*this, n, [&](Artifact& a) {
      if (canonical_or_normal(a.path()) != want) return true;
      std::vector<std::string> exclude = a.metadata.value("digest_excludes", std::vector<std::string>{});
      std::vector<FileStat> files = list_files(want, exclude);
      json manifest;
      try {
        manifest = rt::read_json_file(a.dir / "manifest.json");
      } catch (const std::exception&) {
        return true;
      }
      bool same = manifest.is_array() && manifest.size() == files.size();
      for (size_t i = 0; same && i < files.size(); ++i)
        same = manifest[i].value("path", "") == files[i].rel && manifest[i].value("size", uint64_t(0)) == files[i].size &&
               manifest[i].value("mtime_ns", int64_t(0)) == files[i].mtime;
      if (same && (!best || best->metadata.value("created_at", "") < a.metadata.value("created_at", ""))) best = a;
      return false;  // older versions of this name describe older contents
    });
  return best;
}

Artifact Store::publish(const PublishRequest& req) const {
  if (!valid_name(req.name))
    throw std::invalid_argument("artifact name \"" + req.name + "\": use letters, digits, '.', '_' and '-' (not first '.')");
  if (req.path.empty() || !fs::exists(req.path)) throw std::invalid_argument("artifact " + req.name + ": " + req.path.string() + " does not exist");
  const fs::path path = canonical_or_normal(req.path);
  Content content = content_of(path, req.exclude);

  json used = json::array();
  for (const auto& u : req.used) {
    json entry = {{"ref", u}};
    try {
      Artifact a = resolve(u);
      entry = {{"ref", a.ref()}, {"name", a.name}, {"version", a.version}, {"type", a.type()}, {"content_digest", a.digest()}};
    } catch (const std::exception&) {  // recorded as given: the lineage says it is missing
    }
    used.push_back(entry);
  }

  const fs::path folder = root_ / req.name;
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) throw std::runtime_error(folder.string() + ": cannot create the artifact folder: " + ec.message());
  const fs::path tmp = folder / hidden_temp_name();
  fs::create_directories(tmp, ec);
  if (ec) throw std::runtime_error(tmp.string() + ": cannot create: " + ec.message());
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code e;
      if (!p.empty()) fs::remove_all(p, e);
    }
  } cleanup{tmp};
  write_file_atomic(tmp / "manifest.json", content.files.dump(1) + "\n");

  json meta = json::object();
  for (const auto& [k, v] : req.fields.items()) meta[k] = v;
  meta["name"] = req.name;
  meta["type"] = req.type;
  meta["path"] = path.string();
  meta["created_at"] = utc_now();
  meta["producer"] = req.producer;
  if (!req.job_dir.empty()) meta["job_dir"] = canonical_or_normal(req.job_dir).string();
  meta["content_digest"] = content.digest;
  meta["bytes"] = content.bytes;
  meta["file_count"] = content.files.size();
  if (!req.exclude.empty()) meta["digest_excludes"] = req.exclude;
  meta["config"] = req.config;
  meta["tracking"] = {{"used_artifacts", used}};

  // Claim the next free version: the rename fails when another publisher got there first.
  int64_t version = 0;
  for (int attempt = 0;; ++attempt) {
    auto vs = versions(req.name);
    version = (vs.empty() ? 0 : vs.back()) + 1;
    // A version folder whose metadata.json is missing (never: they appear whole) still blocks.
    while (fs::exists(folder / ("v" + std::to_string(version)))) ++version;
    meta["version"] = version;
    write_file_atomic(tmp / "metadata.json", meta.dump(2) + "\n");
    fsync_path(tmp);
    const int err = rename_noreplace(tmp, folder / ("v" + std::to_string(version)));
    if (err == 0) break;
    if ((err != EEXIST && err != ENOTEMPTY) || attempt > 1000)
      throw std::runtime_error((folder / ("v" + std::to_string(version))).string() + ": cannot publish: " + std::strerror(err));
  }
  cleanup.p.clear();
  fsync_path(folder);

  // The `latest` pointer: written, then checked against the versions now there, until it names
  // the highest (a slower publisher of an older version cannot leave it behind).
  for (;;) {
    const int64_t high = versions(req.name).back();
    write_file_atomic(folder / "latest", "v" + std::to_string(high) + "\n");
    if (versions(req.name).back() == high) break;
  }
  return get(Ref{req.name, version});
}

const json* field(const json& metadata, std::string_view dotted) {
  const json* cur = &metadata;
  size_t b = 0;
  for (;;) {
    size_t e = dotted.find('.', b);
    std::string key(dotted.substr(b, e == std::string_view::npos ? std::string_view::npos : e - b));
    if (!cur->is_object() || !cur->contains(key)) return nullptr;
    cur = &(*cur)[key];
    if (e == std::string_view::npos) return cur;
    b = e + 1;
  }
}

// ---- stages -------------------------------------------------------------------------------------

std::string Producer::text() const {
  return "nemokit " + verb + " " + family + " " + stage + (substage.empty() ? "" : " " + substage);
}

bool publishing_rank() {
  const char* r = std::getenv("RANK");
  return !r || !*r || std::string(r) == "0";
}

namespace {

Store producer_store() { return Store(store_root()); }

void say(const Producer& p, const std::string& line) {
  if (p.log) p.log(line);
}

std::string describe(const Artifact& a) {
  return "artifact " + a.ref() + " (" + a.type() + ", " + a.digest().substr(0, 19) + "...) -> " + (a.dir / "metadata.json").string();
}

}  // namespace

namespace {
Artifact publish_folder(const Producer& producer, const fs::path& folder, const std::vector<std::string>& used,
                        const std::string& producer_text) {
  json m = rt::read_json_file(folder / "metadata.json");
  PublishRequest req;
  req.type = m.value("type", "");
  req.name = m.value("name", "");
  if (req.type.empty() || req.name.empty())
    throw std::runtime_error((folder / "metadata.json").string() + ": names no artifact type and name");
  for (const char* k : {"type", "name", "path", "created_at", "producer", "config", "tracking", "content_digest", "version"}) m.erase(k);
  req.fields = m;
  req.path = folder;
  req.config = producer.config;
  req.used = used;
  req.producer = producer_text;
  req.job_dir = producer.job_dir;
  req.exclude = {"metadata.json"};
  return producer_store().publish(req);
}
}  // namespace

std::optional<Artifact> publish_data_folder(const Producer& producer, const fs::path& folder, const std::vector<std::string>& used) {
  if (!publishing_rank()) return std::nullopt;
  Artifact a = publish_folder(producer, folder, used, producer.text());
  say(producer, "published " + describe(a));
  return a;
}

std::optional<Artifact> artifact_of_folder(const Producer& producer, const fs::path& folder) {
  if (folder.empty() || !fs::exists(folder)) return std::nullopt;
  Store store = producer_store();
  if (auto a = store.find_by_path(folder)) return a;
  if (!publishing_rank()) return std::nullopt;
  if (fs::exists(folder / "metadata.json")) {
    json m = rt::read_json_file(folder / "metadata.json");
    if (m.contains("type") && m.contains("name")) {  // data prepared before the store recorded it
      Artifact a = publish_folder(producer, folder, {}, "(recorded when " + producer.text() + " read it)");
      say(producer, "recorded input " + describe(a));
      return a;
    }
  }
  if (fs::exists(folder / "config.json")) {  // a model folder from elsewhere (imported, or trained before the store)
    PublishRequest req;
    const fs::path canon = canonical_or_normal(folder);
    std::string base = canon.filename().string();
    if (base.starts_with("step_") && canon.has_parent_path()) base = canon.parent_path().filename().string() + "-" + base;
    req.name = sanitize_name(base);
    req.type = "ModelArtifact";
    req.path = canon;
    req.fields = {{"origin", "found as the input of " + producer.text()}};
    req.producer = "(not produced by nemokit: found as an input)";
    Artifact a = store.publish(req);
    say(producer, "recorded input " + describe(a));
    return a;
  }
  return std::nullopt;
}

std::string model_artifact_name(const Producer& p) {
  if (p.config.is_object() && p.config.contains("artifact") && p.config["artifact"].is_object()) {
    const json& t = p.config["artifact"];
    if (t.contains("name")) {
      if (!t["name"].is_string() || !valid_name(t["name"].get<std::string>()))
        throw std::invalid_argument("artifact.name: must be a name of letters, digits, '.', '_' and '-'");
      return t["name"].get<std::string>();
    }
  }
  return p.family + "-" + p.stage + (p.substage.empty() ? "" : "-" + p.substage) + "-model";
}

TrainedModel trained_model_of(const json& config, const fs::path& job_dir) {
  auto str_at = [&](const char* table, const char* key) -> std::string {
    if (config.contains(table) && config[table].is_object() && config[table].contains(key) && config[table][key].is_string())
      return config[table][key].get<std::string>();
    return {};
  };
  std::string ck = str_at("checkpoint", "dir"), data = str_at("data", "output");
  const fs::path ckpt_root = ck.empty() ? job_dir / "checkpoints" : expand_home(ck);
  auto last = CheckpointDir(ckpt_root, 0).latest();
  if (!last) throw std::runtime_error(ckpt_root.string() + ": the finished run left no complete checkpoint to publish");
  TrainedModel m;
  m.model_dir = *last;
  const fs::path data_dir = data.empty() ? job_dir / "data" : expand_home(data);
  if (fs::exists(data_dir / "metadata.json")) m.used.push_back(data_dir);
  return m;
}

std::optional<Artifact> publish_model(const Producer& producer, const TrainedModel& model) {
  if (!publishing_rank()) return std::nullopt;
  PublishRequest req;
  req.name = model_artifact_name(producer);
  req.type = "ModelArtifact";
  req.path = model.model_dir;
  req.config = producer.config;
  req.producer = producer.text();
  req.job_dir = producer.job_dir;
  json fields = json::object();
  if (fs::exists(model.model_dir / "trainer_state.json")) {
    json st = rt::read_json_file(model.model_dir / "trainer_state.json");
    if (st.contains("step")) fields["step"] = st["step"];
  }
  if (!fields.contains("step")) {
    std::string base = model.model_dir.filename().string();
    if (base.starts_with("step_")) fields["step"] = std::atoll(base.c_str() + 5);
  }
  std::ifstream metrics(producer.job_dir / "metrics.jsonl");
  for (std::string line; std::getline(metrics, line);) {
    json m = json::parse(line, nullptr, false);
    if (m.is_object() && m.contains("loss") && m["loss"].is_number()) fields["final_loss"] = m["loss"];
    if (m.is_object() && m.contains("val_loss") && m["val_loss"].is_number()) fields["final_val_loss"] = m["val_loss"];
  }
  for (const fs::path& t : {model.model_dir / "tokenizer.json", model.model_dir.parent_path() / "tokenizer.json"})
    if (fs::exists(t)) {
      fields["tokenizer"] = {{"path", canonical_or_normal(t).string()}, {"sha256", sha256_file(t)}};
      break;
    }
  req.fields = fields;
  std::set<std::string> seen;
  for (const auto& u : model.used)
    if (auto a = artifact_of_folder(producer, u); a && seen.insert(a->ref()).second) req.used.push_back(a->ref());
  Artifact a = producer_store().publish(req);
  say(producer, "published " + describe(a));
  return a;
}

}  // namespace nemokit::rt::artifacts
