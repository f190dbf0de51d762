/*
** store.h: the service's durable store, behind a table of methods with a
** version and a size first (as sqlite3_vfs and sqlite3_io_methods):
** SQLite (store_sqlite.c) and PostgreSQL (store_pg.c, several hosts).
** The store keeps invocations (input, state bytes, pending effect, output
** or trap), the context, resource instances, the message log, idempotency
** keys, subscribers' cursors and schedules. Not here: what is written
** when (commit.c groups the writes of many steps in one transaction),
** HTTP (api.c).
**
** Threads: the writer methods run on one thread at a time (the
** committer's), inside begin..commit; the reader methods on another one
** at a time (the loop's), on a connection of their own, and see only what
** was committed. Strings a reader method hands to its callback are
** borrowed for that call.
*/
#ifndef WFP_SVC_STORE_H
#define WFP_SVC_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "wfp/loop.h"

/* Status of an invocation in the store (CONTRACT section 6). */
enum { WFP_STORE_PENDING = 0, WFP_STORE_DONE = 1, WFP_STORE_TRAPPED = 2 };

typedef struct wfp_store wfp_store;
typedef struct wfp_store_methods wfp_store_methods;

/* An open store; an implementation's struct begins with this one. */
struct wfp_store {
  const wfp_store_methods *m;
};

/* How to open it. Caller-allocated; size first. */
typedef struct wfp_store_opts {
  size_t size;
  int sync; /* WFP_STORE_SYNC_*: when a commit reaches the disk */
  /* several hosts on one store (PostgreSQL; ignored by SQLite): */
  const char *host_id; /* this process's id among the hosts, 16 hex digits */
  int64_t lease_ms;    /* --lease-ms */
} wfp_store_opts;

/*
** --fsync: what a commit waits for.
**   FULL    every commit is synced before it is answered: a power loss
**           loses nothing answered
**   NORMAL  (SQLite: WAL with synchronous=NORMAL) the log is synced at
**           checkpoints only: a power loss may lose the last commits,
**           never corrupts; a process crash loses nothing
**   OFF     never synced: a process crash loses nothing, a power loss or
**           an operating system crash may lose commits or corrupt the store
*/
enum { WFP_STORE_SYNC_FULL = 0, WFP_STORE_SYNC_NORMAL = 1, WFP_STORE_SYNC_OFF = 2 };

/* A new invocation's row. */
typedef struct wfp_store_new {
  const char *id;      /* 16 hex digits */
  const char *program; /* program hash, 16 hex digits */
  const char *fn;      /* as the request named it */
  const char *input;   /* the input JSON (CONTRACT section 3) */
  size_t input_len;
  uint64_t self;      /* its instance, or 0 */
  const char *origin; /* "http", "subscriber TOPIC=FN", "every D=FN" */
  int64_t now_ms;
  /* several hosts (NULL when not asked): whether this host holds the new
  ** invocation (1: it runs it now; 0: another host, the one that holds its
  ** instance, takes it), and its lease's epoch */
  int *owned_out;
  int64_t *epoch_out;
} wfp_store_new;

/* What a step's record leaves in its invocation's row: the state the
** next step resumes from and either the effect pending (a sleep, whose
** wake time must survive a restart) or the resume value (wfp/loop.h,
** wfp_saved_invocation, reads it back). */
typedef struct wfp_store_step {
  int64_t seq; /* the row */
  const uint8_t *state;
  size_t state_len;
  int effect; /* pending: WFP_EFFECT_*; -1: none, the resume value follows */
  const char *key;
  size_t key_len;
  const char *json;
  size_t json_len;
  const char *each; /* or NULL */
  size_t each_len;
  int64_t i64;
  int64_t wake_at;
  int has_resume;
  const char *resume;
  size_t resume_len;
  uint64_t steps, fuel;
  int64_t now_ms;
} wfp_store_step;

/* An invocation's row as a reader sees it. */
typedef struct wfp_store_row {
  int64_t seq;
  const char *id, *program, *fn, *input, *origin;
  size_t input_len;
  int status; /* WFP_STORE_* */
  uint64_t self;
  const uint8_t *state;
  size_t state_len;
  int effect;
  const char *key;
  size_t key_len;
  const char *json;
  size_t json_len;
  const char *each;
  size_t each_len;
  int64_t i64, wake_at;
  int has_resume;
  const char *resume;
  size_t resume_len;
  const char *output; /* done: the output JSON; trapped: NULL */
  const char *trap;   /* trapped: the message; else NULL */
  uint64_t steps, fuel;
  int64_t created_ms, updated_ms;
  int64_t epoch; /* several hosts: the epoch of the lease it is held under */
} wfp_store_row;

typedef struct wfp_store_msg {
  int64_t seq;
  const char *topic;
  size_t topic_len;
  const char *payload;
  size_t payload_len;
  const char *invocation;
} wfp_store_msg;

typedef int (*wfp_store_row_cb)(void *ud, const wfp_store_row *row);
typedef int (*wfp_store_msg_cb)(void *ud, const wfp_store_msg *msg);
typedef int (*wfp_store_ctx_cb)(void *ud, const char *key, size_t len, int64_t value);
typedef int (*wfp_store_inst_cb)(void *ud, uint64_t handle, const char *resource,
                                 const char *props);
/* fn, status, count: the invocations of fn with status. */
typedef int (*wfp_store_count_cb)(void *ud, const char *fn, int status, uint64_t n);

#define WFP_STORE_METHODS_VERSION 1

typedef struct wfp_store_cluster wfp_store_cluster;

/*
** The methods. Each returns 0, or a negative WFP_E* with the store's
** message in errmsg: WFP_EIO (the database failed: the service stops,
** and what was not committed never happened), WFP_ENOMEM. A callback
** that returns non-zero stops an iteration, which returns that value.
*/
struct wfp_store_methods {
  int version;      /* WFP_STORE_METHODS_VERSION */
  size_t size;      /* sizeof(wfp_store_methods) */
  const char *name; /* "sqlite" */

  void (*close)(wfp_store *s);
  /* The last error's message (borrowed until the next call). */
  const char *(*errmsg)(wfp_store *s);

  /* ---- writing: one thread, between begin and commit (or rollback) ---- */
  int (*begin)(wfp_store *s);
  int (*commit)(wfp_store *s);
  void (*rollback)(wfp_store *s);
  /* A new row, status pending; *seq its sequence number. */
  int (*inv_create)(wfp_store *s, const wfp_store_new *n, int64_t *seq);
  /* A step's record (wfp_store_step). */
  int (*inv_step)(wfp_store *s, const wfp_store_step *st);
  /* Its end: status DONE (text the output JSON) or TRAPPED (the message). */
  int (*inv_end)(wfp_store *s, int64_t seq, int status, const char *text, uint64_t steps,
                 uint64_t fuel, int64_t now_ms);
  /* Idempotency keys: 1 and the invocation's id (17 bytes) when key is
  ** known, 0 when not; put records it. */
  int (*idem_get)(wfp_store *s, const char *key, char id[17]);
  int (*idem_put)(wfp_store *s, const char *key, const char *id, int64_t now_ms);
  int (*ctx_set)(wfp_store *s, const char *key, size_t len, int64_t value);
  /* A message: *seq its sequence number in the log. */
  int (*msg_add)(wfp_store *s, const char *topic, size_t topic_len, const char *payload,
                 size_t payload_len, const char *invocation, int64_t now_ms, int64_t *seq);
  /* The messages on topic after seq, in order (a subscriber's catch-up). */
  int (*msg_scan)(wfp_store *s, const char *topic, int64_t after, wfp_store_msg_cb cb,
                  void *ud);
  /* The largest sequence number in the log (0: none). */
  int (*msg_last)(wfp_store *s, int64_t *seq);
  /* A subscriber's cursor: 1 and *seq when it has one, 0 when not. */
  int (*cursor_get)(wfp_store *s, const char *name, int64_t *seq);
  /* Moves it to seq: 0; 1 when another host delivered seq to this
  ** subscriber already (several hosts: its invocation is not made twice). */
  int (*cursor_set)(wfp_store *s, const char *name, int64_t seq);
  /* An instance and its properties (a JSON object), created or replaced. */
  int (*inst_put)(wfp_store *s, uint64_t handle, const char *resource, const char *props);
  /* A schedule's next due time: 1 and *due, or 0 when it has none. */
  int (*sched_get)(wfp_store *s, const char *name, int64_t *due);
  int (*sched_set)(wfp_store *s, const char *name, int64_t due);
  /* db_query in the open transaction (wfp_db_job_run on the store's own
  ** connection, the store's tables protected); NULL for a store that keeps
  ** no program tables. A failed query leaves nothing behind; the
  ** transaction goes on. Returns 0, or WFP_EIO when the transaction is
  ** lost (the query's own error is the job's). */
  int (*db_run)(wfp_store *s, wfp_db_job *job);

  /* ---- reading: another thread, its own connection ---- */
  int (*load_ctx)(wfp_store *s, wfp_store_ctx_cb cb, void *ud);
  int (*load_instances)(wfp_store *s, wfp_store_inst_cb cb, void *ud);
  /* Every pending invocation, in creation order. */
  int (*load_pending)(wfp_store *s, wfp_store_row_cb cb, void *ud);
  int (*load_counts)(wfp_store *s, wfp_store_count_cb cb, void *ud);
  /* The last n trapped invocations, newest first. */
  int (*load_traps)(wfp_store *s, int n, wfp_store_row_cb cb, void *ud);
  /* One invocation: 1 after cb, 0 when there is none. */
  int (*get_inv)(wfp_store *s, const char *id, wfp_store_row_cb cb, void *ud);
  /* Messages after seq (topic NULL: all), in order, at most limit. */
  int (*messages)(wfp_store *s, const char *topic, int64_t after, int64_t limit,
                  wfp_store_msg_cb cb, void *ud);
  /* One instance: 1 after cb, 0 when there is none. */
  int (*get_instance)(wfp_store *s, uint64_t handle, wfp_store_inst_cb cb, void *ud);

  /* Several hosts on this store (below), or NULL: one process at a time. */
  const wfp_store_cluster *cluster;
};

/*
** Several hosts on one store (CONTRACT section 7; store_pg.c, docs/service.md).
** Each host has an id and a lease (a row renewed every lease/3 by the
** heartbeat, on a connection of its own); it holds invocations (their
** owner column), each under an epoch that grows by one at each claim, and
** resource instances the same way. A record commits only while its
** invocation is still held at its epoch (fence): a host that lost its lease
** to another one never commits a step that one took over.
*/

/* What a claim asks for and answers. Caller-allocated; size first. */
typedef struct wfp_store_claim {
  size_t size;
  const char *const *programs; /* the program hashes this host runs */
  int nprograms;
  int limit;            /* invocations at most (an instance's come all at once) */
  int64_t now_ms;       /* this host's clock: sleepers due by now_ms + ahead_ms */
  int64_t ahead_ms;     /* are taken */
  wfp_store_row_cb row; /* each claimed row (row->epoch its new epoch), the
                        ** one of an instance that had begun first */
  wfp_store_inst_cb inst; /* each instance acquired: its properties now */
  void *ud;
  /* answers */
  int64_t next_due_ms;  /* the earliest wake time of a sleeper left (0: none) */
  int64_t next_expiry_ms; /* in how many ms another host's lease ends (-1: none) */
  int full;             /* the limit was reached: there may be more */
} wfp_store_claim;

/* Notifications the listener reports (bits). */
enum { WFP_STORE_NOTE_WORK = 1 };

struct wfp_store_cluster {
  size_t size; /* sizeof(wfp_store_cluster) */
  /* ---- the writer (committer's thread), in the open transaction ---- */
  /* 1 while invocation seq is held at epoch (its row stays locked to the
  ** end of the transaction), 0 when another host took it over. */
  int (*fence)(wfp_store *s, int64_t seq, int64_t epoch);
  /* ---- the cluster's thread and connection (cluster.c), each call a
  ** transaction of its own ---- */
  /* Takes runnable invocations: unheld, or held by a host whose lease
  ** ended, of a program given, not sleeping past now + ahead; with their
  ** resource instances. Never waits for a row another host locked. */
  int (*claim)(wfp_store *s, wfp_store_claim *c);
  /* ---- the writer again ---- */
  /* A context key's value when it has none (--ctx). */
  int (*ctx_default)(wfp_store *s, const char *key, size_t len, int64_t value);
  /* ---- the cluster's thread ---- */
  /* A block of instance handles no other host hands out: [*first, *first + *n). */
  int (*handles)(wfp_store *s, uint64_t *first, uint64_t *n);
  /* ---- the writer ---- */
  /* Lets go of invocation seq held at epoch: another host (or this one)
  ** claims it again from its last record. */
  int (*release)(wfp_store *s, int64_t seq, int64_t epoch);
  /* ---- readers (the reader's thread) ---- */
  /* A context key: 1 and *value, 0 when it is not set. */
  int (*ctx_get)(wfp_store *s, const char *key, size_t len, int64_t *value);
  /* ---- the cluster's thread ---- */
  /* Renews this host's lease; *lapsed 1 when it had ended before. */
  int (*heartbeat)(wfp_store *s, int *lapsed);
  /* Waits up to ms for a notification (WFP_STORE_NOTE_* bits), or for
  ** wake_fd to be readable (0). */
  int (*listen)(wfp_store *s, int wake_fd, int ms);
  /* A clean stop, after the last commit: what this host holds is let go
  ** (others take it at once) and its lease ends. */
  int (*leave)(wfp_store *s);
  /* This host's id (any thread). */
  const char *(*host_id)(wfp_store *s);
  /* ---- the loop's thread ---- */
  /* The instances of the last claim have their properties loaded: new
  ** invocations on them are this host's from now (until then they are
  ** made unheld, and claimed). */
  void (*hold)(wfp_store *s);
};

/*
** Opens the store where names (a SQLite file path, or a postgresql:// or
** postgres:// URL), creating or upgrading its schema. A second process on
** one SQLite store is refused (a lock file beside it); on PostgreSQL many
** hosts share it. 0 and *out, or WFP_EIO / WFP_EINVAL with a message in err.
*/
int wfp_store_open(const char *where, const wfp_store_opts *o, wfp_store **out, char *err,
                   size_t errlen);

/* The SQLite store (store_sqlite.c). */
int wfp_store_sqlite_open(const char *path, const wfp_store_opts *o, wfp_store **out,
                          char *err, size_t errlen);
/* The PostgreSQL store (store_pg.c). */
int wfp_store_pg_open(const char *url, const wfp_store_opts *o, wfp_store **out, char *err,
                      size_t errlen);
/* Whether where names a PostgreSQL database. */
int wfp_store_is_pg(const char *where);
/* A URL as logs and pages show it: its password as ***. */
void wfp_store_url_shown(const char *url, char *out, size_t n);

#endif /* WFP_SVC_STORE_H */
