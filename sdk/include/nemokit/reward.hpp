// Header-only C++ helpers over the reward ABI in nemokit/reward.h: an environment author writes a
// class per environment and names them once with NEMOKIT_REWARD_PLUGIN(Class, ...).
//
//   class Echo : public nemokit::sdk::Environment {
//    public:
//     static constexpr const char* name = "echo";          // the name tasks use
//     explicit Echo(const std::string& settings_json) {}    // [environments.echo] as JSON
//     nemokit::sdk::Score score(const std::string& task_json, std::string_view response) override;
//   };
//   NEMOKIT_REWARD_PLUGIN(Echo)
//
// Throw nemokit::sdk::BadTask for a task the environment cannot read; any other exception
// becomes an environment error on the host side. Build with nemokit_add_environment().
#pragma once

#include <nemokit/reward.h>

#include <boost/dll/alias.hpp>

#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

extern "C" {
// Filled by the linker from the section nemokit_add_environment() embeds.
extern const char __start_nemokit_manifest[] __attribute__((weak, visibility("hidden")));
}

namespace nemokit::sdk {

struct Score {
  double value = 0;
  std::string reason;
};

struct ToolOutput {
  std::string output;
  int exit_code = 0;
};

// A task the environment cannot read: say which key.
class BadTask : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// One episode's tool session (e.g. a sandboxed copy of a repository); destroyed when it ends.
class ToolSession {
 public:
  virtual ~ToolSession() = default;
  virtual ToolOutput run(const std::string& command) = 0;
};

class Environment {
 public:
  virtual ~Environment() = default;
  // Must never throw for anything the response holds: that is a score with a reason.
  virtual Score score(const std::string& task_json, std::string_view response) = 0;
  // nullptr: no tools for this task.
  virtual std::unique_ptr<ToolSession> tools(const std::string& /*task_json*/) { return nullptr; }
};

namespace detail {
inline void put(nemokit_reward_out_v1* out, std::string_view s) {
  if (out && out->put) out->put(out->ctx, s.data(), s.size());
}

// Runs fn, turning exceptions into a status and a cause.
template <class Fn>
int guarded(nemokit_reward_out_v1* out, Fn&& fn) {
  try {
    fn();
    return NEMOKIT_REWARD_OK;
  } catch (const BadTask& e) {
    put(out, e.what());
    return NEMOKIT_REWARD_BAD_TASK;
  } catch (const std::exception& e) {
    put(out, e.what());
  } catch (...) {
    put(out, "unknown exception");
  }
  return NEMOKIT_REWARD_ERROR;
}

template <class E>
void* create(const char* settings, nemokit_reward_out_v1* out) {
  E* env = nullptr;
  guarded(out, [&] { env = new E(std::string(settings ? settings : "{}")); });
  return env;
}

template <class E>
void destroy(void* env) {
  delete static_cast<E*>(env);
}

template <class E>
int score(void* env, const char* task, const char* response, size_t len, nemokit_reward_out_v1* out) {
  return guarded(out, [&] {
    Score s = static_cast<E*>(env)->score(task ? task : "{}", std::string_view(response ? response : "", len));
    out->value = s.value;
    put(out, s.reason);
  });
}

template <class E>
void* tools_open(void* env, const char* task, nemokit_reward_out_v1* out) {
  std::unique_ptr<ToolSession> s;
  guarded(out, [&] { s = static_cast<E*>(env)->tools(task ? task : "{}"); });
  return s.release();
}

inline int tools_run(void* session, const char* command, nemokit_reward_out_v1* out) {
  return guarded(out, [&] {
    ToolOutput o = static_cast<ToolSession*>(session)->run(command ? command : "");
    out->exit_code = o.exit_code;
    put(out, o.output);
  });
}

inline void tools_close(void* session) { delete static_cast<ToolSession*>(session); }

template <class E>
constexpr nemokit_reward_env_v1 env_entry() {
  return {E::name, &create<E>, &destroy<E>, &score<E>, &tools_open<E>, &tools_run, &tools_close};
}

template <class... E>
const nemokit_reward_plugin_v1* describe(const char* name, const char* version) {
  static const nemokit_reward_env_v1 envs[] = {env_entry<E>()...};
  static const nemokit_reward_plugin_v1 d{NEMOKIT_REWARD_ABI_MAJOR, NEMOKIT_REWARD_ABI_MINOR, name, version,
                                          __start_nemokit_manifest ? __start_nemokit_manifest : "{}",
                                          sizeof...(E), envs};
  return &d;
}
}  // namespace detail
}  // namespace nemokit::sdk

#ifndef NEMOKIT_PLUGIN_NAME
#error "NEMOKIT_PLUGIN_NAME is not defined: build environment plugins with nemokit_add_environment()"
#endif

static_assert(NEMOKIT_REWARD_ABI_MAJOR == 1, "the entry alias below must carry the reward ABI major");

// Defines the plugin's entry point and exports it as the alias NEMOKIT_REWARD_ENTRY_NAME in
// section NEMOKIT_REWARD_SECTION. Use once per plugin, at namespace scope, naming every
// environment class it serves.
#define NEMOKIT_REWARD_PLUGIN(...)                                                                  \
  namespace nemokit_reward_entry_ {                                                                 \
  const nemokit_reward_plugin_v1* entry() {                                                         \
    return ::nemokit::sdk::detail::describe<__VA_ARGS__>(NEMOKIT_PLUGIN_NAME, NEMOKIT_PLUGIN_VERSION); \
  }                                                                                                 \
  }                                                                                                 \
  BOOST_DLL_ALIAS_SECTIONED(nemokit_reward_entry_::entry, nemokit_reward_v1, nemokit)
