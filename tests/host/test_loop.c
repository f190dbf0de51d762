/*
** test_loop.c: the loop on real compiled modules: handlers that answer now
** or later, requests completed twice or after their invocation went, the
** commit hook's phases and its suspension, the sink, one invocation at a
** time per resource instance, the concurrency cap, fan-out rows running at
** once and counting toward their parent's limits, sleeps that resume for
** the time left, time and memory limits, a borrowed uv loop, many
** invocations on several threads; and what a durable store needs: an
** invocation revived from its records, db_query on a runner's connection,
** instances at given handles. Usage: test_loop SO_DIR.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <pthread.h>
#include <sqlite3.h>
#include <uv.h>

#include "host_int.h"
#include "so_dir.h"

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static wfp_loop *new_loop(wfp_env *e, unsigned workers, unsigned cap) {
  wfp_loop_opts o = {sizeof o, workers, cap, NULL};
  wfp_loop *l = NULL;
  assert_int_equal(wfp_loop_new(&o, e, &l), 0);
  return l;
}

/* An invocation's end, as its done callback saw it. */
typedef struct end {
  int status;
  int calls;
  char text[4096];
} end;

static void on_end(wfp_invocation *inv, int status, void *data) {
  end *x = data;
  x->status = status;
  x->calls++;
  const char *t = status == WFP_DONE ? wfp_invocation_output(inv)
                  : status == WFP_TRAP ? wfp_invocation_trap_message(inv)
                                       : "";
  snprintf(x->text, sizeof x->text, "%s", t ? t : "");
}

static wfp_invocation *start(wfp_loop *l, wfp_module *m, const char *input, end *x) {
  wfp_invocation *inv = NULL;
  assert_int_equal(wfp_invocation_new(m, wfp_loop_env(l), input, strlen(input), &inv), 0);
  memset(x, 0, sizeof *x);
  x->status = 99;
  assert_int_equal(wfp_loop_start(l, inv, on_end, x), 0);
  return inv;
}

/* ---- handlers ---- */

typedef struct answer {
  uv_timer_t t;
  wfp_effect_req *req;
  int64_t v;
  int second; /* what a second completion returned */
} answer;

static void later_fire(uv_timer_t *t) {
  answer *a = t->data;
  assert_int_equal(wfp_effect_complete_i64(a->req, a->v), 0);
  a->second = wfp_effect_complete_i64(a->req, a->v);
  uv_close((uv_handle_t *)t, NULL);
}

typedef struct ctx_handler {
  int calls;
  answer pending[4];
  int npending;
  uv_loop_t *uv;
} ctx_handler;

/* ctx "n": answered later (a timer); "now": now; anything else: the
** built-in. */
static int ctx_get(void *ud, wfp_effect_req *req) {
  ctx_handler *h = ud;
  h->calls++;
  size_t n;
  const char *key = wfp_effect_key(req, &n);
  assert_int_equal(wfp_effect_kind(req), WFP_EFFECT_CTX_GET_I64);
  assert_non_null(wfp_effect_invocation(req));
  if (n == 1 && key[0] == 'n') {
    answer *a = &h->pending[h->npending++];
    a->req = req;
    a->v = 41;
    uv_timer_init(h->uv, &a->t);
    a->t.data = a;
    uv_timer_start(&a->t, later_fire, 10, 0);
    return 0;
  }
  return wfp_effect_builtin(req);
}

static void handlers_answer_now_or_later(void **state) {
  (void)state;
  wfp_module *m = load("simple.so");
  wfp_env *e = wfp_env_new();
  wfp_loop *l = new_loop(e, 1, 0);
  ctx_handler h;
  memset(&h, 0, sizeof h);
  h.uv = wfp_loop_uv(l);
  wfp_effect_handlers t;
  memset(&t, 0, sizeof t);
  t.version = WFP_EFFECT_HANDLERS_VERSION;
  t.size = sizeof t;
  t.ud = &h;
  t.fn[WFP_EFFECT_CTX_GET_I64] = ctx_get;
  assert_int_equal(wfp_loop_set_handlers(l, &t), 0);
  end x;
  wfp_invocation *inv = start(l, m, "{}", &x);
  wfp_loop_run(l, WFP_RUN_DEFAULT);
  assert_int_equal(x.status, WFP_DONE);
  assert_string_equal(x.text, "{\"result\":42}");
  assert_int_equal(h.calls, 1);
  /* completing twice: the second is refused */
  assert_int_equal(h.pending[0].second, WFP_EINVAL);
  wfp_invocation_free(inv);
  /* a table of an unknown size is refused; NULL restores the built-ins */
  t.size = 8;
  assert_int_equal(wfp_loop_set_handlers(l, &t), WFP_EINVAL);
  assert_int_equal(wfp_loop_set_handlers(l, NULL), 0);
  wfp_env_ctx_set(e, "n", 1);
  inv = start(l, m, "{}", &x);
  wfp_loop_run(l, WFP_RUN_DEFAULT);
  assert_string_equal(x.text, "{\"result\":2}");
  wfp_invocation_free(inv);
  wfp_loop_free(l);
  wfp_env_free(e);
  wfp_module_free(m);
}

static int fail_it(void *ud, wfp_effect_req *req) {
  int *mode = ud;
  if (*mode == 0) {
    /* not JSON, then too deep: refused; then a failure: a trap */
    assert_int_equal(wfp_effect_complete(req, "{\"i64\":", 7), WFP_EINVAL);
    char deep[600];
    memset(deep, '[', 300);
    memset(deep + 300, ']', 300);
    assert_int_equal(wfp_effect_complete(req, deep, 600), WFP_EINVAL);
    assert_int_equal(wfp_effect_fail(req, "the store is down"), 0);
    assert_int_equal(wfp_effect_fail(req, "twice"), WFP_EINVAL);
    return 0;
  }
  return WFP_EIO; /* cannot, and leaves it */
}

static void handlers_fail_and_err(void **state) {
  (void)state;
  wfp_module *m = load("simple.so");
  wfp_env *e = wfp_env_new();
  wfp_loop *l = new_loop(e, 1, 0);
  int mode = 0;
  wfp_effect_handlers t;
  memset(&t, 0, sizeof t);
  t.version = WFP_EFFECT_HANDLERS_VERSION;
  t.size = sizeof t;
  t.ud = &mode;
  t.fn[WFP_EFFECT_CTX_GET_I64] = fail_it;
  wfp_loop_set_handlers(l, &t);
  end x;
  wfp_invocation *inv = start(l, m, "{}", &x);
  wfp_loop_run(l, WFP_RUN_DEFAULT);
  assert_int_equal(x.status, WFP_TRAP);
  assert_string_equal(x.text, "the store is down");
  wfp_invocation_free(inv);
  mode = 1;
  inv = start(l, m, "{}", &x);
  wfp_loop_run(l, WFP_RUN_DEFAULT);
  assert_int_equal(x.status, WFP_EIO);
  assert_int_equal(x.calls, 1);
  wfp_invocation_free(inv);
  wfp_loop_free(l);
  wfp_env_free(e);
  wfp_module_free(m);
}

/* ---- the commit hook ---- */

typedef struct hook {
  char log[4096];
  int suspend_at; /* suspend at this STEP record (1-based), 0: never */
  int steps;
  bool later;
  uv_loop_t *uv;
  uv_timer_t t;
  wfp_invocation *held;
  wfp_commit_cb cb;
} hook;

static void add(char *log, size_t n, const char *fmt, ...) {
  size_t k = strlen(log);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(log + k, n - k, fmt, ap);
  va_end(ap);
}

static void hook_fire(uv_timer_t *t) {
  hook *h = t->data;
  wfp_invocation *inv = h->held;
  h->held = NULL;
  add(h->log, sizeof h->log, "ok;");
  h->cb(inv, 0);
}

static void on_commit(void *ud, const wfp_commit_record *r, wfp_commit_cb cb) {
  hook *h = ud;
  assert_true(r->size >= sizeof *r);
  if (r->phase == WFP_COMMIT_STEP) {
    add(h->log, sizeof h->log, "step %d %.*s;", r->effect, (int)r->key_len, r->key);
    if (++h->steps == h->suspend_at) {
      cb(r->inv, WFP_PENDING);
      return;
    }
  } else if (r->phase == WFP_COMMIT_EFFECT) {
    add(h->log, sizeof h->log, "effect %d %s;", r->effect,
        r->has_resume ? r->resume : "none");
  } else {
    add(h->log, sizeof h->log, "end %d %s;", r->status, r->text);
  }
  if (h->later) {
    h->held = r->inv;
    h->cb = cb;
    uv_timer_start(&h->t, hook_fire, 1, 0);
  } else {
    cb(r->inv, 0);
  }
}

static char sink_log[4096];
static void log_sink(void *ud, wfp_invocation *inv, const char *topic, size_t tn,
                     const char *payload, size_t pn) {
  (void)ud;
  (void)inv;
  add(sink_log, sizeof sink_log, "sink %.*s %.*s;", (int)tn, topic, (int)pn, payload);
}

static void hook_sink(void *ud, wfp_invocation *inv, const char *topic, size_t tn,
                      const char *payload, size_t pn) {
  hook *h = ud;
  (void)inv;
  add(h->log, sizeof h->log, "sink %.*s %.*s;", (int)tn, topic, (int)pn, payload);
}

static void commit_hook_phases(void **state) {
  (void)state;
  wfp_module *m = load("simple.so");
  for (int later = 0; later < 2; later++) {
    wfp_env *e = wfp_env_new();
    wfp_env_ctx_set(e, "n", 41);
    wfp_loop *l = new_loop(e, later ? 2 : 1, 0);
    hook h;
    memset(&h, 0, sizeof h);
    h.later = later;
    uv_timer_init(wfp_loop_uv(l), &h.t);
    h.t.data = &h;
    wfp_loop_set_commit(l, on_commit, &h);
    /* the sink writes into the hook's log: a message shows after its
    ** effect's record and the hook's answer */
    wfp_loop_set_sink(l, hook_sink, &h);
    end x;
    wfp_invocation *inv = start(l, m, "{}", &x);
    wfp_loop_run(l, WFP_RUN_DEFAULT);
    assert_int_equal(x.status, WFP_DONE);
    const char *want = later ? "step 0 n;ok;effect 0 {\"i64\":41};ok;step 2 results;ok;"
                               "effect 2 none;ok;sink results 42;end 0 {\"result\":42};ok;"
                             : "step 0 n;effect 0 {\"i64\":41};step 2 results;effect 2 none;"
                               "sink results 42;end 0 {\"result\":42};";
    assert_string_equal(h.log, want);
    /* a user sink: the default collected nothing */
    assert_int_equal(wfp_invocation_message_count(inv), 0);
    wfp_invocation_free(inv);
    uv_close((uv_handle_t *)&h.t, NULL);
    wfp_loop_free(l);
    wfp_env_free(e);
  }
  wfp_module_free(m);
}

/* STEP answered WFP_PENDING: the invocation leaves the loop suspended,
** may be checkpointed, restored elsewhere, or started again. */
static void commit_hook_suspends(void **state) {
  (void)state;
  wfp_module *m = load("simple.so");
  wfp_env *e = wfp_env_new();
  wfp_env_ctx_set(e, "n", 1);
  wfp_loop *l = new_loop(e, 1, 0);
  hook h;
  memset(&h, 0, sizeof h);
  h.suspend_at = 2;
  wfp_loop_set_commit(l, on_commit, &h);
  end x;
  wfp_invocation *inv = start(l, m, "{}", &x);
  wfp_loop_run(l, WFP_RUN_DEFAULT);
  assert_int_equal(x.status, WFP_PENDING);
  assert_int_equal(wfp_invocation_steps(inv), 2);
  assert_string_equal(wfp_invocation_pending_json(inv),
                      "{\"effect\":\"msg-send\",\"topic\":\"results\",\"payload\":2}");
  char *ck;
  size_t len;
  assert_int_equal(wfp_invocation_checkpoint(inv, &ck, &len), 0);
  /* started again: it performs the effect it stopped before */
  wfp_loop_set_commit(l, NULL, NULL);
  assert_int_equal(wfp_loop_start(l, inv, on_end, &x), 0);
  wfp_loop_run(l, WFP_RUN_DEFAULT);
  assert_int_equal(x.status, WFP_DONE);
  assert_string_equal(x.text, "{\"result\":2}");
  assert_int_equal(wfp_invocation_message_count(inv), 1);
  wfp_invocation_free(inv);
  /* restored in another environment and loop: the same end */
  wfp_env *e2 = wfp_env_new();
  wfp_loop *l2 = new_loop(e2, 2, 0);
  assert_int_equal(wfp_invocation_restore(m, e2, ck, len, &inv, NULL), 0);
  assert_int_equal(wfp_loop_start(l2, inv, on_end, &x), 0);
  wfp_loop_run(l2, WFP_RUN_DEFAULT);
  assert_int_equal(x.status, WFP_DONE);
  assert_string_equal(x.text, "{\"result\":2}");
  assert_int_equal(wfp_env_message_count(e2), 1);
  assert_string_equal(wfp_env_message_payload(e2, 0), "2");
  wfp_invocation_free(inv);
  free(ck);
  wfp_loop_free(l2);
  wfp_env_free(e2);
  wfp_loop_free(l);
  wfp_env_free(e);
  wfp_module_free(m);
}

/* ---- actors, the cap ---- */

static void actors_never_interleave(void **state) {
  (void)state;
  wfp_module *m = load("runtime.so");
  for (unsigned w = 1; w <= 3; w += 2) {
    wfp_env *e = wfp_env_new();
    uint64_t h;
    assert_int_equal(wfp_env_instance_new(e, m, "Tally", &h), 0);
    assert_int_equal(wfp_env_instance_set(e, h, "n", "100"), 0);
    wfp_loop *l = new_loop(e, w, 0);
    sink_log[0] = 0;
    wfp_loop_set_sink(l, log_sink, NULL);
    end x[8];
    wfp_invocation *inv[8];
    for (int i = 0; i < 8; i++) {
      char in[128];
      snprintf(in, sizeof in, "{\"fn\":\"slowAdd\",\"args\":{\"who\":%d,\"ms\":%d},\"self\":1}",
               i, 8 - i);
      inv[i] = start(l, m, in, &x[i]);
    }
    wfp_loop_run(l, WFP_RUN_DEFAULT);
    /* in start order, each alone: enter i, leave i */
    char want[512] = "";
    for (int i = 0; i < 8; i++) {
      add(want, sizeof want, "sink enter %d;sink leave %d;", i, i);
      char out[64];
      snprintf(out, sizeof out, "{\"result\":%d}", 101 + i);
      assert_int_equal(x[i].status, WFP_DONE);
      assert_string_equal(x[i].text, out);
      wfp_invocation_free(inv[i]);
    }
    assert_string_equal(sink_log, want);
    assert_string_equal(wfp_env_instance_get(e, h, "n"), "108");
    wfp_loop_free(l);
    wfp_env_free(e);
  }
  wfp_module_free(m);
}

typedef struct counting {
  int inside, most;
} counting;

/* sleep_ms through the built-in, counting the invocations between their
** first sleep and their end */
static int count_sleep(void *ud, wfp_effect_req *req) {
  counting *c = ud;
  if (++c->inside > c->most)
    c->most = c->inside;
  return wfp_effect_builtin(req);
}

static void on_counted_end(wfp_invocation *inv, int status, void *data) {
  counting *c = *(counting **)data;
  (void)status;
  c->inside--;
  wfp_invocation_free(inv);
}

static void concurrency_is_capped(void **state) {
  (void)state;
  wfp_module *m = load("runtime.so");
  wfp_env *e = wfp_env_new();
  wfp_loop *l = new_loop(e, 2, 3);
  counting c = {0, 0};
  counting *pc = &c;
  wfp_effect_handlers t;
  memset(&t, 0, sizeof t);
  t.version = WFP_EFFECT_HANDLERS_VERSION;
  t.size = sizeof t;
  t.ud = &c;
  t.fn[WFP_EFFECT_SLEEP_MS] = count_sleep;
  wfp_loop_set_handlers(l, &t);
  for (int i = 0; i < 10; i++) {
    wfp_invocation *inv;
    assert_int_equal(wfp_invocation_new(m, e, "{\"fn\":\"nap\",\"args\":[20]}", 24, &inv), 0);
    assert_int_equal(wfp_loop_start(l, inv, on_counted_end, &pc), 0);
  }
  assert_int_equal(wfp_loop_alive(l), 10);
  assert_int_equal(wfp_loop_waiting(l), 7);
  wfp_loop_run(l, WFP_RUN_DEFAULT);
  assert_int_equal(c.inside, 0);
  assert_int_equal(c.most, 3);
  assert_int_equal(wfp_loop_alive(l), 0);
  wfp_loop_free(l);
  wfp_env_free(e);
  wfp_module_free(m);
}

/* ---- fan-outs ---- */

static void fanout_rows_run_at_once(void **state) {
  (void)state;
  wfp_module *m = load("runtime.so");
  wfp_env *e = wfp_env_new();
  wfp_loop *l = new_loop(e, 2, 0);
  end x;
  int64_t t0 = now_ms();
  wfp_invocation *inv = start(l, m, "{\"fn\":\"fanSleep\",\"args\":[40,200]}", &x);
  wfp_loop_run(l, WFP_RUN_DEFAULT);
  int64_t took = now_ms() - t0;
  assert_int_equal(x.status, WFP_DONE);
  char want[256] = "[";
  for (int i = 1; i <= 40; i++)
    add(want, sizeof want, i < 40 ? "%d," : "%d]", i);
  assert_string_equal(x.text, want);
  /* 40 sleeps of 0.2 s in turn would take 8 s */
  if (took > 4000)
    fail_msg("40 rows sleeping 200 ms took %lld ms", (long long)took);
  wfp_invocation_free(inv);
  wfp_loop_free(l);
  wfp_env_free(e);
  wfp_module_free(m);
}

/* The rows' steps and fuel count toward the parent's limits. */
static void fanout_rows_count_toward_limits(void **state) {
  (void)state;
  wfp_module *m = load("runtime.so");
  wfp_env *e = wfp_env_new();
  const char *in = "{\"fn\":\"fanWork\",\"args\":[10,100000]}";
  /* unlimited: what it uses */
  wfp_invocation *inv;
  assert_int_equal(wfp_invocation_new(m, e, in, strlen(in), &inv), 0);
  assert_int_equal(wfp_invocation_set_fuel(inv, 0, 10000), 0);
  assert_int_equal(wfp_invocation_run(inv, 0), WFP_DONE);
  uint64_t fuel = wfp_invocation_fuel_used(inv);
  assert_true(fuel > 10 * 100000);
  assert_int_equal(wfp_invocation_steps(inv), 2); /* its own */
  assert_true(inv->row_steps >= 10 * 10);
  wfp_invocation_free(inv);
  for (unsigned w = 1; w <= 2; w++) {
    wfp_loop *l = new_loop(e, w, 0);
    end x;
    /* fuel: half of it is spent by the rows */
    assert_int_equal(wfp_invocation_new(m, e, in, strlen(in), &inv), 0);
    wfp_invocation_set_fuel(inv, fuel / 2, 10000);
    memset(&x, 0, sizeof x);
    assert_int_equal(wfp_loop_start(l, inv, on_end, &x), 0);
    wfp_loop_run(l, WFP_RUN_DEFAULT);
    assert_int_equal(x.status, WFP_TRAP);
    char msg[96];
    snprintf(msg, sizeof msg, "fuel limit reached (%llu units)",
             (unsigned long long)(fuel / 2));
    assert_string_equal(x.text, msg);
    assert_true(wfp_invocation_fuel_used(inv) <= fuel / 2);
    wfp_invocation_free(inv);
    /* steps */
    assert_int_equal(wfp_invocation_new(m, e, in, strlen(in), &inv), 0);
    wfp_invocation_set_fuel(inv, 0, 10000);
    wfp_invocation_set_max_steps(inv, 30);
    memset(&x, 0, sizeof x);
    assert_int_equal(wfp_loop_start(l, inv, on_end, &x), 0);
    wfp_loop_run(l, WFP_RUN_DEFAULT);
    assert_int_equal(x.status, WFP_TRAP);
    assert_string_equal(x.text, "step limit reached (30 steps)");
    wfp_invocation_free(inv);
    wfp_loop_free(l);
  }
  wfp_env_free(e);
  wfp_module_free(m);
}

/* A row that traps traps the parent with the first trapping row's
** message, in row order. */
static void fanout_row_trap(void **state) {
  (void)state;
  wfp_module *m = load("db.so");
  wfp_env *e = wfp_env_new();
  wfp_loop *l = new_loop(e, 2, 0);
  end x;
  wfp_invocation *inv = start(l, m, "{\"fn\":\"rowTrap\"}", &x);
  wfp_loop_run(l, WFP_RUN_DEFAULT);
  assert_int_equal(x.status, WFP_TRAP);
  assert_string_equal(x.text, "db_query each, row 1: too old");
  wfp_invocation_free(inv);
  wfp_loop_free(l);
  wfp_env_free(e);
  wfp_module_free(m);
}

/* Rows whose requests a handler holds are cancelled with their fan-out:
** completing them later says so, and touches no freed memory. */
typedef struct holder {
  wfp_effect_req *reqs[64];
  int n;
} holder;

static int hold_sleep(void *ud, wfp_effect_req *req) {
  holder *h = ud;
  h->reqs[h->n++] = req;
  return 0;
}

static void cancelled_requests(void **state) {
  (void)state;
  wfp_module *m = load("runtime.so");
  wfp_env *e = wfp_env_new();
  wfp_loop *l = new_loop(e, 1, 0);
  holder h;
  memset(&h, 0, sizeof h);
  wfp_effect_handlers t;
  memset(&t, 0, sizeof t);
  t.version = WFP_EFFECT_HANDLERS_VERSION;
  t.size = sizeof t;
  t.ud = &h;
  t.fn[WFP_EFFECT_SLEEP_MS] = hold_sleep;
  wfp_loop_set_handlers(l, &t);
  end x;
  /* the rows' first steps spend the parent's step limit; those that
  ** reached their sleep hold a request */
  const char *in = "{\"fn\":\"fanSleep\",\"args\":[6,1000]}";
  wfp_invocation *inv;
  assert_int_equal(wfp_invocation_new(m, e, in, strlen(in), &inv), 0);
  wfp_invocation_set_max_steps(inv, 4);
  memset(&x, 0, sizeof x);
  assert_int_equal(wfp_loop_start(l, inv, on_end, &x), 0);
  wfp_loop_run(l, WFP_RUN_DEFAULT);
  assert_int_equal(x.status, WFP_TRAP);
  assert_string_equal(x.text, "step limit reached (4 steps)");
  assert_int_equal(h.n, 3);
  wfp_invocation_free(inv);
  for (int i = 0; i < h.n; i++) {
    assert_null(wfp_effect_invocation(h.reqs[i]));
    assert_int_equal(wfp_effect_complete(h.reqs[i], NULL, 0), WFP_ECANCELED);
    assert_int_equal(wfp_effect_complete(h.reqs[i], NULL, 0), WFP_EINVAL);
  }
  wfp_loop_free(l);
  wfp_env_free(e);
  wfp_module_free(m);
}

/* ---- sleeps, time, memory ---- */

/* A restored sleep wakes at the time fixed when its step suspended. */
static void sleep_resumes_for_time_left(void **state) {
  (void)state;
  wfp_module *m = load("runtime.so");
  wfp_env *e = wfp_env_new();
  const char *in = "{\"fn\":\"nap\",\"args\":[60000]}";
  wfp_invocation *inv;
  assert_int_equal(wfp_invocation_new(m, e, in, strlen(in), &inv), 0);
  int64_t before = wfp__now_ms();
  assert_int_equal(wfp_invocation_step(inv), WFP_PENDING);
  assert_true(inv->wake_at >= before + 60000 && inv->wake_at <= wfp__now_ms() + 60000);
  /* as if most of the minute had passed: 300 ms are left */
  inv->wake_at = wfp__now_ms() + 300;
  char *ck;
  size_t len;
  assert_int_equal(wfp_invocation_checkpoint(inv, &ck, &len), 0);
  wfp_invocation_free(inv);
  assert_int_equal(wfp_invocation_restore(m, e, ck, len, &inv, NULL), 0);
  wfp_loop *l = new_loop(e, 1, 0);
  end x;
  memset(&x, 0, sizeof x);
  int64_t t0 = now_ms();
  assert_int_equal(wfp_loop_start(l, inv, on_end, &x), 0);
  wfp_loop_run(l, WFP_RUN_DEFAULT);
  int64_t took = now_ms() - t0;
  assert_int_equal(x.status, WFP_DONE);
  assert_string_equal(x.text, "{\"result\":60000}");
  if (took < 200 || took > 30000)
    fail_msg("a sleep with 300 ms left took %lld ms", (long long)took);
  wfp_invocation_free(inv);
  free(ck);
  wfp_loop_free(l);
  wfp_env_free(e);
  wfp_module_free(m);
}

static void time_and_memory_limits(void **state) {
  (void)state;
  wfp_module *m = load("runtime.so");
  wfp_env *e = wfp_env_new();
  wfp_loop *l = new_loop(e, 2, 0);
  end x[3];
  wfp_invocation *inv[3];
  const char *in[3] = {"{\"fn\":\"nap\",\"args\":[60000]}", "{\"fn\":\"forever\"}",
                       "{\"fn\":\"grow\",\"args\":[30]}"};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(wfp_invocation_new(m, e, in[i], strlen(in[i]), &inv[i]), 0);
    wfp_invocation_set_time_limit(inv[i], 150);
    wfp_invocation_set_memory_limit(inv[i], 1u << 20);
    memset(&x[i], 0, sizeof x[i]);
    assert_int_equal(wfp_loop_start(l, inv[i], on_end, &x[i]), 0);
  }
  int64_t t0 = now_ms();
  wfp_loop_run(l, WFP_RUN_DEFAULT);
  assert_true(now_ms() - t0 < 30000);
  assert_string_equal(x[0].text, "time limit reached (150 ms)");
  assert_string_equal(x[1].text, "time limit reached (150 ms)");
  assert_string_equal(x[2].text, "memory limit reached (1048576 bytes)");
  for (int i = 0; i < 3; i++) {
    assert_int_equal(x[i].status, WFP_TRAP);
    wfp_invocation_free(inv[i]);
  }
  wfp_loop_free(l);
  wfp_env_free(e);
  wfp_module_free(m);
}

/* ---- the loop itself ---- */

static void free_cancels_and_borrows(void **state) {
  (void)state;
  wfp_module *m = load("runtime.so");
  wfp_env *e = wfp_env_new();
  uv_loop_t uv;
  assert_int_equal(uv_loop_init(&uv), 0);
  wfp_loop_opts o = {sizeof o, 2, 0, &uv};
  wfp_loop *l = NULL;
  assert_int_equal(wfp_loop_new(&o, e, &l), 0);
  assert_ptr_equal(wfp_loop_uv(l), &uv);
  end x[2];
  wfp_invocation *a = start(l, m, "{\"fn\":\"nap\",\"args\":[60000]}", &x[0]);
  wfp_invocation *b = start(l, m, "{\"fn\":\"fanSleep\",\"args\":[5,60000]}", &x[1]);
  for (int k = 0; k < 20; k++)
    wfp_loop_run(l, WFP_RUN_NOWAIT);
  assert_int_equal(wfp_loop_alive(l), 2);
  /* a second start, or one on another environment, is refused */
  assert_int_equal(wfp_loop_start(l, a, on_end, &x[0]), WFP_EINVAL);
  wfp_loop_free(l);
  assert_int_equal(x[0].status, WFP_ECANCELED);
  assert_int_equal(x[1].status, WFP_ECANCELED);
  wfp_invocation_free(a);
  wfp_invocation_free(b);
  /* the borrowed loop is left without the wfp loop's handles */
  uv_run(&uv, UV_RUN_NOWAIT);
  assert_int_equal(uv_loop_close(&uv), 0);
  wfp_env_free(e);
  wfp_module_free(m);
}

/* Many invocations on four threads: sleeps, fan-outs, compute that yields
** every few hundred units, one shared context; every result as on one
** thread. (The ThreadSanitizer build runs this test.) */
static void many_on_threads(void **state) {
  (void)state;
  wfp_module *m = load("runtime.so");
  wfp_module *s = load("simple.so");
  wfp_env *e = wfp_env_new();
  wfp_env_ctx_set(e, "n", 9);
  wfp_loop *l = new_loop(e, 4, 0);
  enum { N = 120 };
  static end x[N];
  static wfp_invocation *inv[N];
  static const char *const kinds[] = {
      "{\"fn\":\"work\",\"args\":[20000]}", "{\"fn\":\"fanWork\",\"args\":[4,3000]}",
      "{\"fn\":\"nap\",\"args\":[3]}", "{\"fn\":\"fanSleep\",\"args\":[3,2]}", NULL};
  for (int i = 0; i < N; i++) {
    const char *in = kinds[i % 5];
    wfp_invocation *v;
    assert_int_equal(wfp_invocation_new(in ? m : s, e, in ? in : "{}", in ? strlen(in) : 2,
                                        &v), 0);
    wfp_invocation_set_fuel(v, 0, 300);
    memset(&x[i], 0, sizeof x[i]);
    assert_int_equal(wfp_loop_start(l, v, on_end, &x[i]), 0);
    inv[i] = v;
  }
  wfp_loop_run(l, WFP_RUN_DEFAULT);
  for (int i = 0; i < N; i++) {
    assert_int_equal(x[i].status, WFP_DONE);
    assert_string_equal(x[i].text, x[i % 5].text);
    wfp_invocation_free(inv[i]);
  }
  assert_string_equal(x[4].text, "{\"result\":10}");
  assert_string_equal(x[3].text, "[1,2,3]");
  assert_int_equal(wfp_env_message_count(e), N / 5);
  wfp_loop_free(l);
  wfp_env_free(e);
  wfp_module_free(s);
  wfp_module_free(m);
}


/* ---- what a durable store needs: revive, a db runner, instances ---- */

/* A record as a store would keep it (the last one of an invocation). */
typedef struct kept {
  char input[256];
  uint8_t state[8192];
  size_t state_len;
  int effect;
  char key[64], json[256];
  size_t key_len, json_len;
  int64_t i64, wake_at;
  int has_resume;
  char resume[256];
  size_t resume_len;
  uint64_t steps, fuel;
} kept;

typedef struct keeper {
  kept all[16];
  int n;
  const char *input;
} keeper;

static void keep_records(void *ud, const wfp_commit_record *r, wfp_commit_cb cb) {
  keeper *k = ud;
  if (r->phase != WFP_COMMIT_END) {
    kept *x = &k->all[k->n++];
    memset(x, 0, sizeof *x);
    snprintf(x->input, sizeof x->input, "%s", k->input);
    assert_true(r->state_len <= sizeof x->state);
    memcpy(x->state, r->state, r->state_len);
    x->state_len = r->state_len;
    x->effect = r->phase == WFP_COMMIT_STEP ? r->effect : -1;
    memcpy(x->key, r->key, r->key_len);
    x->key_len = r->key_len;
    memcpy(x->json, r->json, r->json_len);
    x->json_len = r->json_len;
    x->i64 = r->i64;
    x->wake_at = r->wake_at;
    x->has_resume = r->phase == WFP_COMMIT_EFFECT && r->has_resume;
    if (x->has_resume) {
      memcpy(x->resume, r->resume, r->resume_len);
      x->resume_len = r->resume_len;
    }
    x->steps = r->steps;
    x->fuel = r->fuel;
  }
  cb(r->inv, 0);
}

static wfp_saved_invocation saved_of(const kept *x) {
  wfp_saved_invocation s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  s.input = x->input;
  s.input_len = strlen(x->input);
  s.state = x->state;
  s.state_len = x->state_len;
  s.effect = x->effect;
  s.key = x->key;
  s.key_len = x->key_len;
  s.json = x->json;
  s.json_len = x->json_len;
  s.i64 = x->i64;
  s.wake_at = x->wake_at;
  s.has_resume = x->has_resume;
  s.resume = x->resume;
  s.resume_len = x->resume_len;
  s.steps = x->steps;
  s.fuel = x->fuel;
  return s;
}

/* Every record of an invocation, revived in a fresh loop, runs on to the
** same end: from a STEP record it performs the effect first, from an
** EFFECT record it resumes with the value; a sleep keeps its wake time. */
static void revive_from_each_record(void **state) {
  (void)state;
  wfp_module *m = load("simple.so");
  wfp_module *rt = load("runtime.so");
  static const struct {
    int which;
    const char *input, *out;
    int records;
  } cases[] = {{0, "{}", "{\"result\":42}", 4},
               {1, "{\"fn\":\"nap\",\"args\":[30]}", "{\"result\":30}", 2}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    wfp_module *mod = cases[c].which ? rt : m;
    static keeper k;
    memset(&k, 0, sizeof k);
    k.input = cases[c].input;
    wfp_env *e = wfp_env_new();
    wfp_env_ctx_set(e, "n", 41);
    wfp_loop *l = new_loop(e, 1, 0);
    wfp_loop_set_commit(l, keep_records, &k);
    end x;
    wfp_invocation *inv = start(l, mod, cases[c].input, &x);
    wfp_loop_run(l, WFP_RUN_DEFAULT);
    assert_int_equal(x.status, WFP_DONE);
    assert_string_equal(x.text, cases[c].out);
    assert_int_equal(k.n, cases[c].records);
    wfp_invocation_free(inv);
    wfp_loop_free(l);
    for (int i = 0; i < k.n; i++) {
      wfp_saved_invocation s = saved_of(&k.all[i]);
      if (s.effect == WFP_EFFECT_SLEEP_MS) {
        /* its wake time is kept: one in the past wakes at once */
        assert_true(s.wake_at > 0);
        s.wake_at -= 60000;
      }
      wfp_loop *l2 = new_loop(e, 2, 0);
      wfp_invocation *v = NULL;
      wfp_host_diag hd;
      assert_int_equal(wfp_invocation_revive(mod, e, &s, &v, &hd), 0);
      assert_int_equal(wfp_invocation_steps(v), k.all[i].steps);
      int64_t t0 = now_ms();
      assert_int_equal(wfp_loop_start(l2, v, on_end, &x), 0);
      wfp_loop_run(l2, WFP_RUN_DEFAULT);
      assert_int_equal(x.status, WFP_DONE);
      assert_string_equal(x.text, cases[c].out);
      if (s.effect == WFP_EFFECT_SLEEP_MS)
        assert_true(now_ms() - t0 < 30000); /* it did not sleep 60 s more */
      wfp_invocation_free(v);
      wfp_loop_free(l2);
    }
    /* nothing a store holds is trusted */
    wfp_saved_invocation s = saved_of(&k.all[k.n - 1]);
    uint8_t bad[8192];
    memcpy(bad, s.state, s.state_len);
    bad[s.state_len - 1] ^= 1;
    s.state = bad;
    wfp_invocation *v = NULL;
    wfp_host_diag hd;
    assert_int_equal(wfp_invocation_revive(mod, e, &s, &v, &hd), WFP_ECORRUPT);
    assert_string_equal(hd.d.path, "$.state");
    assert_non_null(strstr(hd.d.msg, "invalid saved invocation: "));
    s = saved_of(&k.all[k.n - 1]);
    s.has_resume = 1;
    s.effect = -1;
    s.resume = "{\"i64\":";
    s.resume_len = strlen(s.resume);
    assert_int_equal(wfp_invocation_revive(mod, e, &s, &v, &hd), WFP_ECORRUPT);
    assert_string_equal(hd.d.path, "resume");
    s = saved_of(&k.all[0]);
    s.input = "{\"fn\":\"nosuch\"}";
    s.input_len = strlen(s.input);
    assert_int_equal(wfp_invocation_revive(mod, e, &s, &v, &hd), WFP_ECORRUPT);
    s = saved_of(&k.all[0]);
    s.effect = WFP_EFFECT_COUNT;
    assert_int_equal(wfp_invocation_revive(mod, e, &s, &v, &hd), WFP_ECORRUPT);
    s.size = 8;
    assert_int_equal(wfp_invocation_revive(mod, e, &s, &v, &hd), WFP_EINVAL);
    /* no state: it starts from its beginning */
    s = saved_of(&k.all[0]);
    s.state_len = 0;
    s.steps = 0;
    assert_int_equal(wfp_invocation_revive(mod, e, &s, &v, NULL), 0);
    assert_int_equal(wfp_invocation_run(v, 0), WFP_DONE);
    assert_string_equal(wfp_invocation_output(v), cases[c].out);
    wfp_invocation_free(v);
    wfp_env_free(e);
  }
  wfp_module_free(rt);
  wfp_module_free(m);
}

/* A runner that answers on a thread of its own, on its own connection. */
typedef struct runner {
  sqlite3 *db;
  pthread_t t;
  wfp_db_job *job;
  int calls, rows, readonly;
  void *data;
  int has_each;
} runner;

static void *runner_thread(void *arg) {
  runner *r = arg;
  wfp_db_job_run(r->job, r->db, WFP_DB_PROTECT_STORE);
  assert_int_equal(wfp_db_job_run(r->job, r->db, 0), WFP_EINVAL); /* once */
  return NULL;
}

static void run_job(void *ud, wfp_db_job *job) {
  runner *r = ud;
  r->calls++;
  r->job = job;
  r->data = wfp_db_job_data(job);
  r->rows += wfp_db_job_is_row(job);
  r->has_each |= wfp_db_job_has_each(job);
  pthread_create(&r->t, NULL, runner_thread, r);
  pthread_join(r->t, NULL);
  r->readonly += wfp_db_job_readonly(job);
}

static void db_runner_runs_queries(void **state) {
  (void)state;
  wfp_module *m = load("db.so");
  wfp_env *e = wfp_env_new();
  wfp_env_ctx_set(e, "min", 30);
  runner r;
  memset(&r, 0, sizeof r);
  assert_int_equal(sqlite3_open(":memory:", &r.db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(r.db, "create table wfp_secret(x); insert into wfp_secret "
                                      "values (1)", NULL, NULL, NULL), SQLITE_OK);
  wfp_loop *l = new_loop(e, 2, 0);
  wfp_loop_set_db_runner(l, run_job, &r);
  end x;
  wfp_invocation *inv = start(l, m, "{\"fn\":\"main\"}", &x);
  wfp_loop_run(l, WFP_RUN_DEFAULT);
  assert_int_equal(x.status, WFP_DONE);
  assert_non_null(strstr(x.text, "\"age\""));
  assert_ptr_equal(r.data, &x); /* the data of wfp_loop_start */
  /* the queries ran on the runner's connection, not the environment's */
  assert_null(e->db);
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(r.db, "select count(*) from users", -1, &st, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_true(sqlite3_column_int(st, 0) > 0);
  sqlite3_finalize(st);
  assert_true(r.readonly >= 1 && r.readonly < r.calls); /* the select; not the writes */
  wfp_invocation_free(inv);
  /* a fan-out: its rows' queries are rows' */
  int calls = r.calls;
  inv = start(l, m, "{\"fn\":\"nested\"}", &x);
  wfp_loop_run(l, WFP_RUN_DEFAULT);
  assert_int_equal(x.status, WFP_DONE);
  assert_true(r.has_each);
  assert_true(r.rows > 0 && r.calls - calls > r.rows);
  wfp_invocation_free(inv);
  wfp_loop_free(l);
  /* the store's tables are out of reach */
  static const char *const denied[] = {
      "select * from wfp_secret", "insert into WFP_secret values (2)",
      "create table wfp_mine(x)", "create index wfp_ix on users(age)",
      "create trigger t after insert on wfp_secret begin select 1; end",
      "select * from v", "insert into users(name) values ('x')", NULL};
  /* a view and a trigger of the program's that reach the store's table:
  ** refused when used */
  assert_int_equal(sqlite3_exec(r.db, "create view v as select * from wfp_secret; create "
                                      "trigger t2 after insert on users begin insert into "
                                      "wfp_secret values (9); end", NULL, NULL, NULL),
                   SQLITE_OK);
  for (int i = 0; denied[i]; i++) {
    wfp__buf rows;
    wfp__buf_init(&rows);
    uint64_t used;
    size_t n;
    bool ro;
    char err[256];
    int rc = wfp__db_query_on(r.db, WFP_DB_PROTECT_STORE, denied[i], strlen(denied[i]), NULL,
                              0, 1000, &used, &rows, NULL, &n, &ro, err, sizeof err);
    if (rc != WFP_EINVAL)
      fail_msg("%s: %d (not refused)", denied[i], rc);
    assert_non_null(strstr(err, "belongs to the service's store"));
    /* without the flag the same query is a program's own */
    rc = wfp__db_query_on(r.db, 0, denied[i], strlen(denied[i]), NULL, 0, 1000, &used, &rows,
                          NULL, &n, &ro, err, sizeof err);
    if (rc)
      fail_msg("%s: %s", denied[i], err);
    wfp__buf_free(&rows);
  }
  sqlite3_close(r.db);
  wfp_env_free(e);
  wfp_module_free(m);
}

static void instances_restored_at_their_handles(void **state) {
  (void)state;
  wfp_module *m = load("runtime.so");
  wfp_env *e = wfp_env_new();
  assert_int_equal(wfp_env_instance_restore(e, m, "Tally", 7), 0);
  assert_int_equal(wfp_env_instance_restore(e, m, "Tally", 3), 0);
  assert_int_equal(wfp_env_instance_restore(e, m, "Tally", 3), WFP_EINVAL);
  assert_int_equal(wfp_env_instance_restore(e, m, "Nope", 4), WFP_EINVAL);
  assert_int_equal(wfp_env_instance_restore(e, m, "Tally", 0), WFP_EINVAL);
  uint64_t h;
  assert_int_equal(wfp_env_instance_new(e, m, "Tally", &h), 0);
  assert_int_equal(h, 8);
  assert_string_equal(wfp_env_instance_get(e, 3, "n"), "0");
  wfp_env_free(e);
  wfp_module_free(m);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_loop SO_DIR\n");
    return 2;
  }
  so_dir = argv[1];
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(handlers_answer_now_or_later),
      cmocka_unit_test(handlers_fail_and_err),
      cmocka_unit_test(commit_hook_phases),
      cmocka_unit_test(commit_hook_suspends),
      cmocka_unit_test(actors_never_interleave),
      cmocka_unit_test(concurrency_is_capped),
      cmocka_unit_test(fanout_rows_run_at_once),
      cmocka_unit_test(fanout_rows_count_toward_limits),
      cmocka_unit_test(fanout_row_trap),
      cmocka_unit_test(cancelled_requests),
      cmocka_unit_test(sleep_resumes_for_time_left),
      cmocka_unit_test(time_and_memory_limits),
      cmocka_unit_test(free_cancels_and_borrows),
      cmocka_unit_test(many_on_threads),
      cmocka_unit_test(revive_from_each_record),
      cmocka_unit_test(db_runner_runs_queries),
      cmocka_unit_test(instances_restored_at_their_handles),
  };
  return cmocka_run_group_tests_name("loop", tests, NULL, NULL);
}
