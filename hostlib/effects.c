/*
** effects.c: the built-in effect handlers and what they need of the loop:
** the context and resource instances of the environment, the outbox and
** the default sink, sleeps as timers on a heap of wake times, db_query on
** a lane that runs one query at a time off the loop's thread, and the
** fan-out of db_query with each: one invocation per row, concurrently.
** Not here: the loop's scheduling (loop.c), SQLite itself (db.c).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "host_int.h"

#define UV(l) ((uv_loop_t *)(l)->uv)

static const char *const effect_names[WFP_EFFECT_COUNT] = {
    "ctx-get-i64", "ctx-set-i64", "msg-send", "sleep-ms",
    "db-query",    "self-get",    "self-set", "yield"};

/* Fan-outs inside fan-outs: each level is a db_query with each run by a
** function a db_query with each called; deeper is a runaway. */
#define FANOUT_DEPTH_MAX 8

/* ---- the default sink ---- */

void wfp__default_sink(void *ud, wfp_invocation *inv, const char *topic, size_t tn,
                       const char *payload, size_t pn) {
  (void)ud;
  /* out of memory: the send itself was committed, but the collection
  ** misses it; the invocation ends with WFP_ENOMEM (msgs_lost) */
  if (wfp__inv_msg_add(inv, topic, tn, payload, pn) ||
      (!inv->parent && wfp__env_msg_add(inv->e, topic, tn, payload, pn)))
    inv->msgs_lost = true;
}

/* ---- sleeps: a heap of invocations by due time, one uv timer ---- */

static bool earlier(const wfp_invocation *a, const wfp_invocation *b) {
  return a->due < b->due;
}

static void heap_set(wfp__timers *t, size_t i, wfp_invocation *inv) {
  t->heap[i] = inv;
  inv->heap_at = i + 1;
}

static void sift_up(wfp__timers *t, size_t i) {
  wfp_invocation *x = t->heap[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!earlier(x, t->heap[p]))
      break;
    heap_set(t, i, t->heap[p]);
    i = p;
  }
  heap_set(t, i, x);
}

static void sift_down(wfp__timers *t, size_t i) {
  wfp_invocation *x = t->heap[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= t->n)
      break;
    if (c + 1 < t->n && earlier(t->heap[c + 1], t->heap[c]))
      c++;
    if (!earlier(t->heap[c], x))
      break;
    heap_set(t, i, t->heap[c]);
    i = c;
  }
  heap_set(t, i, x);
}

static void heap_remove_at(wfp__timers *t, size_t i) {
  wfp_invocation *gone = t->heap[i];
  gone->heap_at = 0;
  t->n--;
  if (i == t->n)
    return;
  heap_set(t, i, t->heap[t->n]);
  sift_down(t, i);
  sift_up(t, t->heap[i]->heap_at - 1);
}

static void on_timer(uv_timer_t *h);

/* The uv timer fires for the earliest due time, or stops. */
static void arm(wfp_loop *l) {
  uv_timer_t *ut = l->timers.uv_timer;
  if (!l->timers.n) {
    uv_timer_stop(ut);
    return;
  }
  uint64_t now = uv_now(UV(l)), due = l->timers.heap[0]->due;
  uv_timer_start(ut, on_timer, due > now ? due - now : 0, 0);
}

static int timers_add(wfp_loop *l, wfp_invocation *inv, uint64_t ms) {
  wfp__timers *t = &l->timers;
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 64;
    wfp_invocation **nh = realloc(t->heap, cap * sizeof *nh);
    if (!nh)
      return WFP_ENOMEM;
    t->heap = nh;
    t->cap = cap;
  }
  uv_update_time(UV(l)); /* the cached loop time may be a long step old */
  inv->due = uv_now(UV(l)) + ms;
  heap_set(t, t->n++, inv);
  sift_up(t, t->n - 1);
  if (t->heap[0] == inv)
    arm(l);
  return WFP_OK;
}

bool wfp__timers_remove(wfp_loop *l, wfp_invocation *inv) {
  if (!inv->heap_at)
    return false;
  heap_remove_at(&l->timers, inv->heap_at - 1);
  arm(l);
  return true;
}

static int64_t sleep_left(const wfp_invocation *inv, int64_t now);

static void on_timer(uv_timer_t *h) {
  wfp_loop *l = h->data;
  wfp__timers *t = &l->timers;
  uv_update_time(UV(l));
  uint64_t now = uv_now(UV(l));
  while (t->n && t->heap[0]->due <= now) {
    wfp_invocation *inv = t->heap[0];
    heap_remove_at(t, 0);
    char msg[96];
    const char *lim = wfp__limit_reached(inv, msg, sizeof msg);
    if (lim) {
      /* its top's time ran out first */
      wfp__req_release(l, inv->req);
      inv->req = NULL;
      wfp__loop_kill(l, WFP__TOP(inv), lim);
      continue;
    }
    /* the timer runs on the loop's clock, the wake time and the limit on
    ** the wall clock: a timer that fired early on the latter (a loop time
    ** read before a long step) waits for the rest, never wakes early */
    int64_t left = sleep_left(inv, wfp__now_ms());
    if (left > 0) {
      inv->due = now + (uint64_t)left;
      heap_set(t, t->n++, inv);
      sift_up(t, t->n - 1);
      continue;
    }
    wfp__resume_none(inv);
    wfp__req_complete(inv->req);
  }
  arm(l);
}

/* How long a sleep has still to wait at wall-clock time now: until its
** wake time or its top's time limit, whichever comes first; 0 when none. */
static int64_t sleep_left(const wfp_invocation *inv, int64_t now) {
  int64_t left = inv->wake_at - now;
  if (left > WFP_SLEEP_MAX_MS) /* the clock went back: never past a day */
    left = WFP_SLEEP_MAX_MS;
  const wfp_invocation *t = WFP__TOP(inv);
  if (t->time_limit && t->started_at) {
    int64_t until = t->started_at + (int64_t)t->time_limit - now;
    if (until < left)
      left = until;
  }
  return left > 0 ? left : 0;
}

/* sleep_ms: until the wake time fixed when the step suspended, or until
** the time limit of its top, whichever comes first. */
static int sleep_ms(wfp_loop *l, wfp_effect_req *req) {
  wfp_invocation *inv = req->inv;
  int64_t now = wfp__now_ms();
  if (!inv->wake_at) /* restored from a checkpoint that kept no wake time */
    inv->wake_at = now + (inv->ival > 0 ? inv->ival : 0);
  int64_t left = sleep_left(inv, now);
  if (left <= 0) { /* woken already, or its time is up: the next step says */
    wfp__resume_none(inv);
    return wfp__req_complete(req);
  }
  return timers_add(l, inv, (uint64_t)left);
}

/* ---- db_query: one query at a time on the connection, off the loop ---- */

static void lane_next(wfp_loop *l);

static void db_work(uv_work_t *w) {
  wfp_loop *l = w->data;
  wfp__db_lane *d = &l->db;
  d->nrows = 0;
  d->used = 0;
  d->offs.len = 0;
  d->err[0] = 0;
  d->readonly = true;
  if (d->runner) {
    /* the embedder's connection: the runner calls wfp_db_job_run */
    d->ran = false;
    d->rc = WFP_OK;
    d->runner(d->runner_ud, d);
    if (!d->ran) {
      d->rc = WFP_EIO;
      snprintf(d->err, sizeof d->err, "the query was not run (the host's runner failed)");
    }
    return;
  }
  d->rc = wfp__db_query(l->env, d->sql.data ? d->sql.data : "", d->sql.len,
                        d->params.len ? d->params.data : NULL, d->params.len, d->fuel,
                        &d->used, &d->rows, d->want_offs ? &d->offs : NULL, &d->nrows,
                        d->err, sizeof d->err);
}

int wfp_db_job_run(wfp_db_job *d, void *db, unsigned flags) {
  if (!d || !db || d->ran)
    return WFP_EINVAL;
  d->ran = true;
  d->rc = wfp__db_query_on(db, flags, d->sql.data ? d->sql.data : "", d->sql.len,
                           d->params.len ? d->params.data : NULL, d->params.len, d->fuel,
                           &d->used, &d->rows, d->want_offs ? &d->offs : NULL, &d->nrows,
                           &d->readonly, d->err, sizeof d->err);
  return d->rc;
}

const char *wfp_db_job_sql(const wfp_db_job *d, size_t *len) {
  if (len)
    *len = d && d->sql.data ? d->sql.len : 0;
  return d && d->sql.data ? d->sql.data : "";
}

const char *wfp_db_job_params(const wfp_db_job *d, size_t *len) {
  if (len)
    *len = d && d->params.data ? d->params.len : 0;
  return d && d->params.data ? d->params.data : "";
}

uint64_t wfp_db_job_fuel(const wfp_db_job *d) { return d ? d->fuel : 0; }

int wfp_db_job_answer(wfp_db_job *d, const char *rows, size_t len, const size_t *offs,
                      size_t nrows, int readonly, uint64_t used) {
  if (!d || d->ran || !rows || (nrows && !offs))
    return WFP_EINVAL;
  d->ran = true;
  d->used = used;
  d->readonly = readonly != 0;
  if (len > WFP_DB_RESULT_MAX) {
    d->rc = WFP_ELIMIT;
    snprintf(d->err, sizeof d->err,
             "the result is larger than %d bytes, the most one query may return",
             WFP_DB_RESULT_MAX);
    return WFP_EINVAL;
  }
  d->rows.len = 0;
  d->rows.oom = false;
  wfp__buf_add(&d->rows, rows, len);
  if (d->want_offs)
    wfp__buf_add(&d->offs, offs, 2 * nrows * sizeof *offs);
  d->nrows = nrows;
  if (d->rows.oom || d->offs.oom) {
    d->rc = WFP_ENOMEM;
    snprintf(d->err, sizeof d->err, "out of memory");
    return WFP_ENOMEM;
  }
  d->rc = WFP_OK;
  return WFP_OK;
}

int wfp_db_job_fail(wfp_db_job *d, int code, const char *msg, uint64_t used) {
  if (!d || d->ran || code >= 0)
    return WFP_EINVAL;
  d->ran = true;
  d->used = used;
  d->rc = code;
  snprintf(d->err, sizeof d->err, "%s", msg ? msg : "the query failed");
  return WFP_OK;
}

int wfp_db_job_readonly(const wfp_db_job *d) { return d && d->readonly; }
void *wfp_db_job_data(const wfp_db_job *d) { return d ? d->data : NULL; }
int wfp_db_job_is_row(const wfp_db_job *d) { return d && d->row; }
int wfp_db_job_has_each(const wfp_db_job *d) { return d && d->want_offs; }

void wfp_loop_set_db_runner(wfp_loop *l, wfp_db_runner fn, void *ud) {
  if (!l)
    return;
  l->db.runner = fn;
  l->db.runner_ud = fn ? ud : NULL;
}

static int fanout_start(wfp_loop *l, wfp_invocation *inv);

static void db_after(uv_work_t *w, int status) {
  (void)status;
  wfp_loop *l = w->data;
  wfp__db_lane *d = &l->db;
  d->busy = false;
  wfp_effect_req *req = d->req;
  d->req = NULL;
  wfp_invocation *inv = req->inv;
  if (!inv) { /* the loop gave up on it meanwhile */
    wfp__req_release(l, req);
    lane_next(l);
    return;
  }
  wfp_invocation *t = WFP__TOP(inv);
  t->fuel_used += d->used < d->fuel ? d->used : d->fuel;
  int rc = d->rc;
  if (rc == WFP_ENOMEM) {
    /* out of memory is the host's failure, not the program's */
    wfp__loop_fail(l, inv, rc);
  } else if (rc) {
    wfp__resume_error(inv, "db_query: %s", d->err);
    wfp__req_complete(req);
  } else if (inv->has_s2) {
    rc = fanout_start(l, inv);
    if (rc)
      wfp__loop_fail(l, inv, rc);
  } else {
    inv->resume_typed = false;
    inv->resume.len = 0;
    inv->resume.oom = false;
    wfp__buf_adds(&inv->resume, "{\"rows\":");
    wfp__buf_add(&inv->resume, d->rows.data, d->rows.len);
    wfp__buf_addc(&inv->resume, '}');
    inv->resume_some = true;
    if (inv->resume.oom)
      wfp__loop_fail(l, inv, WFP_ENOMEM);
    else
      wfp__req_complete(req);
  }
  lane_next(l);
}

static void lane_next(wfp_loop *l) {
  wfp__db_lane *d = &l->db;
  if (d->busy || !d->wait.head || l->closing)
    return;
  wfp_invocation *inv = wfp__q_pop(&d->wait);
  /* SQL work is fuel: a query may use its budget, or what the limit of
  ** its top leaves (then the next step traps on that limit) */
  const wfp_invocation *t = WFP__TOP(inv);
  uint64_t fuel = WFP_DB_QUERY_FUEL_MAX;
  if (t->fuel_max) {
    uint64_t spent = t->fuel_used + t->reserved;
    uint64_t left = spent < t->fuel_max ? t->fuel_max - spent : 0;
    if (left < fuel)
      fuel = left;
  }
  /* the query's own copy: the invocation may go while it runs */
  wfp__set_bytes(&d->sql, inv->s0.data ? inv->s0.data : "", inv->s0.len);
  wfp__set_bytes(&d->params, inv->s1.data ? inv->s1.data : "", inv->s1.len);
  if (d->sql.oom || d->params.oom) {
    wfp__loop_fail(l, inv, WFP_ENOMEM);
    lane_next(l);
    return;
  }
  d->fuel = fuel;
  d->want_offs = inv->has_s2;
  d->data = WFP__TOP(inv)->data;
  d->row = inv->parent != NULL;
  d->req = inv->req;
  d->busy = true;
  uv_work_t *w = d->work;
  if (uv_queue_work(UV(l), w, db_work, db_after) != 0) {
    d->busy = false;
    d->req = NULL;
    wfp__loop_fail(l, inv, WFP_EIO);
    lane_next(l);
  }
}

bool wfp__db_lane_remove(wfp_loop *l, wfp_invocation *inv) {
  for (wfp_invocation *w = l->db.wait.head; w; w = w->next)
    if (w == inv) {
      wfp__q_remove(&l->db.wait, inv);
      return true;
    }
  return false;
}

static int db_query(wfp_loop *l, wfp_effect_req *req) {
  wfp_invocation *inv = req->inv;
  if (!l->db.runner && !l->env->db) {
    /* opened here, on the loop's thread, and only here */
    char err[512];
    int rc = wfp_env_open_db(l->env, NULL, err, sizeof err);
    if (rc == WFP_ENOMEM)
      return rc;
    if (rc) {
      wfp__resume_error(inv, "db_query: %s", err);
      return wfp__req_complete(req);
    }
  }
  wfp__q_push(&l->db.wait, inv);
  lane_next(l);
  return WFP_OK;
}

/* ---- the fan-out: rows as invocations of their own ---- */

static void fan_free(wfp__fanout *f) {
  for (size_t r = 0; r < f->n; r++) {
    if (f->results)
      free(f->results[r]);
    if (!f->msgs || !f->nmsgs)
      continue;
    for (size_t k = 0; f->msgs[r] && k < f->nmsgs[r]; k++) {
      free(f->msgs[r][k].topic);
      free(f->msgs[r][k].payload);
    }
    free(f->msgs[r]);
  }
  free(f->rows);
  free(f->results);
  free(f->msgs);
  free(f->nmsgs);
  free(f->trap);
  free(f);
}

/* A row's messages go to its fan-out, in its place. */
static void keep_msgs(wfp__fanout *f, wfp_invocation *row) {
  size_t r = row->row;
  f->msgs[r] = row->msgs;
  f->nmsgs[r] = row->nmsgs;
  row->msgs = NULL;
  row->nmsgs = row->msgs_cap = 0;
}

/* The parent takes its rows' messages in row order (the default sink). */
static void give_msgs(wfp_invocation *parent, wfp__fanout *f) {
  for (size_t r = 0; r < f->n; r++)
    for (size_t k = 0; k < f->nmsgs[r]; k++) {
      const msg_ent *m = &f->msgs[r][k];
      wfp__default_sink(NULL, parent, m->topic, strlen(m->topic), m->payload,
                        strlen(m->payload));
    }
}

/* Every row ended: the parent resumes with their results in row order, or
** fails with the first trapped row's message. */
static void fanout_finish(wfp_loop *l, wfp_invocation *parent) {
  wfp__fanout *f = parent->fan;
  parent->fan = NULL;
  give_msgs(parent, f);
  wfp_effect_req *req = parent->req;
  if (f->oom || parent->msgs_lost) {
    /* the host's failure, not the program's */
    fan_free(f);
    wfp__loop_fail(l, parent, WFP_ENOMEM);
    return;
  }
  if (f->trapped) {
    wfp__resume_error(parent, "db_query each, row %zu: %s", f->trapped, f->trap);
  } else {
    wfp__buf out;
    wfp__buf_init(&out);
    wfp__buf_adds(&out, "{\"rows\":[");
    for (size_t r = 0; r < f->n; r++) {
      if (r)
        wfp__buf_addc(&out, ',');
      wfp__buf_adds(&out, f->results[r]);
    }
    wfp__buf_adds(&out, "]}");
    if (out.oom) {
      wfp__buf_free(&out);
      fan_free(f);
      wfp__loop_fail(l, parent, WFP_ENOMEM);
      return;
    }
    if (out.len > WFP_DB_RESULT_MAX)
      wfp__resume_error(parent, "db_query each: the results are larger than %d bytes, the "
                        "most one query may return", WFP_DB_RESULT_MAX);
    else
      wfp__resume_json(parent, out.data, out.len);
    wfp__buf_free(&out);
  }
  fan_free(f);
  if (parent->resume.oom)
    wfp__loop_fail(l, parent, WFP_ENOMEM);
  else
    wfp__req_complete(req);
}

void wfp__fanout_row_ended(wfp_loop *l, wfp_invocation *row) {
  wfp_invocation *parent = row->parent;
  wfp__fanout *f = parent->fan;
  size_t r = row->row;
  f->rows[r] = NULL;
  f->ended++;
  keep_msgs(f, row);
  if (row->step_rc == WFP_DONE) {
    /* its return value: a json result is the output; any other is the
    ** output's "result" */
    const char *o = row->output;
    size_t on = strlen(o);
    if (!f->json_result && on >= 11 && memcmp(o, "{\"result\":", 10) == 0)
      f->results[r] = strndup(o + 10, on - 11);
    else
      f->results[r] = strdup(o);
    /* a copy that failed fails the fan-out: the host ran out of memory */
    if (!f->results[r])
      f->oom = true;
  } else if (row->step_rc == WFP_ENOMEM) {
    f->oom = true;
  } else if (!f->trapped || r + 1 < f->trapped) {
    /* the first row in row order that traps fails the query, as if the
    ** rows ran one after another: the rows after it are cancelled, the
    ** ones before it run on (one of them may trap too) */
    free(f->trap);
    const char *why = row->step_rc == WFP_TRAP && row->trap ? row->trap
                      : row->step_rc < 0 ? wfp_strerror(row->step_rc)
                                          : "ended without an output";
    f->trap = strdup(why);
    f->trapped = r + 1;
    if (!f->trap)
      f->oom = true;
    for (size_t k = r + 1; k < f->n; k++) {
      wfp_invocation *w = f->rows[k];
      if (!w)
        continue;
      f->rows[k] = NULL;
      f->ended++;
      keep_msgs(f, w);
      wfp__loop_kill(l, w, NULL);
    }
  }
  l->members--;
  wfp_invocation_free(row);
  if (f->ended == f->n)
    fanout_finish(l, parent);
}

void wfp__fanout_cancel(wfp_loop *l, wfp_invocation *inv) {
  wfp__fanout *f = inv->fan;
  if (!f)
    return;
  inv->fan = NULL;
  for (size_t r = 0; r < f->n; r++) {
    wfp_invocation *w = f->rows[r];
    if (!w)
      continue;
    f->rows[r] = NULL;
    keep_msgs(f, w);
    wfp__loop_kill(l, w, NULL);
  }
  give_msgs(inv, f);
  fan_free(f);
  /* its request was the fan-out's */
  if (inv->req) {
    wfp__req_release(l, inv->req);
    inv->req = NULL;
  }
}

/* db_query with each: the function runs once per row, each as its own
** invocation on the same module and environment, all at once, with the
** limits of the invocation someone started; the query resumes when every
** row ended. */
static int fanout_start(wfp_loop *l, wfp_invocation *inv) {
  wfp__db_lane *d = &l->db;
  const char *each = inv->s2.data ? inv->s2.data : "";
  size_t en = inv->s2.len;
  /* the guest's form: {"fn":"<16 hex digits>","args":[...]} */
  if (en < 33 || memcmp(each, "{\"fn\":\"", 7) != 0 || each[23] != '"' ||
      memcmp(each + en - 2, "]}", 2) != 0) {
    wfp__resume_error(inv, "db_query: the each function value is malformed");
    return wfp__req_complete(inv->req);
  }
  char id[17];
  memcpy(id, each + 7, 16);
  id[16] = 0;
  int fi = wfp_module_find(inv->m, id);
  if (fi < 0) {
    wfp__resume_error(inv, "db_query: each names no function of this module (%s)", id);
    return wfp__req_complete(inv->req);
  }
  if (inv->depth >= FANOUT_DEPTH_MAX) {
    wfp__resume_error(inv, "db_query: each nests fan-outs more than %d deep",
                      FANOUT_DEPTH_MAX);
    return wfp__req_complete(inv->req);
  }
  size_t n = d->nrows;
  if (n == 0)
    return wfp__resume_json(inv, "{\"rows\":[]}", 11) ? WFP_ENOMEM
                                                      : wfp__req_complete(inv->req);
  wfp__fanout *f = calloc(1, sizeof *f);
  if (!f)
    return WFP_ENOMEM;
  f->n = n;
  f->json_result = inv->m->d->funcs[fi].result_type == WFP_TY_JSON;
  f->rows = calloc(n, sizeof *f->rows);
  f->results = calloc(n, sizeof *f->results);
  f->msgs = calloc(n, sizeof *f->msgs);
  f->nmsgs = calloc(n, sizeof *f->nmsgs);
  if (!f->rows || !f->results || !f->msgs || !f->nmsgs) {
    fan_free(f);
    return WFP_ENOMEM;
  }
  bool noargs = memcmp(each + en - 3, "[]}", 3) == 0;
  wfp__buf input;
  wfp__buf_init(&input);
  int rc = WFP_OK;
  wfp_invocation *t = WFP__TOP(inv);
  for (size_t r = 0; r < n && !rc; r++) {
    size_t se[2];
    memcpy(se, d->offs.data + r * sizeof se, sizeof se);
    input.len = 0;
    wfp__buf_add(&input, each, en - 2);
    if (!noargs)
      wfp__buf_addc(&input, ',');
    wfp__buf_add(&input, d->rows.data + se[0], se[1] - se[0]);
    wfp__buf_adds(&input, "]}");
    if (input.oom) {
      rc = WFP_ENOMEM;
      break;
    }
    wfp_invocation *c;
    if ((rc = wfp_invocation_new(inv->m, inv->e, input.data, input.len, &c)) != 0)
      break;
    c->depth = inv->depth + 1;
    c->parent = inv;
    c->top = t;
    c->row = r;
    c->started_at = t->started_at;
    f->rows[r] = c;
  }
  wfp__buf_free(&input);
  if (rc) {
    for (size_t r = 0; r < n; r++)
      wfp_invocation_free(f->rows[r]);
    fan_free(f);
    return rc;
  }
  inv->fan = f;
  for (size_t r = 0; r < n; r++)
    wfp__loop_start_row(l, f->rows[r]);
  return WFP_OK;
}

/* ---- the built-ins ---- */

static int self_effect(wfp_env *e, wfp_invocation *inv) {
  const char *s0 = inv->s0.data ? inv->s0.data : "";
  inst_ent *in = wfp__env_instance(e, inv->self);
  prop_ent *pr = wfp__env_prop(in, s0, inv->s0.len);
  const char *op = inv->effect == WFP_EFFECT_SELF_GET ? "self_get" : "self_set";
  if (!inv->self) {
    wfp__resume_error(inv, "%s: this invocation runs on no resource instance "
                      "(its input has no \"self\"; wfp-host: --new)", op);
  } else if (!in) {
    wfp__resume_error(inv, "%s: there is no resource instance %llu", op,
                      (unsigned long long)inv->self);
  } else if (!pr) {
    wfp__resume_error(inv, "%s: resource instance %llu (a %s) has no property '%.*s'", op,
                      (unsigned long long)inv->self, in->resource, (int)inv->s0.len, s0);
  } else if (inv->effect == WFP_EFFECT_SELF_GET) {
    inv->resume_typed = false;
    inv->resume.len = 0;
    inv->resume.oom = false;
    wfp__buf_adds(&inv->resume, "{\"value\":");
    wfp__buf_adds(&inv->resume, pr->json);
    wfp__buf_addc(&inv->resume, '}');
    inv->resume_some = true;
  } else {
    char *c;
    int r = wfp__json_of_type(inv->s1.data ? inv->s1.data : "", inv->s1.len, pr->type, &c);
    if (r == WFP_ENOMEM)
      return r;
    if (r) {
      wfp__resume_error(inv, "self_set: the value does not fit property '%.*s'",
                        (int)inv->s0.len, s0);
    } else {
      free(pr->json);
      pr->json = c;
      wfp__resume_none(inv);
    }
  }
  return WFP_OK;
}

/* The built-ins that finish at once (all but a sleep and a query): the
** resume value set, 1; 0 when the effect needs the loop; or WFP_ENOMEM. */
static int builtin_now(wfp_env *e, wfp_invocation *inv) {
  const char *s0 = inv->s0.data ? inv->s0.data : "";
  switch (inv->effect) {
  case WFP_EFFECT_CTX_GET_I64: {
    int64_t v;
    if (wfp__env_ctx_getn(e, s0, inv->s0.len, &v) == WFP_OK) {
      /* the hot path: typed, no text unless asked for */
      wfp__resume_i64(inv, v);
    } else {
      wfp__resume_error(inv, "context key '%.*s' is not set", (int)inv->s0.len, s0);
    }
    break;
  }
  case WFP_EFFECT_CTX_SET_I64: {
    int rc = wfp__env_ctx_setn(e, s0, inv->s0.len, inv->ival);
    if (rc)
      return rc;
    wfp__resume_none(inv);
    break;
  }
  case WFP_EFFECT_MSG_SEND:
    /* the outbox: handed to the sink once the effect is committed */
    inv->outbox = true;
    wfp__resume_none(inv);
    break;
  case WFP_EFFECT_SLEEP_MS:
    if (inv->ival > WFP_SLEEP_MAX_MS) {
      /* a sleep longer than a day is a fault, not a wait (a checkpoint
      ** may name any duration) */
      wfp__resume_error(inv, "sleep_ms: %lld ms is longer than the longest sleep, %d ms "
                        "(a day)", (long long)inv->ival, WFP_SLEEP_MAX_MS);
      break;
    }
    return 0;
  case WFP_EFFECT_DB_QUERY:
    return 0;
  case WFP_EFFECT_YIELD:
    wfp__resume_none(inv);
    break;
  case WFP_EFFECT_SELF_GET:
  case WFP_EFFECT_SELF_SET: {
    int rc = self_effect(e, inv);
    if (rc)
      return rc;
    break;
  }
  default:
    wfp__resume_error(inv, "this host cannot perform the effect '%s'",
                      inv->effect < WFP_EFFECT_COUNT ? effect_names[inv->effect] : "?");
    break;
  }
  return inv->resume.oom ? WFP_ENOMEM : 1;
}

int wfp__builtin(wfp_loop *l, wfp_effect_req *req) {
  wfp_invocation *inv = req->inv;
  int rc = builtin_now(l->env, inv);
  if (rc < 0)
    return rc;
  if (rc)
    return wfp__req_complete(req);
  return inv->effect == WFP_EFFECT_SLEEP_MS ? sleep_ms(l, req) : db_query(l, req);
}

int wfp__perform_now(wfp_invocation *inv) {
  int rc = builtin_now(inv->e, inv);
  if (rc <= 0)
    return rc;
  if (inv->outbox) {
    inv->outbox = false;
    wfp__default_sink(NULL, inv, inv->s0.len ? inv->s0.data : "", inv->s0.len,
                      inv->s1.len ? inv->s1.data : "", inv->s1.len);
    if (inv->msgs_lost)
      return WFP_ENOMEM;
  }
  return 1;
}

/* ---- set-up ---- */

static void close_free(uv_handle_t *h) { free(h); }

int wfp__effects_init(wfp_loop *l) {
  uv_timer_t *t = malloc(sizeof *t);
  uv_work_t *w = malloc(sizeof *w);
  if (!t || !w) {
    free(t);
    free(w);
    return WFP_ENOMEM;
  }
  uv_timer_init(UV(l), t);
  t->data = l;
  l->timers.uv_timer = t;
  w->data = l;
  l->db.work = w;
  wfp__buf_init(&l->db.sql);
  wfp__buf_init(&l->db.params);
  wfp__buf_init(&l->db.rows);
  wfp__buf_init(&l->db.offs);
  return WFP_OK;
}

void wfp__effects_close(wfp_loop *l) {
  /* a query that runs on the thread pool finishes first: it uses the
  ** environment's connection and the lane's buffers */
  while (l->db.busy)
    uv_run(UV(l), UV_RUN_ONCE);
  if (l->timers.uv_timer)
    uv_close((uv_handle_t *)l->timers.uv_timer, close_free);
  l->timers.uv_timer = NULL;
  free(l->timers.heap);
  l->timers.heap = NULL;
  l->timers.n = l->timers.cap = 0;
  free(l->db.work);
  l->db.work = NULL;
  wfp__buf_free(&l->db.sql);
  wfp__buf_free(&l->db.params);
  wfp__buf_free(&l->db.rows);
  wfp__buf_free(&l->db.offs);
}
