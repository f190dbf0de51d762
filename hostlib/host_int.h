/*
** host_int.h: what the host library's files share (never installed).
*/
#ifndef WFP_HOST_INT_H
#define WFP_HOST_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"
#include "wfp/host.h"

/* Runs fn(arg) as the trap boundary of compiled code: returns 0, or the
** wasm_rt_trap_t code of a trap; *oom tells a trap that ran out of memory. */
int wfp__rt_protect(void (*fn)(void *), void *arg, bool *oom);

struct wfp_module {
  void *dl;
  const wfp_module_desc *d;
  char *path;
  void *inst;   /* one cached instance, reused by every step */
};

/* The module's instance, created when needed; NULL with *msg on failure. */
void *wfp__module_instance(wfp_module *m, const char **msg);
/* Drops the instance after a trap: its Wasm stack pointer is lost. */
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
};

int wfp__env_ctx_setn(wfp_env *e, const char *key, size_t n, int64_t v);
int wfp__env_ctx_getn(const wfp_env *e, const char *key, size_t n, int64_t *v);
int wfp__env_msg_add(wfp_env *e, const char *topic, size_t tn, const char *payload,
                     size_t pn);
void wfp__env_clear(wfp_env *e);
inst_ent *wfp__env_instance(const wfp_env *e, uint64_t handle);
prop_ent *wfp__env_prop(const inst_ent *in, const char *name, size_t n);
/* cJSON_ParseWithLength that tells text cJSON cannot read (WFP_EINVAL)
** from memory running out (WFP_ENOMEM). *out: the tree, or NULL. */
struct cJSON;
int wfp__json_parse(const char *text, size_t n, struct cJSON **out);
/* Checks that text (n bytes) is JSON of type ty; sets *compact (malloc) to
** its compact form. 0, WFP_EINVAL, WFP_ENOMEM. */
int wfp__json_of_type(const char *text, size_t n, uint8_t ty, char **compact);
/* Adds an instance with a given handle and no properties (restore). */
inst_ent *wfp__env_instance_add(wfp_env *e, uint64_t handle, const char *resource);
int wfp__env_prop_add(inst_ent *in, const char *name, uint8_t ty, const char *json);

/* db_query: runs sql with params (a JSON array) on e's database (an
** in-memory one is opened when there is none); rows gets the JSON array of
** row objects; offs (when not NULL) a pair of size_t per row: where its
** object starts and ends in rows. WFP_EINVAL with err set for a fault of
** the query. */
int wfp__db_query(wfp_env *e, const char *sql, size_t sql_len, const char *params,
                  size_t params_len, wfp__buf *rows, wfp__buf *offs, size_t *nrows,
                  char *err, size_t errlen);
void wfp__env_close_db(wfp_env *e);

#endif /* WFP_HOST_INT_H */
