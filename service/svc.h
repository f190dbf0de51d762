/*
** svc.h: what the service's files share (never installed): the service
** object, its live invocations, the operations the loop hands to the
** committer (one transaction for many of them), triggers, metrics.
** The store's interface is store.h; HTTP is http.h.
**
** Threads: the loop's thread owns everything here but the committer's
** queue (under its mutex) and the ops in it, which the committer's thread
** reads and fills until it hands them back.
*/
#ifndef WFP_SVC_H
#define WFP_SVC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "http.h"
#include "store.h"
#include "util.h"
#include "wfp/host.h"
#include "wfp/loop.h"

typedef struct svc svc;
typedef struct svc_inv svc_inv;
typedef struct svc_op svc_op;

/* A loaded .so. */
typedef struct svc_module {
  wfp_module *m;
  const char *path;
  const char *hash;
} svc_module;

/* --subscribe TOPIC=FN */
typedef struct svc_sub {
  char *name; /* "TOPIC=FN": its cursor's name */
  char *topic;
  char *fn;
  svc_module *mod;
} svc_sub;

/* --every DURATION=FN */
typedef struct svc_sched {
  char *name; /* "DURATION=FN" */
  char *fn;
  uint64_t period_ms;
  svc_module *mod;
  int64_t due; /* the next tick, as committed */
  uv_timer_t timer;
  svc *S;
  bool ticking; /* a tick is on its way to the store */
} svc_sched;

/* One write an effect made, kept until its record commits. */
enum { SVC_W_CTX, SVC_W_MSG, SVC_W_INST };
typedef struct svc_write {
  int kind;
  char *key;  /* ctx key, topic, or the instance's resource */
  size_t key_len;
  char *json; /* message payload, or the instance's properties */
  size_t json_len;
  int64_t i64;     /* ctx value */
  uint64_t handle; /* instance */
} svc_write;

/* A request waiting for an invocation's end (?wait=MS). */
typedef struct svc_waiter {
  wfp_http_req *req;
  uv_timer_t timer;
  svc_inv *si;
  struct svc_waiter *next;
  svc *S;
  bool get; /* GET ?wait: the object when it times out; POST: 202 */
} svc_waiter;

/* An invocation alive in this service (someone started it; its rows are
** the runtime's). */
struct svc_inv {
  svc *S;
  char id[17];
  int64_t seq;
  svc_module *mod;
  char *fn;
  char *origin;
  wfp_invocation *inv;
  int64_t created_ms;
  uint64_t ready_ns; /* when it was last let go on (step latency) */
  svc_write *held;   /* its fan-out rows' writes, until its own record */
  size_t nheld, held_cap;
  svc_waiter *waiters;
  svc_inv *prev, *next;   /* the live list */
  svc_inv *hnext;         /* the id table's chain */
  bool in_loop;
  int64_t epoch; /* several hosts: the epoch of this host's lease on it */
  bool lost;     /* another host took it over: it ends here, unrecorded */
};

/* Invocations the committer made (subscribers, schedules): started once
** their transaction committed. */
typedef struct svc_spawn {
  char id[17];
  int64_t seq;
  svc_module *mod;
  char *fn;
  char *input;
  char *origin;
  int64_t created_ms;
} svc_spawn;

/* What the loop asks the committer to make durable. */
enum {
  SVC_OP_CREATE,   /* a new invocation (and its idempotency key) */
  SVC_OP_STEP,     /* a step's record: state + pending sleep, or + resume; writes */
  SVC_OP_END,      /* an invocation's end; writes */
  SVC_OP_INSTANCE, /* a new resource instance */
  SVC_OP_TICK,     /* a schedule's tick */
  SVC_OP_QUERY,    /* db_query in the transaction (a runner's thread waits) */
  SVC_OP_RELEASE,  /* an invocation left without a record (its hold goes) */
  SVC_OP_SETUP     /* startup: cursors, schedules, catch-up of subscribers */
};

struct svc_op {
  int kind;
  svc_op *next;
  /* on the loop's thread, after the commit (NULL: nothing) */
  void (*done)(svc *S, svc_op *op);
  int64_t seq;     /* the invocation's row */
  char id[17];     /* the invocation's id (the sender of messages) */
  svc_inv *si;     /* the loop's, never touched by the committer */
  wfp_invocation *inv;
  wfp_commit_cb cb;
  /* CREATE */
  wfp_store_new create;
  svc_module *mod;
  char *fn, *input, *origin, *idem;
  bool found;      /* the idempotency key named an invocation already */
  char found_id[17];
  /* STEP */
  wfp_store_step st;
  uint8_t *state;
  char *key, *json, *each, *resume;
  /* END */
  int status;
  char *text;
  uint64_t steps, fuel;
  /* writes, in order */
  svc_write *w;
  size_t nw;
  /* INSTANCE */
  uint64_t handle;
  char *resource, *props;
  /* TICK */
  svc_sched *sched;
  int64_t next_due;
  /* QUERY */
  wfp_db_job *job;
  bool hold;
  bool ran;
  pthread_cond_t ran_cv;
  /* made by the committer */
  svc_spawn *spawn;
  size_t nspawn;
  /* the HTTP request it answers, and how long it may wait */
  wfp_http_req *req;
  int64_t wait_ms;
  uint64_t t0_ns;
  /* several hosts (cluster.c): the invocation's lease epoch (its records
  ** are fenced with it); lost: the fence failed, nothing of the op was
  ** written; owned: a new invocation is this host's to run; busy: an
  ** Idempotency-Key being taken by another request (503) */
  int64_t epoch;
  bool lost;
  int owned;
  bool busy;
};

/* ---- commit.c: the committer ---- */

typedef struct svc_committer svc_committer;

/* Starts the committer's thread on store s: ops handed to it are applied
** in order, many in one transaction, then given back to the loop's thread
** (their done callbacks, through an async handle on uv). 0 or WFP_E*. */
int wfp_svc_committer_start(svc *S, wfp_store *s, uv_loop_t *uv, svc_committer **out);
/* Hands an op over (any thread). */
void wfp_svc_commit(svc_committer *c, svc_op *op);
/* A runner's query: applied in the open transaction; waits for it. seq
** and epoch: its invocation's (the fence); hold: its writes wait for that
** invocation's next record. */
void wfp_svc_commit_query(svc_committer *c, wfp_db_job *job, int64_t seq, int64_t epoch,
                          bool hold);
/* Stops: what was handed over is committed (all of an open transaction
** whose queries wait for their records is rolled back, as a crash would),
** the thread joined, the ops not given back freed without their
** callbacks. NULL is a no-op. */
void wfp_svc_committer_stop(svc_committer *c);
/* The store failed (the service must stop): the message, or NULL. */
const char *wfp_svc_committer_failure(svc_committer *c);
/* Transactions and ops committed (metrics), the last batch's size. */
void wfp_svc_committer_stats(svc_committer *c, uint64_t *txns, uint64_t *ops,
                             uint64_t *batch_hist, int nbuckets, double *seconds);

void wfp_svc_op_free(svc_op *op);

/* ---- triggers.c ---- */

/* Parses "TOPIC=FN" and "DURATION=FN" (500ms, 10s, 1m, 2h) against the
** modules; a usage message in err when wrong. */
int wfp_svc_sub_parse(svc *S, const char *spec, svc_sub *out, char *err, size_t n);
int wfp_svc_sched_parse(svc *S, const char *spec, svc_sched *out, char *err, size_t n);
/* On the committer's thread, inside the transaction: a message was added
** (seq); every subscriber of its topic gets an invocation and its cursor
** moves past seq. */
int wfp_svc_subs_on_message(svc *S, wfp_store *s, svc_op *op, const char *topic, size_t tn,
                            const char *payload, size_t pn, int64_t seq, int64_t now);
/* Startup (committer, in a transaction): new cursors start at the end of
** the log; messages past a cursor get their invocations; schedules get
** their first due time. */
int wfp_svc_triggers_setup(svc *S, wfp_store *s, svc_op *op, int64_t now);
/* A tick (committer): the invocation, and the next due time in op. */
int wfp_svc_sched_tick(svc *S, wfp_store *s, svc_op *op, int64_t now);
/* The loop's side: arm the schedules' timers. */
void wfp_svc_scheds_arm(svc *S);

/* A new invocation id: 16 hex digits. */
void wfp_svc_new_id(char out[17]);
/* A spawned invocation's row (the committer's), appended to op. */
int wfp_svc_spawn(svc *S, wfp_store *s, svc_op *op, svc_module *mod, const char *fn,
                  const char *input, size_t input_len, const char *origin, int64_t now);

/* ---- serve.c: invocations in the loop ---- */

/* The module that runs fn: hash given, that one (NULL when not loaded);
** else the last one on the command line that has fn (NULL: none has). */
svc_module *wfp_svc_module_for(svc *S, const char *hash, const char *fn);
svc_module *wfp_svc_module_by_hash(svc *S, const char *hash);
/* The live invocation id, or NULL. */
svc_inv *wfp_svc_find(svc *S, const char *id);
/* Starts a committed invocation (new: input; from the store: a row). */
svc_inv *wfp_svc_start_new(svc *S, const char *id, int64_t seq, svc_module *mod,
                           const char *fn, const char *input, size_t input_len,
                           const char *origin, int64_t created_ms);
/* Starts the invocations an op spawned. */
void wfp_svc_start_spawned(svc *S, svc_op *op);
/* The properties of an instance as one JSON object (malloc), or NULL. */
char *wfp_svc_props_json(svc *S, uint64_t handle);
/* Hands an op to the committer, stamped. */
void wfp_svc_submit(svc *S, svc_op *op);
/* Stops the service (a signal, the store's failure): its exit code is
** S->exit_code. */
void wfp_svc_stop(svc *S);
int64_t wfp_svc_now_ms(void);

/* Takes up an invocation from its store row (a restart's recovery, a
** claim): WFP_ENOMEM, or 0 (started, waiting for its program, or ended as
** damaged). */
int wfp_svc_take_up(svc *S, const wfp_store_row *r);
/* An instance and its properties from the store into the environment
** (made, or its properties replaced). 0, or WFP_E* with err. */
int wfp_svc_instance_load(svc *S, uint64_t handle, const char *resource, const char *props,
                          char *err, size_t errlen);

/* ---- cluster.c: several hosts on one store (PostgreSQL) ---- */

typedef struct svc_cluster svc_cluster;

/* With a store for several hosts: the first block of instance handles,
** the heartbeat's and the reader's threads, ctx_get on the store. After
** the loop and the committer exist; nothing is claimed yet. */
int wfp_svc_cluster_start(svc *S, int64_t lease_ms, char *err, size_t errlen);
/* Claims begin (after recovery). */
void wfp_svc_cluster_go(svc *S);
/* Threads joined, timers closed, waiting requests answered 503 (before
** the committer stops). */
void wfp_svc_cluster_stop(svc *S);
/* After the last commit: this host's invocations and instances are let go. */
void wfp_svc_cluster_leave(svc *S);
void wfp_svc_cluster_free(svc *S);
/* Reads off the loop: work on the reader's thread (the store's reader
** methods), then after on the loop's; with one process on its store
** (SQLite), both at once. */
typedef void (*svc_read_fn)(svc *S, wfp_store *s, void *arg);
typedef void (*svc_after_fn)(svc *S, void *arg);
void wfp_svc_read(svc *S, svc_read_fn work, svc_after_fn after, void *arg);
/* A new instance: its handle from this host's block (several hosts) or the
** environment's. WFP_ELIMIT: no handle at hand right now (503). */
int wfp_svc_instance_new(svc *S, svc_module *mod, const char *resource, uint64_t *h);
/* An instance this host has not seen (another host made it): read from the
** store, then again(S, req, found). 1 when it went to the store, 0 when
** there is no other host (nothing to read). */
typedef void (*svc_fetch_fn)(svc *S, wfp_http_req *req, bool found);
int wfp_svc_instance_fetch(svc *S, wfp_http_req *req, uint64_t h, svc_fetch_fn again);
/* req waits up to ms for invocation id that another host runs (get: GET's
** answer, else POST's). */
void wfp_svc_wait_remote(svc *S, wfp_http_req *req, const char *id, int64_t ms, bool get);
/* An invocation another host took over ends here: its waiters wait for it
** there. */
void wfp_svc_cluster_lost(svc *S, svc_inv *si);
/* After it was freed: a row of it this host claimed back meanwhile is
** taken up now. */
void wfp_svc_cluster_retake(svc *S, const char *id);
void wfp_svc_cluster_metrics(svc *S, wfp__buf *b);

/* ---- api.c: the routes ---- */
void wfp_svc_handle(void *ud, wfp_http_req *req);
/* An invocation ended (committed): its waiters get the object. */
void wfp_svc_wake_waiters(svc *S, svc_inv *si, int status, const char *text, uint64_t steps);
/* Its waiters go (the service stops): answered into the void. */
void wfp_svc_drop_waiters(svc *S, svc_inv *si);
/* The JSON of GET /v1/invocations/ID from a store row, into b. */
void wfp_svc_row_json(wfp__buf *b, const wfp_store_row *r);

/* ---- status.c: the page and the metrics ---- */

/* Counts kept as invocations end (the status page, /metrics). */
typedef struct svc_fn_count {
  char *fn;
  uint64_t n[3]; /* pending, done, trapped */
} svc_fn_count;

#define SVC_TRAPS_KEPT 20
#define SVC_LAT_BUCKETS 14
#define SVC_BATCH_BUCKETS 10

typedef struct svc_trap {
  char id[17];
  char *fn;
  char *msg;
  int64_t at_ms;
} svc_trap;

typedef struct svc_stats {
  svc_fn_count *fns;
  size_t nfns, fns_cap;
  svc_trap traps[SVC_TRAPS_KEPT]; /* a ring, newest at (trap_at - 1) */
  size_t trap_at, ntraps;
  uint64_t steps;
  uint64_t effects[WFP_EFFECT_COUNT];
  uint64_t lat[SVC_LAT_BUCKETS + 1]; /* step latency histogram (+Inf last) */
  double lat_sum;
  uint64_t lat_n;
  uint64_t messages;
  uint64_t waiting_program; /* pending invocations whose .so is not loaded */
} svc_stats;

/* An invocation of fn moved from status from (-1: none, a new one) to
** to; or n of them are there (the store, at start). */
void wfp_svc_count(svc *S, const char *fn, int from, int to);
void wfp_svc_count_add(svc *S, const char *fn, int status, uint64_t n);
void wfp_svc_trap_note(svc *S, const char *id, const char *fn, const char *msg, int64_t at);
void wfp_svc_latency(svc *S, double seconds);
void wfp_svc_status_page(svc *S, wfp_http_req *req);
void wfp_svc_metrics(svc *S, wfp_http_req *req);
void wfp_svc_stats_free(svc_stats *st);

/* ---- the service ---- */

struct svc {
  /* options */
  const char *store_path, *db_path;
  svc_cluster *cl; /* several hosts on the store, or NULL */
  bool db_in_store; /* db_query runs in the store's transaction */
  uint64_t max_fuel, max_steps;
  svc_module *mods;
  int nmods;
  svc_sub *subs;
  int nsubs;
  svc_sched *scheds;
  int nscheds;
  int64_t max_wait_ms;
  /* running */
  wfp_env *env;
  wfp_loop *loop;
  uv_loop_t *uv;
  wfp_store *store;
  svc_committer *com;
  wfp_http *http;
  uv_signal_t sigterm, sigint;
  uv_timer_t watch; /* the committer's failure */
  bool stopping;
  int exit_code;
  /* live invocations: a list and an id table */
  svc_inv *live;
  size_t nlive;
  svc_inv **table;
  size_t table_cap;
  svc_stats stats;
  int64_t started_ms;
  FILE *log; /* the structured log (stderr) */
};

#endif /* WFP_SVC_H */
