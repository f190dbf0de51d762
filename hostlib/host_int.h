/*
** host_int.h: what the host library's files share (never installed): the
** module, environment and invocation objects, the loop's internals, and
** the helpers each file offers the others.
*/
#ifndef WFP_HOST_INT_H
#define WFP_HOST_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "json.h"
#include "util.h"
#include "wfp/host.h"
#include "wfp/loop.h"

/* Runs fn(arg) as the trap boundary of compiled code: returns 0, or the
** wasm_rt_trap_t code of a trap; *oom tells a trap that ran out of memory. */
int wfp__rt_protect(void (*fn)(void *), void *arg, bool *oom);

/* The memory limit of the steps this thread runs from now on (bytes of
** linear memory an instance may grow to; 0: none); a grow past it fails,
** and wfp__rt_memory_capped says so until the next set;
** wfp__rt_memory_failed, that a grow failed for want of host memory. */
void wfp__rt_set_memory_cap(uint64_t bytes);
bool wfp__rt_memory_capped(void);
bool wfp__rt_memory_failed(void);

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
  /* the descriptor's resume_step, or NULL for a module built before it
  ** (its steps then go through run_step, the resume as JSON text) */
  int (*resume_step)(void *inst, uint64_t ctx_id, const char *input,
                     uint32_t input_len, const uint8_t *state, uint32_t state_len,
                     uint32_t kind, int64_t v, const char *json, uint32_t json_len,
                     wfp_abi_step *out);
  /* whether the program reads its input after it starts (an "input"
  ** expression in its canonical IR): when not, a resumed step is given
  ** none, and the input is not copied into the instance every step */
  bool input_on_resume;
  pthread_mutex_t lock; /* the pool */
  void **pool;          /* idle instances, ready for any thread's step */
  size_t npool, pool_cap;
};

/* An instance for one step on the calling thread: an idle one from the
** pool (none of more than max_bytes of linear memory, when not 0), or a
** new one; NULL with *msg (static) when making one trapped, NULL with
** *msg NULL when memory ran out. */
void *wfp__module_take(wfp_module *m, uint64_t max_bytes, const char **msg);
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

typedef struct wfp__fanout wfp__fanout;

/* An invocation (invocation.c; in a loop: loop.c; its checkpoints:
** checkpoint.c). */
enum { WFP__RUNNING = -1 };

/* Where an invocation is in its loop. */
enum {
  WFP__L_NONE,    /* in no loop */
  WFP__L_ADMIT,   /* waits for the concurrency cap (loop->admit) */
  WFP__L_ACTOR,   /* waits for its resource instance (the actor's queue) */
  WFP__L_READY,   /* in the run queue (loop->ready) */
  WFP__L_FUEL,    /* waits for fuel that running steps reserved (loop->fuel) */
  WFP__L_RUNNING, /* a step runs */
  WFP__L_EFFECT,  /* its effect is with a handler */
  WFP__L_COMMIT   /* waits for the commit hook */
};

/* A request: the effect of one invocation, from a slot of the loop that
** lives as long as the loop (completions after the invocation went find a
** slot, never freed memory). */
enum { WFP__REQ_FREE, WFP__REQ_WAITING, WFP__REQ_DONE };
struct wfp_effect_req {
  wfp_loop *loop;
  wfp_invocation *inv; /* NULL once the loop gave up on it */
  int state;
  wfp_effect_req *next; /* the loop's free list */
};

struct wfp_invocation {
  wfp_module *m;
  wfp_env *e;
  char *input;
  size_t input_len;
  int status;   /* WFP__RUNNING, WFP_DONE, WFP_TRAP */
  bool pending; /* an effect waits to be performed */
  wfp__buf state;
  /* the pending effect, copied out of the instance */
  uint32_t effect;
  wfp__buf s0, s1, s2;
  bool has_s2;
  int64_t ival;
  int64_t wake_at; /* sleep_ms: wall-clock ms since the epoch to wake at */
  /* what the next step resumes with */
  bool resume_some;
  wfp__buf resume;
  /* a ctx-get-i64's integer, typed (with resume_some): a step hands it to
  ** the module as it is; the text {"i64":N} is written into resume only
  ** when something asks for the text (wfp__resume_text), resume_text then
  ** says it is there */
  bool resume_typed, resume_text;
  int64_t resume_i64;
  /* while wfp_invocation_run steps it on the calling thread (hold): the
  ** instance of its last step, kept for its next one instead of going back
  ** to the module's pool (a lock and an unlock each way per step) */
  bool hold;
  void *held;
  char *output;
  char *trap;
  uint64_t steps;
  uint64_t self; /* the instance of the input's "self", or 0 */
  uint64_t fuel_used, fuel_max, fuel_slice;
  uint64_t max_steps;  /* the step limit, counting the steps of its rows */
  uint64_t row_steps;  /* steps its fan-outs' rows took */
  uint64_t time_limit; /* ms from its first start; 0: none */
  int64_t started_at;  /* wall-clock ms of its first start in a loop, or 0 */
  uint64_t mem_max;    /* bytes of linear memory; 0: none */
  int64_t last_used;   /* fuel its last step used */
  int depth;           /* fan-out nesting: 0 for an invocation the host started */
  wfp_trace_fn trace;
  void *trace_ud;
  wfp__buf line; /* trace and pending-json scratch */
  /* its messages (the default sink) */
  struct msg_ent *msgs;
  size_t nmsgs, msgs_cap;
  bool msgs_lost; /* the default sink could not keep one (out of memory) */
  /* ---- in a loop (loop.c) ---- */
  wfp_loop *loop;
  int where;                   /* WFP__L_* */
  wfp_invocation *prev, *next; /* the queue it is in */
  wfp_done_cb done;
  void *data;
  wfp_effect_req *req;     /* its effect's request, while one is out */
  bool in_call;            /* a handler or the hook runs on its behalf */
  bool call_done;          /* ... and completed or answered meanwhile */
  int call_rc;             /* the hook's answer */
  int fail_rc;             /* the host failed its effect during its handler */
  bool outbox;             /* its message waits for the commit and the sink */
  bool perform_only;       /* wfp_invocation_perform: out after the effect */
  bool killed;             /* ended by the loop while a thread or the hook had it */
  char *kill_msg;          /* ... its trap message, or NULL: a cancelled row */
  wfp_invocation *parent;  /* a row: the invocation of its fan-out */
  wfp_invocation *top;     /* a row: the invocation someone started; else NULL */
  size_t row;
  wfp__fanout *fan;        /* its fan-out in flight */
  uint64_t budget;         /* fuel reserved for its running step */
  uint64_t run_cap;        /* the memory limit of its running step */
  uint64_t reserved;       /* a top: fuel its tree's running steps reserved */
  size_t heap_at;          /* its place in the loop's timers + 1, or 0 */
  uint64_t due;            /* the loop time (ms) its timer fires at */
  int step_rc;             /* the result of its step on a worker */
  int commit_phase;        /* WFP_COMMIT_* it waits for */
  bool admitted;           /* counted in the loop's alive */
  wfp_invocation *tprev, *tnext; /* the loop's list of invocations someone started */
};

/* The invocation whose limits apply to inv (a row: its top). */
#define WFP__TOP(inv) ((inv)->top ? (inv)->top : (inv))

/* ---- input.c ---- */

/* A batch's instance: an input (set whole, with no "self") whose function
** is a method of handle's resource runs on handle. */
int wfp__input_default_self(wfp_input *in, const wfp_env *e, uint64_t handle);

/* ---- invocation.c ---- */

/* The wall clock in milliseconds since the epoch. */
int64_t wfp__now_ms(void);
/* The fuel inv's next step may use: its slice, or what its top's limit
** leaves after the fuel running steps reserved; 0 when none is left. */
uint64_t wfp__step_budget(const wfp_invocation *inv);
/* The message of a limit inv's top has reached before its next step (a
** step, fuel or time limit; fuel only when nothing is reserved), written
** to buf; NULL when none is. */
const char *wfp__limit_reached(const wfp_invocation *inv, char *buf, size_t n);
/* One step with budget units of fuel and a memory limit (0: none) on the
** calling thread: WFP_DONE, WFP_TRAP, WFP_PENDING or a negative WFP_E*.
** Touches only inv's own step fields (none the loop writes meanwhile), its
** module's pool and the runtime; no trace. */
int wfp__step_run(wfp_invocation *inv, uint64_t budget, uint64_t mem_cap);
/* Ends inv with a trap of msg[0..n): WFP_TRAP, or WFP_ENOMEM. */
int wfp__end_trap(wfp_invocation *inv, const char *msg, size_t n);
/* The trace lines of a step and of a performed effect, when tracing;
** false when the line could not be made (out of memory). */
bool wfp__trace_step(wfp_invocation *inv);
bool wfp__trace_performed(wfp_invocation *inv);
/* The pending effect's resume value: none, {"error": msg}, or JSON text. */
void wfp__resume_none(wfp_invocation *inv);
/* The next step resumes with the integer v, typed ({"i64":v} as text). */
void wfp__resume_i64(wfp_invocation *inv, int64_t v);
/* Makes resume hold the resume value's text (a typed one formatted);
** WFP_OK or WFP_ENOMEM. */
int wfp__resume_text(wfp_invocation *inv);
void wfp__resume_error(wfp_invocation *inv, const char *fmt, ...) WFP__PRINTF(2, 3);
int wfp__resume_json(wfp_invocation *inv, const char *json, size_t n);
/* Marks req completed (the resume value is set) and lets the loop go on. */
int wfp__req_complete(wfp_effect_req *req);
/* Replaces b's content with p[0..n), NUL-terminated; the buffer only
** grows (b->oom on failure). */
void wfp__set_bytes(wfp__buf *b, const void *p, size_t n);
/* Adds a message to inv's own list. 0 or WFP_ENOMEM. */
int wfp__inv_msg_add(wfp_invocation *inv, const char *topic, size_t tn, const char *payload,
                     size_t pn);
/* Frees inv's messages. */
void wfp__inv_msgs_clear(wfp_invocation *inv);

/* ---- loop.c ---- */

typedef struct wfp__queue {
  wfp_invocation *head, *tail;
  size_t n;
} wfp__queue;

/* queue.c: the queues; the loop's list of invocations someone started */
void wfp__q_push(wfp__queue *q, wfp_invocation *inv);
wfp_invocation *wfp__q_pop(wfp__queue *q);
void wfp__q_remove(wfp__queue *q, wfp_invocation *inv);

/* A fan-out in flight: the rows of one db_query with each (effects.c). */
struct wfp__fanout {
  size_t n, ended;      /* rows, and rows that ended */
  wfp_invocation **rows; /* each row while it runs, NULL once it ended */
  char **results;        /* each row's return value as JSON, once done */
  struct msg_ent **msgs; /* each row's messages, once it ended */
  size_t *nmsgs;
  size_t trapped;        /* the first row (1-based) that trapped, or 0 */
  char *trap;            /* its message */
  bool json_result;      /* the function returns json: the output as is */
  bool oom;              /* a row, or keeping its result, ran out of memory */
};

/* The timers of sleep_ms (effects.c): a heap by due time, one uv timer. */
typedef struct wfp__timers {
  wfp_invocation **heap;
  size_t n, cap;
  void *uv_timer; /* uv_timer_t */
} wfp__timers;

/* db_query's lane (effects.c): one query on the connection at a time, off
** the loop's thread; with a runner (wfp_loop_set_db_runner), the job it is
** handed. */
struct wfp_db_job {
  wfp__queue wait;    /* invocations whose query waits its turn */
  bool busy;
  void *work;         /* uv_work_t */
  wfp_effect_req *req; /* the request of the query that runs */
  wfp__buf sql, params, rows, offs;
  uint64_t fuel, used;
  size_t nrows;
  bool want_offs;
  int rc;
  char err[512];
  /* the runner's view, set on the loop's thread before the job goes */
  wfp_db_runner runner;
  void *runner_ud;
  void *data;    /* the data of the query's invocation someone started */
  bool row;      /* the query is a row's */
  bool ran;      /* wfp_db_job_run ran */
  bool readonly; /* its statement writes nothing */
};
typedef struct wfp_db_job wfp__db_lane;

typedef struct wfp__actor {
  uint64_t handle;         /* 0: a free slot */
  wfp_invocation *owner;   /* the invocation that holds the instance */
  wfp__queue waiting;      /* the ones that wait for it, in start order */
} wfp__actor;

struct wfp_loop {
  void *uv; /* uv_loop_t *: its own, or borrowed */
  bool own_uv;
  wfp_env *env;
  wfp_effect_handlers h;
  wfp_message_sink sink;
  void *sink_ud;
  wfp_commit_fn commit;
  void *commit_ud;
  unsigned workers;     /* threads that run steps: 0 inline */
  unsigned concurrency; /* 0: none */
  wfp__queue ready;     /* the run queue */
  wfp__queue admit;     /* waiting for the concurrency cap */
  wfp__queue fuel;      /* waiting for reserved fuel */
  size_t alive;         /* invocations someone started, admitted, not ended */
  size_t members;       /* every invocation in the loop, rows included */
  wfp__queue tops;      /* invocations someone started (links tprev, tnext) */
  void *idle;           /* uv_idle_t: steps inline while the run queue has some */
  bool idle_on;
  /* the workers */
  pthread_t *threads;
  unsigned nthreads; /* threads it may start */
  unsigned started;  /* threads started (when steps waited for one) */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  wfp__queue jobs, finished; /* under mu */
  bool quit;                 /* under mu */
  unsigned busy;             /* steps given to workers and not yet back */
  void *async;               /* uv_async_t: a worker finished a step */
  bool async_ref;
  /* set by a worker when it gives back its last step, cleared when the loop
  ** takes them: the loop's own thread stops stepping inline to feed it */
  atomic_bool steps_back;
  /* requests */
  wfp_effect_req *free_reqs, *free_tail;
  wfp_effect_req **slabs;
  size_t nslabs;
  size_t nfree;
  /* effects.c */
  wfp__timers timers;
  wfp__db_lane db;
  /* actors: open addressing by handle */
  wfp__actor *actors;
  size_t nactors, actors_cap;
  int closing;
};

void wfp__tops_add(wfp_loop *l, wfp_invocation *inv);
void wfp__tops_remove(wfp_loop *l, wfp_invocation *inv);
/* queue.c: the actors. The slot of a handle (added when add), or NULL. */
wfp__actor *wfp__actor_slot(wfp_loop *l, uint64_t handle, bool add);
/* inv (with a "self") holds its instance: true; or waits for it (in its
** queue, where WFP__L_ACTOR): false, or false with *oom. */
bool wfp__actor_acquire(wfp_loop *l, wfp_invocation *inv, bool *oom);
/* inv lets its instance go (or stops waiting for it): the next owner, who
** waited, or NULL. */
wfp_invocation *wfp__actor_release(wfp_loop *l, wfp_invocation *inv);

/* Puts inv in the run queue (loop.c). */
void wfp__loop_ready(wfp_loop *l, wfp_invocation *inv);
/* The loop starts a row of a fan-out: parent's loop, no cap, no actor. */
int wfp__loop_start_row(wfp_loop *l, wfp_invocation *row);
/* The loop gives up on inv: a row is cancelled and freed (msg NULL), an
** invocation someone started ends with a trap of msg; where a thread or
** the hook has it, once it comes back. */
void wfp__loop_kill(wfp_loop *l, wfp_invocation *inv, const char *msg);
/* A request completed or failed: the loop goes on with its invocation. */
void wfp__loop_effect_done(wfp_loop *l, wfp_invocation *inv);
/* The host failed inv's effect (out of memory): it ends with rc. */
void wfp__loop_fail(wfp_loop *l, wfp_invocation *inv, int rc);
/* A request the loop hands out (NULL when out of memory), and gives back. */
wfp_effect_req *wfp__req_new(wfp_loop *l, wfp_invocation *inv);
void wfp__req_release(wfp_loop *l, wfp_effect_req *req);

/* ---- effects.c ---- */

/* The built-in handler of req's kind. */
int wfp__builtin(wfp_loop *l, wfp_effect_req *req);
/* wfp_invocation_perform without a loop: a built-in that finishes at once
** is performed (its message to the default sink): 1; 0 when the effect
** needs a loop (a sleep, a query); WFP_ENOMEM. */
int wfp__perform_now(wfp_invocation *inv);
/* The default sink. */
void wfp__default_sink(void *ud, wfp_invocation *inv, const char *topic, size_t tn,
                       const char *payload, size_t pn);
/* A row of inv's fan-out ended (done or trap): record it; the last one
** completes the parent's request. */
void wfp__fanout_row_ended(wfp_loop *l, wfp_invocation *row);
/* Cancels inv's fan-out: every row, recursively. */
void wfp__fanout_cancel(wfp_loop *l, wfp_invocation *inv);
/* Takes inv out of the timers / the db lane (a killed invocation). */
bool wfp__timers_remove(wfp_loop *l, wfp_invocation *inv);
bool wfp__db_lane_remove(wfp_loop *l, wfp_invocation *inv);
/* Sets up and tears down effects.c's part of a loop. 0 or WFP_ENOMEM/EIO. */
int wfp__effects_init(wfp_loop *l);
void wfp__effects_close(wfp_loop *l);

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
/* cJSON_ParseWithLength that tells text cJSON cannot read (WFP_EINVAL)
** from memory running out (WFP_ENOMEM). *out: the tree, or NULL. */
struct cJSON;
int wfp__cjson_parse(const char *text, size_t n, struct cJSON **out);
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
/* The same on connection db (opened with the SQLite library the host
** loads), with flags WFP_DB_PROTECT_*; *readonly tells whether the
** statement writes nothing. */
int wfp__db_query_on(struct sqlite3 *db, unsigned flags, const char *sql, size_t sql_len,
                     const char *params, size_t params_len, uint64_t fuel, uint64_t *used,
                     wfp__buf *rows, wfp__buf *offs, size_t *nrows, bool *readonly, char *err,
                     size_t errlen);
void wfp__env_close_db(wfp_env *e);
/* As wfp_env_open_db; create false opens only an existing file. */
int wfp__env_open_db(wfp_env *e, const char *path, bool create, char *err, size_t errlen);

#endif /* WFP_HOST_INT_H */
