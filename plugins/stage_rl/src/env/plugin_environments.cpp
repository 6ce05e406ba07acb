#include "env/plugin_environments.hpp"

#include "plugins/elf_sections.hpp"
#include "plugins/plugin_file_safety.hpp"

#include <nemokit/reward.h>

#include <boost/dll/library_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <sstream>

namespace nemokit::rl {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

[[noreturn]] void fail(const fs::path& p, const std::string& why) { throw std::invalid_argument(p.string() + ": " + why); }

// The major in the entry alias's name, from the symbol table alone.
uint32_t entry_major(const fs::path& path) {
  try {
    boost::dll::library_info info(path, true);
    for (const std::string& sym : info.symbols(NEMOKIT_REWARD_SECTION)) {
      if (sym.rfind(NEMOKIT_REWARD_ENTRY_PREFIX, 0) != 0) continue;
      std::string digits = sym.substr(std::string(NEMOKIT_REWARD_ENTRY_PREFIX).size());
      if (!digits.empty() && digits.size() < 9 && std::all_of(digits.begin(), digits.end(), ::isdigit))
        return static_cast<uint32_t>(std::stoul(digits));
    }
  } catch (const std::exception& e) {
    fail(path, std::string("cannot read its symbols: ") + e.what());
  }
  fail(path, "not an environment plugin: no " NEMOKIT_REWARD_ENTRY_PREFIX "<ABI major> symbol in section \"" NEMOKIT_REWARD_SECTION
             "\" (build it with nemokit_add_environment and NEMOKIT_REWARD_PLUGIN)");
}

std::string abi_text(uint32_t major, uint32_t minor) { return std::to_string(major) + "." + std::to_string(minor); }

// Holds the library for as long as the environment lives.
class PluginEnvironment : public Environment {
 public:
  PluginEnvironment(std::shared_ptr<boost::dll::shared_library> lib, const nemokit_reward_env_v1* env, void* state,
                    std::string source)
      : lib_(std::move(lib)), env_(env), state_(state), name_(env->name), source_(std::move(source)) {}
  ~PluginEnvironment() override {
    if (env_->destroy) env_->destroy(state_);
  }
  const std::string& name() const override { return name_; }

  Reward score(const json& task, const std::string& response) override {
    Out out;
    int rc = env_->score(state_, task.dump().c_str(), response.data(), response.size(), &out.c);
    check(rc, out.text, "score");
    return {out.c.value, out.text};
  }

  std::unique_ptr<Tools> tools(const json& task) override {
    if (!env_->tools_open || !env_->tools_run || !env_->tools_close) return nullptr;
    Out out;
    void* session = env_->tools_open(state_, task.dump().c_str(), &out.c);
    if (!session) {
      if (out.text.empty()) return nullptr;
      throw std::runtime_error("environment " + name_ + " (" + source_ + "): tools: " + out.text);
    }
    return std::make_unique<PluginTools>(this, session);
  }

 private:
  struct Out {
    std::string text;
    nemokit_reward_out_v1 c{0, 0, &text, [](void* ctx, const char* s, size_t n) {
                              if (s && n) static_cast<std::string*>(ctx)->append(s, n);
                            }};
  };

  void check(int rc, const std::string& text, const char* call) const {
    if (rc == NEMOKIT_REWARD_OK) return;
    std::string where = "environment " + name_ + " (" + source_ + "): ";
    if (rc == NEMOKIT_REWARD_BAD_TASK) throw std::invalid_argument(where + text);
    throw std::runtime_error(where + call + " failed: " + (text.empty() ? "no reason given" : text));
  }

  class PluginTools : public Tools {
   public:
    PluginTools(PluginEnvironment* env, void* session) : env_(env), session_(session) {}
    ~PluginTools() override { env_->env_->tools_close(session_); }
    ToolTurn run(const std::string& command) override {
      Out out;
      int rc = env_->env_->tools_run(session_, command.c_str(), &out.c);
      env_->check(rc, out.text, "tools");
      return {command, out.text, out.c.exit_code};
    }

   private:
    PluginEnvironment* env_;
    void* session_;
  };

  std::shared_ptr<boost::dll::shared_library> lib_;
  const nemokit_reward_env_v1* env_;
  void* state_;
  std::string name_, source_;
};

// lib/nemokit/environments beside the folder holding this code's library.
fs::path default_folder() {
  Dl_info info{};
  if (!dladdr(reinterpret_cast<void*>(&default_folder), &info) || !info.dli_fname) return {};
  return fs::path(info.dli_fname).parent_path().parent_path() / "environments";
}

}  // namespace

EnvironmentPluginFile inspect_environment_plugin(const fs::path& path) {
  EnvironmentPluginFile f;
  f.path = path;
  if (std::string why = insecure_plugin_path(path); !why.empty()) fail(path, why);
  f.abi_major = entry_major(path);
  if (f.abi_major != NEMOKIT_REWARD_ABI_MAJOR)
    fail(path, "environment plugin ABI major " + std::to_string(f.abi_major) + " differs from this nemokit's reward ABI " +
                   abi_text(NEMOKIT_REWARD_ABI_MAJOR, NEMOKIT_REWARD_ABI_MINOR) + " (rebuild the plugin against this SDK)");
  std::string text;
  try {
    auto sec = read_elf_sections(path, {"nemokit_manifest"});
    if (!sec.sections.count("nemokit_manifest")) fail(path, "no embedded manifest (section nemokit_manifest is missing)");
    text = sec.sections["nemokit_manifest"];
  } catch (const std::invalid_argument&) {
    throw;
  } catch (const std::exception& e) {
    fail(path, e.what());
  }
  json m = json::parse(text.substr(0, text.find('\0')), nullptr, false);
  if (m.is_discarded() || !m.is_object()) fail(path, "manifest is not a JSON object");
  if (!m.contains("name") || !m["name"].is_string()) fail(path, "manifest: \"name\" must be a string");
  if (!m.contains("version") || !m["version"].is_string()) fail(path, "manifest: \"version\" must be a string");
  f.name = m["name"];
  f.version = m["version"];
  const json& abi = m.value("abi", json());
  if (!abi.is_object() || !abi.contains("major") || !abi.contains("minor") || !abi["major"].is_number_unsigned() ||
      !abi["minor"].is_number_unsigned())
    fail(path, "manifest: \"abi\" must be {\"major\": N, \"minor\": N} (the reward ABI)");
  if (abi["major"].get<uint32_t>() != f.abi_major)
    fail(path, "manifest says reward ABI " + abi["major"].dump() + " but the entry point is for " + std::to_string(f.abi_major));
  f.abi_minor = abi["minor"].get<uint32_t>();
  if (f.abi_minor > NEMOKIT_REWARD_ABI_MINOR)
    fail(path, "plugin needs reward ABI " + abi_text(f.abi_major, f.abi_minor) + ", newer than this nemokit's " +
                   abi_text(NEMOKIT_REWARD_ABI_MAJOR, NEMOKIT_REWARD_ABI_MINOR));
  if (!m.contains("environments") || !m["environments"].is_array() || m["environments"].empty())
    fail(path, "manifest: \"environments\" must be a non-empty list of names");
  std::set<std::string> seen;
  for (const auto& e : m["environments"]) {
    if (!e.is_string() || e.get<std::string>().empty()) fail(path, "manifest: \"environments\" must hold names");
    if (!seen.insert(e.get<std::string>()).second) fail(path, "manifest: environment \"" + e.get<std::string>() + "\" is listed twice");
    f.environments.push_back(e);
  }
  return f;
}

std::vector<std::unique_ptr<Environment>> load_environment_plugin(
    const EnvironmentPluginFile& f, const std::function<json(const std::string&)>& settings_of) {
  std::shared_ptr<boost::dll::shared_library> lib;
  try {
    lib = std::make_shared<boost::dll::shared_library>(f.path, boost::dll::load_mode::rtld_local | boost::dll::load_mode::rtld_now);
  } catch (const std::exception& e) {
    fail(f.path, std::string("cannot load: ") + e.what());
  }
  const nemokit_reward_plugin_v1* d = nullptr;
  try {
    d = lib->get_alias<const nemokit_reward_plugin_v1*()>(NEMOKIT_REWARD_ENTRY_NAME)();
  } catch (const std::exception& e) {
    fail(f.path, std::string("missing entry point " NEMOKIT_REWARD_ENTRY_NAME ": ") + e.what());
  }
  if (!d || d->abi_major != NEMOKIT_REWARD_ABI_MAJOR || d->abi_minor > NEMOKIT_REWARD_ABI_MINOR)
    fail(f.path, "its descriptor does not match reward ABI " + abi_text(NEMOKIT_REWARD_ABI_MAJOR, NEMOKIT_REWARD_ABI_MINOR));
  std::vector<std::string> served;
  for (size_t i = 0; i < d->env_count; ++i) {
    const auto& e = d->envs[i];
    if (!e.name || !e.create || !e.destroy || !e.score) fail(f.path, "environment " + std::to_string(i) + " lacks a name or a call");
    served.emplace_back(e.name);
  }
  auto want = f.environments;
  std::sort(want.begin(), want.end());
  std::sort(served.begin(), served.end());
  if (want != served) fail(f.path, "the manifest's \"environments\" differ from those the plugin serves");
  std::vector<std::unique_ptr<Environment>> out;
  for (size_t i = 0; i < d->env_count; ++i) {
    const auto& e = d->envs[i];
    std::string err;
    nemokit_reward_out_v1 o{0, 0, &err, [](void* ctx, const char* s, size_t n) {
                              if (s && n) static_cast<std::string*>(ctx)->append(s, n);
                            }};
    void* state = e.create(settings_of(e.name).dump().c_str(), &o);
    if (!state) fail(f.path, std::string("environment ") + e.name + " failed to start: " + (err.empty() ? "no reason given" : err));
    out.push_back(std::make_unique<PluginEnvironment>(lib, &e, state, f.path.string()));
  }
  return out;
}

std::vector<fs::path> environment_plugin_files(const json& plugins) {
  std::vector<fs::path> out;
  auto folder = [&](const fs::path& dir) {
    std::vector<fs::path> files;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.path().extension() == ".so") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    out.insert(out.end(), files.begin(), files.end());
  };
  if (!plugins.is_null()) {
    if (!plugins.is_array()) throw std::invalid_argument("environments.plugins must be a list of files or folders");
    for (const auto& p : plugins) {
      if (!p.is_string()) throw std::invalid_argument("environments.plugins must be a list of files or folders");
      fs::path path = p.get<std::string>();
      if (fs::is_directory(path)) folder(path);
      else if (fs::exists(path)) out.push_back(path);
      else throw std::invalid_argument("environments.plugins: " + path.string() + ": no such file or folder");
    }
  }
  if (const char* env = std::getenv("NEMOKIT_ENVIRONMENT_PATH")) {
    std::stringstream ss(env);
    std::string dir;
    while (std::getline(ss, dir, ':'))
      if (!dir.empty() && fs::is_directory(dir)) folder(dir);
  }
  if (fs::path d = default_folder(); !d.empty() && fs::is_directory(d)) folder(d);
  // The same file reached twice loads once.
  std::vector<fs::path> unique;
  std::set<fs::path> seen;
  for (const auto& p : out) {
    std::error_code ec;
    fs::path c = fs::weakly_canonical(p, ec);
    if (seen.insert(ec ? p : c).second) unique.push_back(p);
  }
  return unique;
}

}  // namespace nemokit::rl
