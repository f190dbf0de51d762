/*
** loop.h: many invocations in one host. A wfp_loop runs invocations on a
** libuv event loop: a run queue of ready invocations, worker threads that
** take their steps, and their pending effects as requests that handlers
** complete now or later (a sleep is a timer, a query runs off the loop
** thread, the rows of a fan-out are invocations of their own). Not here:
** modules, environments and invocations themselves (host.h), the .so ABI
** (abi.h).
**
** Threads: every function here is called on the loop's thread (the one
** that calls wfp_loop_run), and so are the callbacks it calls: done
** callbacks, handlers, the sink, the commit hook and traces. Steps run on
** the worker threads, which touch only the stepping invocation and a
** module instance. The environment a loop runs on belongs to the loop
** while it has invocations alive.
*/
#ifndef WFP_LOOP_H
#define WFP_LOOP_H

#include <stdio.h>

#include "wfp/host.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wfp_loop wfp_loop;

/* Options of a loop. Caller-allocated; size first (fields are appended). */
typedef struct wfp_loop_opts {
  size_t size;          /* sizeof(wfp_loop_opts) */
  unsigned workers;     /* threads that run steps, the loop's own thread
                        ** among them (it takes what the others have no
                        ** room for, and an invocation ready alone); 0: one
                        ** per core; 1: no other thread is made */
  unsigned concurrency; /* invocations alive at once (started, not ended);
                        ** the rest wait their turn in start order; 0: no
                        ** cap. The rows of a fan-out do not count. */
  void *uv_loop;        /* a uv_loop_t to run on (borrowed: it must outlive
                        ** the wfp_loop), or NULL: the loop makes its own */
} wfp_loop_opts;

/*
** A loop on environment env (borrowed: it must outlive the loop). opts
** may be NULL (all defaults). 0 and *out, or WFP_EINVAL (NULL env or out,
** an opts size too small), WFP_ENOMEM, WFP_EIO (libuv or a thread could
** not be set up). Free with wfp_loop_free.
*/
WFP_API int wfp_loop_new(const wfp_loop_opts *opts, wfp_env *env, wfp_loop **out);

/*
** Frees the loop, after wfp_loop_run returned (not from a callback). The
** worker threads are joined. An invocation still alive (the loop was
** stopped) gets its done callback with WFP_ECANCELED and stays the
** caller's to free; a pending effect request of it is invalid from then on.
** Complete the requests handlers hold, and answer the commit hook, before.
** A borrowed uv_loop_t is left as it was, without the loop's handles (they
** are closed: run it once more with UV_RUN_NOWAIT to finish closing them
** before closing it). NULL is a no-op.
*/
WFP_API void wfp_loop_free(wfp_loop *loop);

/* Modes of wfp_loop_run, as uv_run's. */
enum { WFP_RUN_DEFAULT = 0, WFP_RUN_ONCE = 1, WFP_RUN_NOWAIT = 2 };

/*
** Runs the loop like uv_run: DEFAULT until no invocation is alive and
** nothing else keeps the uv loop busy (or wfp_loop_stop), ONCE one
** iteration waiting for events, NOWAIT one iteration without waiting.
** Returns what uv_run returns (non-zero: work is left), or WFP_EINVAL.
*/
WFP_API int wfp_loop_run(wfp_loop *loop, int mode);
/* Makes wfp_loop_run return soon (uv_stop); the invocations stay. */
WFP_API void wfp_loop_stop(wfp_loop *loop);
/* The uv_loop_t the loop runs on, for embedders' own handles (an HTTP
** server, a timer that completes an effect). Borrowed. */
WFP_API void *wfp_loop_uv(wfp_loop *loop);
/* The environment (borrowed). */
WFP_API wfp_env *wfp_loop_env(const wfp_loop *loop);
/* The threads that run steps, the loop's own thread among them. */
WFP_API unsigned wfp_loop_workers(const wfp_loop *loop);
/* Invocations started and not ended (rows of fan-outs not counted),
** and of those, the ones waiting for their turn (the concurrency cap). */
WFP_API size_t wfp_loop_alive(const wfp_loop *loop);
WFP_API size_t wfp_loop_waiting(const wfp_loop *loop);

/*
** How an invocation in a loop ended: WFP_DONE, WFP_TRAP, WFP_PENDING (the
** commit hook suspended it: it is pending, may be checkpointed, started
** again or freed), or a negative WFP_E* (the host failed: out of memory,
** a handler's error, a commit's error; WFP_ECANCELED when the loop was
** freed first).
*/
typedef void (*wfp_done_cb)(wfp_invocation *inv, int status, void *data);

/*
** Starts inv (made on this loop's environment; not in another loop) in the
** loop: it runs as the loop runs, and cb (may be NULL) is called once when
** it ends, with data. A new invocation takes its first step; a restored
** or suspended one (pending) first performs its pending effect. With the
** concurrency cap reached, it waits its turn. An invocation with an input
** "self" holds that resource instance from its first step to its end:
** others on the same instance wait (in start order), as actors do. Its
** limits (steps, fuel, time, memory) apply; a time limit counts from its
** first start. The invocation stays the caller's: free it after cb (in cb
** is fine), never while it is in the loop.
** 0, WFP_EINVAL (NULL, another environment, already in a loop, ended),
** WFP_ENOMEM.
*/
WFP_API int wfp_loop_start(wfp_loop *loop, wfp_invocation *inv, wfp_done_cb cb, void *data);
/* The data given to wfp_loop_start, or NULL. */
WFP_API void *wfp_invocation_data(const wfp_invocation *inv);
/* The invocation whose db_query with each made inv (a row of its
** fan-out), or NULL for an invocation someone started. */
WFP_API wfp_invocation *wfp_invocation_parent(const wfp_invocation *inv);
/* The row of its parent's fan-out inv runs (0, 1, ...); 0 without one. */
WFP_API size_t wfp_invocation_row(const wfp_invocation *inv);

/* ---- effects as requests ---- */

/*
** The pending effect of one invocation in a loop, handed to a handler.
** Its operands are borrowed: valid until it is completed. A handler
** completes it once, now (inside its call) or later (from the loop's
** thread: a uv timer, the after-callback of uv_queue_work); then the
** request is the loop's again. A second completion returns WFP_EINVAL
** and changes nothing, as long as the invocation has not moved on to a
** next effect (keep no request after completing it). When the loop gave
** up on the invocation meanwhile (a row whose fan-out failed, a time
** limit), a completion returns WFP_ECANCELED, never touching freed memory.
*/
typedef struct wfp_effect_req wfp_effect_req;

/* WFP_EFFECT_* (abi.h). */
WFP_API int wfp_effect_kind(const wfp_effect_req *req);
/* The string operand: the context key (ctx_get_i64, ctx_set_i64), the
** topic (msg_send), the SQL (db_query), the property (self_get,
** self_set); "" for the others. *len (may be NULL) its length; not
** NUL-free: a key may hold U+0000. */
WFP_API const char *wfp_effect_key(const wfp_effect_req *req, size_t *len);
/* The JSON operand as text: the payload (msg_send), the parameters
** (db_query, an array), the value (self_set); "" for the others. */
WFP_API const char *wfp_effect_json(const wfp_effect_req *req, size_t *len);
/* db_query's each function value ({"fn": ID, "args": [...]}), or NULL. */
WFP_API const char *wfp_effect_each(const wfp_effect_req *req, size_t *len);
/* The integer operand: the value (ctx_set_i64), the milliseconds
** (sleep_ms); 0 for the others. */
WFP_API int64_t wfp_effect_i64(const wfp_effect_req *req);
/* For sleep_ms: the wall-clock time to wake at, in milliseconds since the
** Unix epoch, fixed when the step suspended (a restored invocation keeps
** it); 0 for the others. */
WFP_API int64_t wfp_effect_wake_at(const wfp_effect_req *req);
/* The invocation and the loop (borrowed). */
WFP_API wfp_invocation *wfp_effect_invocation(const wfp_effect_req *req);
WFP_API wfp_loop *wfp_effect_loop(const wfp_effect_req *req);

/*
** Completes the request: the next step resumes with resume_json (len
** bytes, copied; the guest's resume value: {"i64": N} for ctx_get_i64,
** {"rows": [...]} for db_query, {"value": V} for self_get), or with none
** when resume_json is NULL. The text must be strict JSON nested at most
** WFP_JSON_MAX_DEPTH deep. 0, WFP_EINVAL (not JSON; completed already),
** WFP_ECANCELED, WFP_ENOMEM.
*/
WFP_API int wfp_effect_complete(wfp_effect_req *req, const char *resume_json, size_t len);
/* The same with {"i64": v}. */
WFP_API int wfp_effect_complete_i64(wfp_effect_req *req, int64_t v);
/* Fails the effect: the invocation traps with msg (copied). */
WFP_API int wfp_effect_fail(wfp_effect_req *req, const char *msg);
/* Hands the request to the built-in handler of its kind (a handler that
** takes some keys and leaves the rest). Returns what the handler returns. */
WFP_API int wfp_effect_builtin(wfp_effect_req *req);

/*
** A handler: called on the loop's thread when an invocation's step
** suspends on an effect of its kind. Returns 0 when it completed the
** request or keeps it to complete later; a negative WFP_E* when it cannot
** (the request stays uncompleted): the invocation then ends with that code.
*/
typedef int (*wfp_effect_fn)(void *ud, wfp_effect_req *req);

#define WFP_EFFECT_HANDLERS_VERSION 1
/* The handler table, like sqlite3_vfs: version and size first, fields
** only ever appended. fn[k] handles effect k (WFP_EFFECT_*); NULL keeps
** the built-in one. */
typedef struct wfp_effect_handlers {
  int version; /* WFP_EFFECT_HANDLERS_VERSION */
  size_t size; /* sizeof(wfp_effect_handlers) */
  void *ud;    /* passed to every handler */
  wfp_effect_fn fn[WFP_EFFECT_COUNT];
} wfp_effect_handlers;

/* Replaces the loop's handlers (the table is copied; NULL restores the
** built-ins). 0, or WFP_EINVAL (a version or size this library does not
** know). Requests in flight stay with the handlers that got them. */
WFP_API int wfp_loop_set_handlers(wfp_loop *loop, const wfp_effect_handlers *h);

/*
** The built-in handlers: ctx_get_i64 and ctx_set_i64 on the loop's
** environment, shared by its invocations; msg_send into the invocation's
** outbox, handed to the sink once the effect is committed; sleep_ms a
** timer of the loop, at the wake time fixed when the step suspended;
** db_query on the environment's database, one query at a time, off the
** loop's thread (libuv's thread pool), and with each a fan-out of rows;
** self_get and self_set on the environment's resource instance the
** input's "self" names; yield nothing (the invocation goes to the back of
** the run queue).
*/

/*
** The sink: where the messages of msg_send go, each once its effect is
** committed, on the loop's thread, with the invocation that sent it (a
** row of a fan-out too: wfp_invocation_parent). Strings borrowed for the
** call. The default sink (fn NULL) collects them: an invocation someone
** started keeps its messages (wfp_invocation_message_*) and adds them to
** the environment's (wfp_env_message_*); a row keeps its own, and when its
** fan-out ends the parent takes its rows' messages in row order, so an
** invocation's messages are in program order whatever ran in parallel.
*/
typedef void (*wfp_message_sink)(void *ud, wfp_invocation *inv, const char *topic,
                                 size_t topic_len, const char *payload, size_t payload_len);
WFP_API void wfp_loop_set_sink(wfp_loop *loop, wfp_message_sink fn, void *ud);

/* ---- the commit hook: where a durable store plugs in ---- */

enum {
  WFP_COMMIT_STEP = 0,   /* a step suspended: its effect is not performed yet */
  WFP_COMMIT_EFFECT = 1, /* the effect completed: the next step comes */
  WFP_COMMIT_END = 2     /* the invocation ended (done or trap) */
};

/*
** What the hook is asked to make durable. Borrowed for the call (copy
** what is kept); size first, fields appended only.
**   phase    WFP_COMMIT_*
**   inv      the invocation (a row of a fan-out too)
**   status   WFP_PENDING (STEP, EFFECT), WFP_DONE or WFP_TRAP (END)
**   state    the state bytes the next step resumes from (STEP, EFFECT)
**   effect   the effect suspended on (STEP) or completed (EFFECT): its
**            kind, operands (key, json, i64) and, for sleep_ms, wake_at
**   resume   EFFECT: the resume value (has_resume 0: none); a failed
**            effect resumes with {"error": MESSAGE}, and the guest traps
**   text     END: the output JSON (done) or the trap message
**   steps, fuel  counters so far (the invocation's own steps; its fuel
**            counts its rows')
** The one write an effect makes is in its operands: ctx_set_i64 key and
** i64, msg_send key (topic) and json (payload), self_set key (property)
** and json (value).
*/
typedef struct wfp_commit_record {
  size_t size;
  int phase;
  wfp_invocation *inv;
  int status;
  const uint8_t *state;
  size_t state_len;
  int effect; /* WFP_EFFECT_*, or -1 at END */
  const char *key;
  size_t key_len;
  const char *json;
  size_t json_len;
  int64_t i64;
  int64_t wake_at;
  int has_resume;
  const char *resume;
  size_t resume_len;
  const char *text;
  uint64_t steps;
  uint64_t fuel;
} wfp_commit_record;

/*
** The hook's answer, once the record is durable (now, inside the hook, or
** later from the loop's thread): rc 0 goes on; WFP_PENDING (STEP, of an
** invocation someone started: a row goes on) suspends the invocation
** there, which ends in the loop with status WFP_PENDING before its effect
** is performed; a negative WFP_E* ends it with that code. Called once per
** record.
*/
typedef void (*wfp_commit_cb)(wfp_invocation *inv, int rc);
typedef void (*wfp_commit_fn)(void *ud, const wfp_commit_record *rec, wfp_commit_cb cb);

/* Sets the hook (NULL: none; the loop goes straight on). The invocation
** waits at each phase until cb: its effect is not performed, its next step
** not taken, its done callback not called, and its messages not handed to
** the sink, before the record is durable. */
WFP_API void wfp_loop_set_commit(wfp_loop *loop, wfp_commit_fn fn, void *ud);

/*
** What a durable store kept of an invocation from its commit records, to
** take it up again after a restart (wfp_invocation_revive). Caller-owned;
** size first, fields appended only.
**   input     the input JSON text the invocation was made with
**   state     the state bytes of its last committed record (STEP or
**             EFFECT); empty: it took no step yet, and the rest is ignored
**   effect    the effect a STEP record suspended on, not performed (it is
**             performed again: a sleep_ms waits until wake_at), with its
**             operands as the record had them; -1: none pending (an
**             EFFECT record): the next step resumes with resume
**   resume    has_resume 0: none
**   steps, fuel  the counters of the record
*/
typedef struct wfp_saved_invocation {
  size_t size;
  const char *input;
  size_t input_len;
  const uint8_t *state;
  size_t state_len;
  int effect;
  const char *key;
  size_t key_len;
  const char *json;
  size_t json_len;
  const char *each; /* db_query's each function value, or NULL */
  size_t each_len;
  int64_t i64;
  int64_t wake_at;
  int has_resume;
  const char *resume;
  size_t resume_len;
  uint64_t steps;
  uint64_t fuel;
} wfp_saved_invocation;

/*
** Rebuilds the invocation s describes on module m in environment e (both
** borrowed: they must outlive it), to start in a loop: it performs its
** pending effect first, or takes its next step. Nothing from a store is
** trusted: the input must name a function of m, the state bytes must be
** m's program's (header, program hash, checksum, function), the operands
** fit the effect, the resume value be JSON. 0 and *out (free with
** wfp_invocation_free), or with diag (may be NULL) filled, path naming the
** field ("state", "effect", "resume", "input"):
**   WFP_ECORRUPT  a field that does not hold; WFP_ENOMEM; WFP_EINVAL
*/
WFP_API int wfp_invocation_revive(wfp_module *m, wfp_env *e, const wfp_saved_invocation *s,
                                  wfp_invocation **out, wfp_host_diag *diag);

/* ---- db_query on a connection of one's own ---- */

/*
** A query of db_query on its way to a runner (wfp_loop_set_db_runner)
** instead of the environment's database: a durable service runs it on its
** store's connection, inside the transaction the step commits in, so that
** the query's writes and the step are one. Opaque; the loop's (valid from
** the runner's call until wfp_db_job_run returned).
*/
typedef struct wfp_db_job wfp_db_job;

/* Flags of wfp_db_job_run. WFP_DB_PROTECT_STORE: the query may not name
** tables, views, indexes or triggers wfp_* (a store's own, in the same
** database); it fails with a message saying so. */
#define WFP_DB_PROTECT_STORE 1u

/*
** A runner: called on a thread of libuv's pool (never the loop's), for
** one query at a time per loop (the lane of db_query, loop.h above); it
** calls wfp_db_job_run once, on any thread (it may hand the job to a
** thread of its own and wait for it), and returns after that. Everything
** else of db_query stays the loop's: the fuel, the answer, the fan-out of
** each.
*/
typedef void (*wfp_db_runner)(void *ud, wfp_db_job *job);
/* Sets the runner (NULL: the environment's database, the default). Set it
** before the first db_query. */
WFP_API void wfp_loop_set_db_runner(wfp_loop *loop, wfp_db_runner fn, void *ud);
/*
** Runs the job's query on db, a sqlite3 * opened with the SQLite library
** the host loads (libsqlite3.so.0, or what WFP_SQLITE names), under
** db_query's authorizer and the invocation's fuel (docs/cli.md). Its rows,
** or its error, are the effect's answer. Returns 0, or the query's error
** (WFP_EINVAL a fault of the query, WFP_ELIMIT, WFP_ENOMEM, WFP_EIO), which
** the invocation then sees; a second call returns WFP_EINVAL and does
** nothing.
*/
WFP_API int wfp_db_job_run(wfp_db_job *job, void *db, unsigned flags);
/* After wfp_db_job_run: whether the statement writes nothing. */
WFP_API int wfp_db_job_readonly(const wfp_db_job *job);
/* Fixed when the job was handed over, readable on any thread: the data
** given to wfp_loop_start of the invocation someone started whose query
** this is (a row's: its top's); whether a row of a fan-out queries; whether
** the query has each (a fan-out follows its answer). */
WFP_API void *wfp_db_job_data(const wfp_db_job *job);
WFP_API int wfp_db_job_is_row(const wfp_db_job *job);
WFP_API int wfp_db_job_has_each(const wfp_db_job *job);

/*
** A runner on a database other than SQLite answers the job itself instead
** of wfp_db_job_run (once: either of them). The query: its SQL text and
** its parameters (a JSON array's text, "" when none; both borrowed until
** the answer), and the fuel it may use.
*/
WFP_API const char *wfp_db_job_sql(const wfp_db_job *job, size_t *len);
WFP_API const char *wfp_db_job_params(const wfp_db_job *job, size_t *len);
WFP_API uint64_t wfp_db_job_fuel(const wfp_db_job *job);
/*
** Its rows: rows[0..len) a JSON array of nrows objects, offs the start and
** the end of each object in it (2 * nrows offsets; NULL when nrows is 0),
** readonly whether the statement wrote nothing, used the fuel it used
** (copied). 0; WFP_EINVAL (answered already, a result past
** WFP_DB_RESULT_MAX); WFP_ENOMEM.
*/
WFP_API int wfp_db_job_answer(wfp_db_job *job, const char *rows, size_t len,
                              const size_t *offs, size_t nrows, int readonly, uint64_t used);
/* Its error: code (WFP_EINVAL a fault of the query, WFP_ELIMIT, WFP_ENOMEM,
** WFP_EIO) and the message the invocation sees. 0 or WFP_EINVAL. */
WFP_API int wfp_db_job_fail(wfp_db_job *job, int code, const char *msg, uint64_t used);

/* ---- many invocations from lines of text (wfp-host --batch) ---- */

/* Options of a batch. Caller-allocated; size first. */
typedef struct wfp_batch_opts {
  size_t size;
  unsigned workers;     /* as wfp_loop_opts */
  unsigned concurrency; /* as wfp_loop_opts; 0: no cap */
  uint64_t max_steps;   /* limits of each invocation (0: none): steps, */
  uint64_t max_fuel;    /* fuel, */
  uint64_t fuel_slice;  /* fuel per step (0: the default), */
  uint64_t max_time_ms; /* wall-clock milliseconds, */
  uint64_t max_memory;  /* bytes of linear memory */
  uint64_t self;        /* an instance (a handle) that a line without "self"
                        ** runs on when its function is a method of that
                        ** instance's resource (wfp-host --new); 0: none */
} wfp_batch_opts;

/* What a batch did. */
typedef struct wfp_batch_stats {
  uint64_t lines, done, trapped; /* lines read; invocations done; trapped
                                 ** (lines that were no valid input too) */
} wfp_batch_stats;

/*
** Runs one invocation of module m per line read from the file descriptor
** in_fd (until its end), all concurrently in one loop on environment env
** (borrowed; its context, instances and database are the invocations'
** shared stores), and writes one JSON object per line to out, in input
** order, each as soon as it and all lines before it ended:
** {"line": N, "output": OUTPUT} or {"line": N, "trap": "MESSAGE"} (N from
** 1; a line that is not a valid input, CONTRACT section 3, gives a trap
** object naming the fault). Lines are read as invocations finish, so a
** long input does not all wait in memory. stats (may be NULL) gets the
** counts. Returns WFP_DONE when every line ended done, WFP_TRAP when any
** trapped, or a negative WFP_E*: WFP_EIO (in_fd could not be read, out
** not written: errno tells), WFP_ENOMEM, WFP_EINVAL.
*/
WFP_API int wfp_batch_run(wfp_module *m, wfp_env *env, const wfp_batch_opts *opts, int in_fd,
                          FILE *out, wfp_batch_stats *stats);

#ifdef __cplusplus
}
#endif
#endif /* WFP_LOOP_H */
