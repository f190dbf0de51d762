/*
** host_int.h: what the host library's files share (never installed).
*/
#ifndef WFP_HOST_INT_H
#define WFP_HOST_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "json.h"
#include "util.h"
#include "wfp/host.h"

/* Runs fn(arg) as the trap boundary of compiled code: returns 0, or the
** wasm_rt_trap_t code of a trap; *oom tells a trap that ran out of memory. */
int wfp__rt_protect(void (*fn)(void *), void *arg, bool *oom);

/* The memory limit of the steps this thread runs from now on (bytes of
** linear memory an instance may grow to; 0: none); a grow past it fails,
** and wfp__rt_memory_capped says so until the next set. */
void wfp__rt_set_memory_cap(uint64_t bytes);
bool wfp__rt_memory_capped(void);

/* The host runtime's WFP_RT_LAYOUT (abi.h), which a module must share. */
uint64_t wfp__rt_layout(void);
/* Tests: the n-th next allocation of the runtime (memories, tables, the
** type registry) fails, counting from 0; -1 stops failing. */
void wfp__rt_fail_alloc(long n);
/* Tests: memories and tables allocated and not yet freed. */
long wfp__rt_live_blocks(void);

/* Checks an ELF file of size bytes, read through rd, before dlopen maps
** it: an ELF shared object of this machine whose headers, segments and
** sections lie within the file. 0, or WFP_ENOTMODULE, WFP_EIO or
** WFP_ENOMEM with the place (e.g. "program header 2") in place and the
** fault in *why (static). */
typedef bool (*wfp__elf_read_fn)(void *ud, uint64_t off, void *buf, size_t n);
int wfp__elf_check(wfp__elf_read_fn rd, void *ud, uint64_t size, char *place,
                   size_t placelen, const char **why);

struct wfp_module {
  void *dl;
  const wfp_module_desc *d;
  char *path;
  bool steps; /* the descriptor has init_module, alloc_ and init_instance */
  bool ready; /* init_module ran to its end (atomic: read without a lock) */
  pthread_mutex_t lock; /* the pool */
  void **pool;          /* idle instances, ready for any thread's step */
  size_t npool, pool_cap;
};

/* An instance for one step on the calling thread: an idle one from the
** pool, or a new one; NULL with *msg (static) when none can be made. */
void *wfp__module_take(wfp_module *m, const char **msg);
/* Gives an instance back after a step that returned (kept idle, or freed
** when the pool is full or the instance grew large). */
void wfp__module_give(wfp_module *m, void *inst);
/* Frees an instance after a trap: its Wasm stack pointer is lost. */
void wfp__module_drop(wfp_module *m, void *inst);
/* Frees the idle instances (tests: the next step makes a new one). */
void wfp__module_discard(wfp_module *m);

typedef struct ctx_ent {
  char *key;
  int64_t v;
} ctx_ent;

typedef struct msg_ent {
  char *topic;
  char *payload;
} msg_ent;

typedef struct prop_ent {
  char *name;
  uint8_t type; /* WFP_TY_* */
  char *json;   /* compact JSON text */
} prop_ent;

typedef struct inst_ent {
  uint64_t handle;
  char *resource;
  prop_ent *props;
  size_t nprops;
} inst_ent;

/* An invocation (invoke.c; its checkpoints: checkpoint.c). */
enum { WFP__RUNNING = -1 };

struct wfp_invocation {
  wfp_module *m;
  wfp_env *e;
  char *input;
  size_t input_len;
  int status;   /* WFP__RUNNING, WFP_DONE, WFP_TRAP */
  bool pending; /* an effect waits for perform() */
  wfp__buf state;
  /* the pending effect, copied out of the instance */
  uint32_t effect;
  wfp__buf s0, s1, s2;
  bool has_s2;
  int64_t ival;
  /* what the next step resumes with */
  bool resume_some;
  wfp__buf resume;
  char *output;
  char *trap;
  uint64_t steps;
  uint64_t self; /* the instance of the input's "self", or 0 */
  uint64_t fuel_used, fuel_max, fuel_slice;
  uint64_t max_steps; /* the step limit, which a fan-out's invocations inherit */
  int depth;          /* fan-out nesting: 0 for an invocation the host started */
  wfp_trace_fn trace;
  void *trace_ud;
  wfp__buf line; /* trace and pending-json scratch */
};

struct wfp_env {
  inst_ent *insts;
  size_t ninsts, insts_cap;
  uint64_t next_handle;
  ctx_ent *ctx;
  size_t nctx, ctx_cap;
  uint32_t *index; /* open addressing over ctx, 0 = empty, else i + 1 */
  size_t index_cap;
  msg_ent *msgs;
  size_t nmsgs, msgs_cap;
  struct sqlite3 *db; /* db_query's database: opened when first needed */
  char *db_path;      /* its file, or NULL for an in-memory database */
  /* the checkpoint key (wfp_env_set_checkpoint_key): HMAC-SHA-256 pads a
  ** key to 64 bytes and hashes a longer one first, so at most 64 are kept */
  uint8_t ckpt_key[64];
  size_t ckpt_key_len; /* 0: none */
};

int wfp__env_ctx_setn(wfp_env *e, const char *key, size_t n, int64_t v);
int wfp__env_ctx_getn(const wfp_env *e, const char *key, size_t n, int64_t *v);
int wfp__env_msg_add(wfp_env *e, const char *topic, size_t tn, const char *payload,
                     size_t pn);
void wfp__env_clear(wfp_env *e);
inst_ent *wfp__env_instance(const wfp_env *e, uint64_t handle);
prop_ent *wfp__env_prop(const inst_ent *in, const char *name, size_t n);
/* Checks that text (n bytes) is JSON of type ty; sets *compact (malloc) to
** its compact form. 0, WFP_EINVAL, WFP_ENOMEM. */
int wfp__json_of_type(const char *text, size_t n, uint8_t ty, char **compact);
/* Adds an instance with a given handle and no properties (restore). */
inst_ent *wfp__env_instance_add(wfp_env *e, uint64_t handle, const char *resource);
int wfp__env_prop_add(inst_ent *in, const char *name, uint8_t ty, const char *json);

/* db_query: runs sql with params (a JSON array) on e's database (an
** in-memory one is opened when there is none), under the authorizer of
** docs/cli.md; rows gets the JSON array of row objects; offs (when not
** NULL) a pair of size_t per row: where its object starts and ends in rows.
** The query may use fuel units (one per 1,000 SQLite virtual-machine
** instructions); *used gets what it used, fuel + 1 when it was stopped.
** Returns 0, or with err set: WFP_EINVAL a fault of the query (refused by
** the authorizer included), WFP_ELIMIT it ran out of fuel or its rows grew
** past WFP_DB_RESULT_MAX bytes, WFP_ENOMEM, WFP_EIO (SQLite cannot be
** loaded). */
int wfp__db_query(wfp_env *e, const char *sql, size_t sql_len, const char *params,
                  size_t params_len, uint64_t fuel, uint64_t *used, wfp__buf *rows,
                  wfp__buf *offs, size_t *nrows, char *err, size_t errlen);
void wfp__env_close_db(wfp_env *e);
/* As wfp_env_open_db; create false opens only an existing file. */
int wfp__env_open_db(wfp_env *e, const char *path, bool create, char *err, size_t errlen);

#endif /* WFP_HOST_INT_H */
