// Header-only C++ helpers over the C ABI in nemokit/plugin.h: a plugin author writes a class
// deriving from nemokit::sdk::Plugin and names it once with NEMOKIT_PLUGIN(Class).
//
//   class MyStage : public nemokit::sdk::Plugin {
//     int run(const nemokit::sdk::StageCall& call) override { ... return 0; }
//   };
//   NEMOKIT_PLUGIN(MyStage)
//
// Exceptions thrown by the class become a one-line error and exit code 1 on the host side.
#pragma once

#include <nemokit/plugin.h>
#include <nemokit/resources.hpp>

#include <boost/dll/alias.hpp>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

extern "C" {
// Filled by the linker from the sections nemokit_add_plugin() embeds; weak so that a plugin
// without resources still links.
extern const char __start_nemokit_manifest[] __attribute__((weak, visibility("hidden")));
extern const char __start_nemokit_resources[] __attribute__((weak, visibility("hidden")));
extern const char __stop_nemokit_resources[] __attribute__((weak, visibility("hidden")));
}

namespace nemokit::sdk {

inline const char* embedded_manifest() { return __start_nemokit_manifest ? __start_nemokit_manifest : "{}"; }

inline std::string_view embedded_resources() {
  if (!__start_nemokit_resources || !__stop_nemokit_resources) return {};
  return {__start_nemokit_resources, static_cast<size_t>(__stop_nemokit_resources - __start_nemokit_resources)};
}

// A resource this plugin ships (e.g. "configs/tiny.toml", "Dockerfile"), or nullopt.
inline std::optional<std::string_view> resource(std::string_view name) {
  return find_resource(embedded_resources(), name);
}

// The host's services during one call.
class Host {
 public:
  explicit Host(const nemokit_host_v1* h) : h_(h) {}
  void log(int level, const std::string& line) const {
    if (h_ && h_->log) h_->log(h_->ctx, level, line.c_str());
    else std::fprintf(stderr, "%s\n", line.c_str());
  }
  void info(const std::string& line) const { log(NEMOKIT_LOG_INFO, line); }
  void warn(const std::string& line) const { log(NEMOKIT_LOG_WARN, line); }

 private:
  const nemokit_host_v1* h_;
};

struct StageCall {
  Host host;
  std::string family, stage, substage;
  std::string config_json;          // the fully resolved config (parse with the JSON library of your choice)
  std::filesystem::path job_dir;    // empty when the host gave none
};

struct CommandCall {
  Host host;
  std::vector<std::string> args;    // args[0] is the command name
};

struct BuildCall {
  Host host;
  std::string request_json;
  std::filesystem::path job_dir;
};

class Plugin {
 public:
  virtual ~Plugin() = default;
  virtual int run(const StageCall&) { return unsupported("run"); }
  virtual int data_prep(const StageCall&) { return unsupported("data prep"); }
  virtual int command(const CommandCall&) { return unsupported("commands"); }
  virtual int build(const BuildCall&) { return unsupported("image builds"); }

 protected:
  static int unsupported(const char* what) {
    throw std::runtime_error(std::string("this plugin does not implement ") + what);
  }
};

namespace detail {
inline std::string str(const char* s) { return s ? s : ""; }

template <class P>
int dispatch(const nemokit_host_v1* host, const nemokit_call_v1* call, char* err, size_t err_len) {
  auto fail = [&](const char* msg) {
    if (err && err_len) std::snprintf(err, err_len, "%s", msg);
    return 1;
  };
  try {
    static P plugin;
    Host h(host);
    switch (call->kind) {
      case NEMOKIT_CALL_RUN:
      case NEMOKIT_CALL_DATA_PREP: {
        StageCall c{h, str(call->family), str(call->stage), str(call->substage),
                    str(call->config_json), std::filesystem::path(str(call->job_dir))};
        return call->kind == NEMOKIT_CALL_RUN ? plugin.run(c) : plugin.data_prep(c);
      }
      case NEMOKIT_CALL_COMMAND: {
        CommandCall c{h, {}};
        for (int i = 0; i < call->argc; ++i) c.args.emplace_back(str(call->argv[i]));
        return plugin.command(c);
      }
      case NEMOKIT_CALL_BUILD:
        return plugin.build(BuildCall{h, str(call->config_json), std::filesystem::path(str(call->job_dir))});
      default:
        return fail("unknown call kind");
    }
  } catch (const std::exception& e) {
    return fail(e.what());
  } catch (...) {
    return fail("unknown exception");
  }
}
}  // namespace detail
}  // namespace nemokit::sdk

#ifndef NEMOKIT_PLUGIN_NAME
#error "NEMOKIT_PLUGIN_NAME is not defined: build plugins with nemokit_add_plugin()"
#endif

static_assert(NEMOKIT_ABI_MAJOR == 1, "the entry alias below must carry the ABI major");

// Defines the plugin's entry point and exports it as the alias NEMOKIT_ENTRY_NAME in section
// NEMOKIT_ENTRY_SECTION. Use once per plugin, at namespace scope.
#define NEMOKIT_PLUGIN(PluginClass)                                                                  \
  namespace nemokit_plugin_entry_ {                                                                  \
  static int invoke(const nemokit_host_v1* h, const nemokit_call_v1* c, char* err, size_t n) {       \
    return ::nemokit::sdk::detail::dispatch<PluginClass>(h, c, err, n);                              \
  }                                                                                                  \
  const nemokit_plugin_v1* entry() {                                                                 \
    static const nemokit_plugin_v1 d{NEMOKIT_ABI_MAJOR, NEMOKIT_ABI_MINOR, NEMOKIT_PLUGIN_NAME,       \
                                     NEMOKIT_PLUGIN_VERSION, ::nemokit::sdk::embedded_manifest(),    \
                                     &invoke};                                                       \
    return &d;                                                                                       \
  }                                                                                                  \
  }                                                                                                  \
  BOOST_DLL_ALIAS_SECTIONED(nemokit_plugin_entry_::entry, nemokit_plugin_v1, nemokit)
