/* nemokit reward environment ABI (C), versioned on its own, apart from the stage plugin ABI in
 * nemokit/plugin.h. An environment plugin is one shared library that exports, in the ELF section
 * "nemokit", a pointer named NEMOKIT_REWARD_ENTRY_NAME (which carries this ABI's major) to a
 * function returning its descriptor. The RL stage finds that name without loading the library,
 * refuses a plugin whose major differs or whose minor is newer than its own (naming both
 * versions), and only then loads it.
 *
 * The library also carries its manifest JSON (NUL-terminated) in the ELF section
 * "nemokit_manifest", read without running plugin code:
 *   {"name": "my_envs", "version": "1.0.0", "abi": {"major": 1, "minor": 0},
 *    "environments": ["my_env", ...]}
 * where "abi" is this reward ABI and "environments" the names the plugin serves (the descriptor
 * must serve the same). nemokit_add_environment() (CMake) embeds it.
 *
 * Strings crossing the boundary are UTF-8; nothing crossing it is owned by the other side after
 * the call returns: text the plugin hands back goes through the host's `put` callback, which
 * copies it. No call may let an exception or longjmp escape. score and the tools calls may run
 * on several threads at once (for different tasks or sessions). */
#ifndef NEMOKIT_REWARD_H
#define NEMOKIT_REWARD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NEMOKIT_REWARD_ABI_MAJOR 1
#define NEMOKIT_REWARD_ABI_MINOR 0

/* The same alias section as stage plugins (Boost.DLL limits its name to 8 bytes); the entry name
 * tells the two kinds apart. */
#define NEMOKIT_REWARD_SECTION "nemokit"
#define NEMOKIT_REWARD_ENTRY_PREFIX "nemokit_reward_v"
#define NEMOKIT_REWARD_ENTRY_NAME "nemokit_reward_v1"

enum nemokit_reward_status {
  NEMOKIT_REWARD_OK = 0,       /* the result is filled in */
  NEMOKIT_REWARD_BAD_TASK = 1, /* the task cannot be read (the text names the key) */
  NEMOKIT_REWARD_ERROR = 2     /* the environment itself failed (the text says why) */
};

/* Where a call writes its result. The host fills ctx and put; the plugin sets the numbers and
 * calls put (any number of times; the pieces are appended) for the text: the reason of a score,
 * the output of a tool command, or the cause of a BAD_TASK or ERROR status. */
typedef struct nemokit_reward_out_v1 {
  double value;      /* score: the reward, usually in [0, 1] */
  int32_t exit_code; /* tools_run: the command's exit status (128 + signal when killed) */
  void* ctx;
  void (*put)(void* ctx, const char* text, size_t len);
} nemokit_reward_out_v1;

/* One environment a plugin serves. */
typedef struct nemokit_reward_env_v1 {
  const char* name;
  /* Makes the environment's state from its settings (the RL config's [environments.NAME] table
   * as JSON, "{}" when absent). Returns NULL on failure with the cause through out->put. */
  void* (*create)(const char* settings_json, nemokit_reward_out_v1* out);
  void (*destroy)(void* env);
  /* Scores one response (response_len bytes; may hold NUL bytes or invalid UTF-8) to one task (the
   * RL record as JSON). Anything the response holds is a reward with a reason, never BAD_TASK. */
  int (*score)(void* env, const char* task_json, const char* response, size_t response_len,
               nemokit_reward_out_v1* out);
  /* Multi-turn tool use; all three NULL when the environment has no tools. tools_open returns a
   * session for the task's episode, or NULL with the cause through out->put (an empty cause means
   * the task has no tools). tools_run runs one command in it: output through put, exit_code set. */
  void* (*tools_open)(void* env, const char* task_json, nemokit_reward_out_v1* out);
  int (*tools_run)(void* session, const char* command, nemokit_reward_out_v1* out);
  void (*tools_close)(void* session);
} nemokit_reward_env_v1;

typedef struct nemokit_reward_plugin_v1 {
  uint32_t abi_major; /* NEMOKIT_REWARD_ABI_MAJOR the plugin was built with */
  uint32_t abi_minor;
  const char* name;
  const char* version;
  const char* manifest_json;
  size_t env_count;
  const nemokit_reward_env_v1* envs;
} nemokit_reward_plugin_v1;

typedef const nemokit_reward_plugin_v1* (*nemokit_reward_entry_v1)(void);

#ifdef __cplusplus
}
#endif
#endif /* NEMOKIT_REWARD_H */
