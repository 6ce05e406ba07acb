#include "plugins/plugin_host.hpp"

#include "plugins/elf_sections.hpp"
#include "plugins/plugin_file_safety.hpp"
#include "util/error.hpp"
#include "util/suggest.hpp"

#include <nemokit/resources.hpp>

#include <boost/dll/library_info.hpp>
#include <boost/dll/shared_library.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <set>
#include <sstream>

#include "nemokit/runtime/json_file.hpp"

namespace nemokit {
namespace fs = std::filesystem;
using nlohmann::json;

std::optional<std::string> PluginFile::resource(const std::string& name) const {
  if (auto r = sdk::find_resource(resources, name)) return std::string(*r);
  return std::nullopt;
}

std::vector<std::string> PluginFile::resource_names() const {
  std::vector<std::string> out;
  for (const auto& r : sdk::parse_resources(resources)) out.emplace_back(r.name);
  return out;
}

namespace {

// The ABI major is part of the entry alias name, so it is known from the symbol table alone.
std::optional<uint32_t> entry_abi_major(const fs::path& path, std::string& error) {
  try {
    boost::dll::library_info info(path, /*throw_if_not_native_format=*/true);
    for (const std::string& sym : info.symbols(NEMOKIT_ENTRY_SECTION)) {
      if (sym.rfind(NEMOKIT_ENTRY_PREFIX, 0) != 0) continue;
      std::string digits = sym.substr(std::string(NEMOKIT_ENTRY_PREFIX).size());
      if (!digits.empty() && std::all_of(digits.begin(), digits.end(), ::isdigit))
        return static_cast<uint32_t>(std::stoul(digits));
    }
    error = "missing entry point: no " NEMOKIT_ENTRY_PREFIX "<ABI major> symbol in section \"" NEMOKIT_ENTRY_SECTION
            "\" (build it with nemokit_add_plugin and NEMOKIT_PLUGIN)";
  } catch (const std::exception& e) {
    error = std::string("cannot read its symbols: ") + e.what();
  }
  return std::nullopt;
}

std::string need_string(const json& j, const char* key, const std::string& where) {
  if (!j.contains(key) || !j[key].is_string())
    throw std::runtime_error("manifest: " + where + "\"" + key + "\" must be a string");
  return j[key].get<std::string>();
}

void read_manifest(PluginFile& p) {
  const json& m = p.manifest;
  if (!m.is_object()) throw std::runtime_error("manifest: top level must be a JSON object");
  p.name = need_string(m, "name", "");
  p.version = need_string(m, "version", "");
  p.description = m.value("description", "");
  if (!m.contains("abi") || !m["abi"].is_object() || !m["abi"].contains("major") || !m["abi"].contains("minor") ||
      !m["abi"]["major"].is_number_unsigned() || !m["abi"]["minor"].is_number_unsigned())
    throw std::runtime_error("manifest: \"abi\" must be {\"major\": N, \"minor\": N}");
  uint32_t major = m["abi"]["major"].get<uint32_t>();
  if (major != p.abi_major)
    throw std::runtime_error("manifest says ABI " + std::to_string(major) + " but the entry point is for ABI " +
                             std::to_string(p.abi_major));
  p.abi_minor = m["abi"]["minor"].get<uint32_t>();
  std::set<std::string> have;
  for (const auto& r : sdk::parse_resources(p.resources)) have.emplace(r.name);
  if (m.contains("stages")) {
    if (!m["stages"].is_array()) throw std::runtime_error("manifest: \"stages\" must be an array");
    for (size_t i = 0; i < m["stages"].size(); ++i) {
      const json& s = m["stages"][i];
      std::string where = "stages[" + std::to_string(i) + "].";
      need_string(s, "family", where);
      need_string(s, "stage", where);
      if (s.contains("configs")) {
        if (!s["configs"].is_object()) throw std::runtime_error("manifest: " + where + "\"configs\" must be an object");
        for (const auto& [name, res] : s["configs"].items()) {
          if (!res.is_string() || !have.count(res.get<std::string>()))
            throw std::runtime_error("manifest: " + where + "configs." + name + " names resource " + res.dump() +
                                     " that the plugin does not ship");
        }
      }
      if (s.contains("tables")) {
        bool names = s["tables"].is_array();
        for (const auto& t : names ? s["tables"] : json::array()) names = names && t.is_string();
        if (!names) throw std::runtime_error("manifest: " + where + "\"tables\" must be an array of names");
      }
    }
  }
  if (m.contains("images")) {
    if (!m["images"].is_array()) throw std::runtime_error("manifest: \"images\" must be an array");
    for (size_t i = 0; i < m["images"].size(); ++i) {
      const json& im = m["images"][i];
      std::string where = "images[" + std::to_string(i) + "].";
      need_string(im, "name", where);
      std::string df = need_string(im, "dockerfile", where);
      if (!have.count(df))
        throw std::runtime_error("manifest: " + where + "dockerfile names resource \"" + df + "\" that the plugin does not ship");
    }
  }
  if (m.contains("commands") && !m["commands"].is_array())
    throw std::runtime_error("manifest: \"commands\" must be an array of names");
  if (m.contains("subcommands")) {
    bool ok = m["subcommands"].is_object();
    if (ok)
      for (const json& words : m["subcommands"]) {
        ok = ok && words.is_array();
        if (ok)
          for (const json& w : words) ok = ok && w.is_string();
      }
    if (!ok) throw std::runtime_error("manifest: \"subcommands\" must map each command to an array of words");
  }
}

}  // namespace

std::unique_ptr<PluginFile> inspect_plugin_file(const fs::path& path) {
  auto p = std::make_unique<PluginFile>();
  p->path = path;
  p->name = path.stem().string();
  if (std::string why = insecure_plugin_path(path); !why.empty()) {
    p->error = why;
    return p;
  }
  ElfSections sec;
  try {
    sec = read_elf_sections(path, {"nemokit_manifest", "nemokit_resources"});
  } catch (const std::exception& e) {
    p->error = e.what();
    return p;
  }
  auto major = entry_abi_major(path, p->error);
  if (!major) return p;
  p->abi_major = *major;
  if (p->abi_major != NEMOKIT_ABI_MAJOR) {
    p->error = "plugin ABI major " + std::to_string(p->abi_major) + " differs from this nemokit's ABI " +
               std::to_string(NEMOKIT_ABI_MAJOR) + "." + std::to_string(NEMOKIT_ABI_MINOR) +
               " (rebuild the plugin against this SDK)";
    return p;
  }
  auto it = sec.sections.find("nemokit_manifest");
  if (it == sec.sections.end()) {
    p->error = "no embedded manifest (section nemokit_manifest is missing)";
    return p;
  }
  std::string text = it->second.substr(0, it->second.find('\0'));
  auto res = sec.sections.find("nemokit_resources");
  if (res != sec.sections.end()) p->resources = res->second;
  try {
    p->manifest = json::parse(text);
  } catch (const json::exception& e) {
    p->error = std::string("manifest is not valid JSON: ") + rt::json_error_text(e);
    return p;
  }
  try {
    sdk::parse_resources(p->resources);
    read_manifest(*p);
  } catch (const std::exception& e) {
    p->error = e.what();
    return p;
  }
  if (p->abi_minor > NEMOKIT_ABI_MINOR)
    p->error = "plugin needs ABI " + std::to_string(p->abi_major) + "." + std::to_string(p->abi_minor) +
               ", newer than this nemokit's " + std::to_string(NEMOKIT_ABI_MAJOR) + "." +
               std::to_string(NEMOKIT_ABI_MINOR);
  return p;
}

std::vector<fs::path> PluginRegistry::default_search_path() {
  std::vector<fs::path> dirs;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) dirs.push_back(exe.parent_path().parent_path() / "lib" / "nemokit" / "plugins");
  if (const char* env = std::getenv("NEMOKIT_PLUGIN_PATH")) {
    std::stringstream ss(env);
    std::string dir;
    while (std::getline(ss, dir, ':'))
      if (!dir.empty()) dirs.emplace_back(dir);
  }
  return dirs;
}

PluginRegistry PluginRegistry::discover(const std::vector<fs::path>& dirs) {
  PluginRegistry reg;
  std::set<fs::path> seen;
  for (const fs::path& dir : dirs) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.path().extension() == ".so") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
      fs::path canon = fs::weakly_canonical(f, ec);
      if (!seen.insert(ec ? f : canon).second) continue;  // the same file reached twice
      reg.add(inspect_plugin_file(f));
    }
  }
  return reg;
}

void PluginRegistry::add(std::unique_ptr<PluginFile> p) {
  if (!p->ok()) {
    problems_.push_back(p->path.string() + ": " + p->error);
    plugins_.push_back(std::move(p));
    return;
  }
  for (const auto& other : plugins_) {
    if (other->ok() && other->name == p->name) {
      p->error = "plugin name \"" + p->name + "\" is already used by " + other->path.string();
      problems_.push_back(p->path.string() + ": " + p->error);
      plugins_.push_back(std::move(p));
      return;
    }
  }
  const PluginFile* pf = p.get();
  const json& m = pf->manifest;
  for (const json& s : m.value("stages", json::array())) {
    StageEntry e;
    e.family = s["family"].get<std::string>();
    e.stage = s["stage"].get<std::string>();
    e.substage = s.value("substage", "");
    e.image = s.value("image", "");
    e.description = s.value("description", "");
    if (s.contains("pipe") && s["pipe"].is_boolean()) e.in_pipe = s["pipe"].get<bool>();
    for (const auto& t : s.value("tables", json::array())) e.tables.push_back(t.get<std::string>());
    const json configs = s.value("configs", json::object());
    for (const auto& [name, res] : configs.items()) e.configs[name] = res.get<std::string>();
    e.plugin = pf;
    std::string key = e.triple();
    auto clash = std::find_if(stages_.begin(), stages_.end(), [&](const StageEntry& x) { return x.triple() == key; });
    if (clash != stages_.end()) {
      std::string both = clash->plugin->path.string() + " and " + pf->path.string();
      problems_.push_back("stage \"" + key + "\" is served by two plugins: " + both + " (neither is used)");
      ambiguous_[key] = both;
      stages_.erase(clash);
      continue;
    }
    if (ambiguous_.count(key)) {
      ambiguous_[key] += " and " + pf->path.string();
      continue;
    }
    stages_.push_back(std::move(e));
  }
  for (const json& im : m.value("images", json::array())) {
    ImageEntry e{im["name"].get<std::string>(), im["dockerfile"].get<std::string>(), pf};
    if (const ImageEntry* old = image(e.name)) {
      problems_.push_back("image \"" + e.name + "\" is declared by two plugins: " + old->plugin->path.string() +
                          " and " + pf->path.string() + " (the first is used)");
      continue;
    }
    images_.push_back(std::move(e));
  }
  for (const json& c : m.value("commands", json::array())) {
    std::string name = c.get<std::string>();
    if (commands_.count(name)) {
      problems_.push_back("command \"" + name + "\" is declared by two plugins: " + commands_[name]->path.string() +
                          " and " + pf->path.string() + " (the first is used)");
      continue;
    }
    commands_[name] = pf;
  }
  plugins_.push_back(std::move(p));
}

namespace {

// The first of the three words that matches nothing known is the misspelt one: its nearest
// neighbours among the families, the family's stages or the stage's substages, each shown as the
// whole corrected name ("nano4 sft" -> 'nano3 sft').
std::string suggest_stage(const std::vector<StageEntry>& stages, const std::string& family, const std::string& stage,
                          const std::string& substage) {
  auto has = [&](auto match) { return std::any_of(stages.begin(), stages.end(), match); };
  std::string tail = substage.empty() ? "" : " " + substage;
  std::vector<std::string> names;
  std::string typed;
  std::function<std::string(const std::string&)> whole;
  if (!has([&](const StageEntry& s) { return s.family == family; })) {
    for (const StageEntry& s : stages) names.push_back(s.family);
    typed = family;
    whole = [&](const std::string& f) { return f + " " + stage + tail; };
  } else if (!has([&](const StageEntry& s) { return s.family == family && s.stage == stage; })) {
    for (const StageEntry& s : stages)
      if (s.family == family) names.push_back(s.stage);
    typed = stage;
    whole = [&](const std::string& st) { return family + " " + st + tail; };
  } else {
    for (const StageEntry& s : stages)
      if (s.family == family && s.stage == stage && !s.substage.empty()) names.push_back(s.substage);
    typed = substage;
    whole = [&](const std::string& sub) { return family + " " + stage + " " + sub; };
  }
  std::vector<std::string> near = closest_names(typed, names);
  for (std::string& n : near) n = whole(n);
  return did_you_mean(near);
}

}  // namespace

const StageEntry& PluginRegistry::stage(const std::string& family, const std::string& stage,
                                        const std::string& substage) const {
  std::string key = family + " " + stage + (substage.empty() ? "" : " " + substage);
  if (auto a = ambiguous_.find(key); a != ambiguous_.end())
    throw UserError("stage \"" + key + "\" is served by two plugins: " + a->second + "; remove one from the plugin path");
  for (const StageEntry& s : stages_)
    if (s.triple() == key) return s;
  std::vector<std::string> subs;
  for (const StageEntry& s : stages_)
    if (s.family == family && s.stage == stage && !s.substage.empty()) subs.push_back(s.substage);
  if (!subs.empty() && substage.empty()) {
    std::string list;
    for (const auto& s : subs) list += (list.empty() ? "" : ", ") + s;
    throw UserError("\"" + key + "\" needs a substage: one of " + list);
  }
  std::string known;
  for (const StageEntry& s : stages_) known += (known.empty() ? "" : ", ") + s.triple();
  throw UserError("no plugin serves \"" + key + "\" (known: " + (known.empty() ? "none" : known) +
                  "; see `nemokit recipes`)" + suggest_stage(stages_, family, stage, substage));
}

const ImageEntry* PluginRegistry::image(const std::string& name) const {
  for (const ImageEntry& e : images_)
    if (e.name == name) return &e;
  return nullptr;
}

const PluginFile* PluginRegistry::command_provider(const std::string& command) const {
  auto it = commands_.find(command);
  return it == commands_.end() ? nullptr : it->second;
}

const PluginFile* PluginRegistry::builder() const {
  for (const auto& p : plugins_)
    if (p->ok() && p->manifest.value("builder", false)) return p.get();
  return nullptr;
}

const PluginFile* PluginRegistry::plugin(const std::string& name) const {
  for (const auto& p : plugins_)
    if (p->name == name || p->path.filename() == name || p->path.stem() == name) return p.get();
  return nullptr;
}

LoadedPlugin PluginRegistry::load(const PluginFile& p) const {
  if (!p.ok()) throw UserError(p.path.string() + ": " + p.error);
  std::shared_ptr<boost::dll::shared_library> lib;
  try {
    // RTLD_LOCAL: a plugin's symbols never resolve another plugin's references.
    lib = std::make_shared<boost::dll::shared_library>(
        p.path, boost::dll::load_mode::rtld_local | boost::dll::load_mode::rtld_now);
  } catch (const std::exception& e) {
    throw std::runtime_error(p.path.string() + ": cannot load: " + e.what());
  }
  using Entry = const nemokit_plugin_v1*();
  const nemokit_plugin_v1* d = nullptr;
  try {
    d = lib->get_alias<Entry>(NEMOKIT_ENTRY_NAME)();
  } catch (const std::exception& e) {
    throw std::runtime_error(p.path.string() + ": missing entry point " NEMOKIT_ENTRY_NAME ": " + e.what());
  }
  if (!d || d->abi_major != NEMOKIT_ABI_MAJOR || !d->invoke)
    throw std::runtime_error(p.path.string() + ": its descriptor does not match ABI " + std::to_string(NEMOKIT_ABI_MAJOR));
  if (d->abi_minor > NEMOKIT_ABI_MINOR)
    throw std::runtime_error(p.path.string() + ": descriptor needs ABI minor " + std::to_string(d->abi_minor));
  return LoadedPlugin(std::move(lib), d);
}

int LoadedPlugin::invoke(const nemokit_call_v1& call, std::string& error) const {
  char err[1024] = {0};
  nemokit_host_v1 host{NEMOKIT_ABI_MAJOR, NEMOKIT_ABI_MINOR, NEMOKIT_VERSION_STRING, nullptr,
                       [](void*, int level, const char* line) {
                         std::fprintf(level >= NEMOKIT_LOG_WARN ? stderr : stdout, "%s%s\n",
                                      level >= NEMOKIT_LOG_ERROR ? "error: " : level == NEMOKIT_LOG_WARN ? "warning: " : "",
                                      line);
                         std::fflush(level >= NEMOKIT_LOG_WARN ? stderr : stdout);
                       }};
  int rc = desc_->invoke(&host, &call, err, sizeof err);
  error = err;
  return rc;
}

}  // namespace nemokit
