/* nemokit plugin ABI (C). A plugin is one shared library that exports, in the ELF section
 * "nemokit", a pointer named NEMOKIT_ENTRY_NAME (which carries the ABI major) to a function
 * returning its descriptor. The host finds that name without loading the library, refuses a
 * plugin whose ABI major differs or whose minor is newer than its own, and only then loads it.
 *
 * Alongside, the library carries two ELF sections the host reads without running plugin code:
 *   nemokit_manifest   the manifest JSON, NUL-terminated
 *   nemokit_resources  records of: NUL-terminated name, uint64 little-endian size, bytes
 * nemokit_add_plugin() (CMake) fills both. Strings crossing the boundary are UTF-8 and
 * NUL-terminated; nothing crossing it is owned by the other side after the call returns. */
#ifndef NEMOKIT_PLUGIN_H
#define NEMOKIT_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NEMOKIT_ABI_MAJOR 1
#define NEMOKIT_ABI_MINOR 0

/* Boost.DLL limits alias section names to 8 bytes. */
#define NEMOKIT_ENTRY_SECTION "nemokit"
#define NEMOKIT_ENTRY_PREFIX "nemokit_plugin_v"
#define NEMOKIT_ENTRY_NAME "nemokit_plugin_v1"

enum nemokit_log_level { NEMOKIT_LOG_DEBUG = 0, NEMOKIT_LOG_INFO = 1, NEMOKIT_LOG_WARN = 2, NEMOKIT_LOG_ERROR = 3 };

/* What the host offers a plugin during a call. */
typedef struct nemokit_host_v1 {
  uint32_t abi_major;
  uint32_t abi_minor;
  const char* host_version;
  void* ctx;
  void (*log)(void* ctx, int level, const char* line);
} nemokit_host_v1;

enum nemokit_call_kind {
  NEMOKIT_CALL_RUN = 1,       /* train: `nemokit run FAMILY STAGE [SUBSTAGE]` */
  NEMOKIT_CALL_DATA_PREP = 2, /* `nemokit data prep FAMILY STAGE [SUBSTAGE]` */
  NEMOKIT_CALL_COMMAND = 3,   /* a top-level command the manifest declares ("commands") */
  NEMOKIT_CALL_BUILD = 4      /* builder plugins: Dockerfile -> image (JSON request) */
};

typedef struct nemokit_call_v1 {
  uint32_t kind;              /* enum nemokit_call_kind */
  const char* family;         /* RUN / DATA_PREP; else NULL */
  const char* stage;
  const char* substage;       /* "" when the stage has none */
  const char* config_json;    /* RUN / DATA_PREP: the fully resolved config; BUILD: the request */
  const char* job_dir;        /* where outputs, logs and checkpoints go; may be NULL */
  int argc;                   /* COMMAND: the command name and the words after it */
  const char* const* argv;
} nemokit_call_v1;

typedef struct nemokit_plugin_v1 {
  uint32_t abi_major;         /* NEMOKIT_ABI_MAJOR the plugin was built with */
  uint32_t abi_minor;
  const char* name;
  const char* version;
  const char* manifest_json;
  /* Returns the process exit code (0 = success). On failure the plugin may write one line into
   * err (err_len bytes, NUL-terminated). Must not let exceptions or longjmps escape. */
  int (*invoke)(const nemokit_host_v1* host, const nemokit_call_v1* call, char* err, size_t err_len);
} nemokit_plugin_v1;

typedef const nemokit_plugin_v1* (*nemokit_plugin_entry_v1)(void);

#ifdef __cplusplus
}
#endif
#endif /* NEMOKIT_PLUGIN_H */
