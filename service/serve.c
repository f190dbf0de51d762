/*
** serve.c: wfp-host serve: the options, and the service wired together: a
** loop of the runtime (wfp/loop.h) whose commit hook hands every step's
** record to the committer (commit.c) and waits for its answer, whose
** db_query runs in the store's transaction (a runner), started over the
** invocations the store holds pending (recovery); the HTTP API (api.c),
** triggers (triggers.c), signals. Not here: SQL (store_sqlite.c).
*/
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "pgquery.h"
#include "svc.h"

#define WFP_SERVE_API __attribute__((visibility("default")))
WFP_SERVE_API int wfp_serve_main(int argc, char **argv);

int64_t wfp_svc_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- modules ---- */

svc_module *wfp_svc_module_by_hash(svc *S, const char *hash) {
  for (int i = S->nmods - 1; i >= 0; i--)
    if (strcmp(S->mods[i].hash, hash) == 0)
      return &S->mods[i];
  return NULL;
}

svc_module *wfp_svc_module_for(svc *S, const char *hash, const char *fn) {
  if (hash)
    return wfp_svc_module_by_hash(S, hash);
  for (int i = S->nmods - 1; i >= 0; i--)
    if (wfp_module_find(S->mods[i].m, fn) >= 0)
      return &S->mods[i];
  return NULL;
}

/* ---- live invocations: a list and an id table ---- */

static size_t id_hash(const char *id, size_t cap) {
  uint64_t h = 1469598103934665603ull;
  for (const char *p = id; *p; p++)
    h = (h ^ (unsigned char)*p) * 1099511628211ull;
  return (size_t)(h & (cap - 1));
}

static bool table_grow(svc *S) {
  size_t cap = S->table_cap ? S->table_cap * 2 : 1024;
  svc_inv **t = calloc(cap, sizeof *t);
  if (!t)
    return false;
  for (size_t i = 0; i < S->table_cap; i++)
    for (svc_inv *si = S->table[i], *n; si; si = n) {
      n = si->hnext;
      size_t k = id_hash(si->id, cap);
      si->hnext = t[k];
      t[k] = si;
    }
  free(S->table);
  S->table = t;
  S->table_cap = cap;
  return true;
}

svc_inv *wfp_svc_find(svc *S, const char *id) {
  if (!S->table_cap)
    return NULL;
  for (svc_inv *si = S->table[id_hash(id, S->table_cap)]; si; si = si->hnext)
    if (strcmp(si->id, id) == 0)
      return si;
  return NULL;
}

static bool live_add(svc *S, svc_inv *si) {
  if (S->nlive + 1 > S->table_cap / 2 && !table_grow(S))
    return false;
  size_t k = id_hash(si->id, S->table_cap);
  si->hnext = S->table[k];
  S->table[k] = si;
  si->next = S->live;
  if (S->live)
    S->live->prev = si;
  S->live = si;
  S->nlive++;
  return true;
}

static void live_remove(svc *S, svc_inv *si) {
  svc_inv **p = &S->table[id_hash(si->id, S->table_cap)];
  while (*p && *p != si)
    p = &(*p)->hnext;
  if (*p)
    *p = si->hnext;
  if (si->prev)
    si->prev->next = si->next;
  else
    S->live = si->next;
  if (si->next)
    si->next->prev = si->prev;
  S->nlive--;
}

static void held_clear(svc_inv *si) {
  for (size_t i = 0; i < si->nheld; i++) {
    free(si->held[i].key);
    free(si->held[i].json);
  }
  si->nheld = 0;
}

static void inv_free(svc *S, svc_inv *si) {
  live_remove(S, si);
  wfp_svc_drop_waiters(S, si);
  wfp_invocation_free(si->inv);
  held_clear(si);
  free(si->held);
  free(si->fn);
  free(si->origin);
  free(si);
}

/* ---- the log: one JSON line per invocation end ---- */

static void log_end(svc *S, const svc_inv *si, int status, const char *text, uint64_t steps) {
  wfp__buf b;
  wfp__buf_init(&b);
  int64_t now = wfp_svc_now_ms();
  wfp__buf_printf(&b, "{\"time_ms\":%lld,\"event\":\"end\",\"id\":\"%s\",\"fn\":",
                  (long long)now, si->id);
  wfp__buf_add_jstr(&b, si->fn, strlen(si->fn));
  wfp__buf_printf(&b, ",\"program\":\"%s\",\"origin\":", si->mod->hash);
  wfp__buf_add_jstr(&b, si->origin, strlen(si->origin));
  wfp__buf_printf(&b, ",\"status\":\"%s\",\"steps\":%llu,\"ms\":%lld",
                  status == WFP_DONE ? "done" : "trapped", (unsigned long long)steps,
                  (long long)(now - si->created_ms));
  if (status == WFP_TRAP) {
    wfp__buf_adds(&b, ",\"trap\":");
    wfp__buf_add_jstr(&b, text ? text : "", text ? strlen(text) : 0);
  }
  wfp__buf_adds(&b, "}\n");
  if (!b.oom)
    fwrite(b.data, 1, b.len, S->log);
  wfp__buf_free(&b);
}

static void logf_(svc *S, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(svc *S, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(S->log, "wfp-host: ");
  vfprintf(S->log, fmt, ap);
  fputc('\n', S->log);
  va_end(ap);
}

/* ---- the commit hook: every record to the committer ---- */

void wfp_svc_submit(svc *S, svc_op *op) {
  op->t0_ns = mono_ns();
  wfp_svc_commit(S->com, op);
}

static svc_inv *top_of(wfp_invocation *inv) {
  wfp_invocation *p;
  while ((p = wfp_invocation_parent(inv)) != NULL)
    inv = p;
  return wfp_invocation_data(inv);
}

static char *dupn(const void *p, size_t n) {
  char *d = malloc(n + 1);
  if (d) {
    if (n)
      memcpy(d, p, n);
    d[n] = 0;
  }
  return d;
}

char *wfp_svc_props_json(svc *S, uint64_t h) {
  wfp__buf b;
  wfp__buf_init(&b);
  wfp__buf_addc(&b, '{');
  size_t n = wfp_env_instance_prop_count(S->env, h);
  for (size_t i = 0; i < n; i++) {
    const char *name = wfp_env_instance_prop_name(S->env, h, i);
    if (i)
      wfp__buf_addc(&b, ',');
    wfp__buf_add_jstr(&b, name, strlen(name));
    wfp__buf_addc(&b, ':');
    wfp__buf_adds(&b, wfp_env_instance_prop_value(S->env, h, i));
  }
  wfp__buf_addc(&b, '}');
  if (b.oom) {
    wfp__buf_free(&b);
    return NULL;
  }
  return wfp__buf_take(&b, NULL);
}

/* The one write an effect made, from its record: 1 and *w, 0 when none,
** WFP_ENOMEM. */
static int write_of(svc *S, const wfp_commit_record *r, svc_inv *si, svc_write *w) {
  memset(w, 0, sizeof *w);
  switch (r->effect) {
  case WFP_EFFECT_CTX_SET_I64:
    w->kind = SVC_W_CTX;
    w->key = dupn(r->key, r->key_len);
    w->key_len = r->key_len;
    w->i64 = r->i64;
    return w->key ? 1 : WFP_ENOMEM;
  case WFP_EFFECT_MSG_SEND:
    w->kind = SVC_W_MSG;
    w->key = dupn(r->key, r->key_len);
    w->key_len = r->key_len;
    w->json = dupn(r->json, r->json_len);
    w->json_len = r->json_len;
    return w->key && w->json ? 1 : WFP_ENOMEM;
  case WFP_EFFECT_SELF_SET: {
    if (r->has_resume) /* it failed: {"error": ...}; nothing was written */
      return 0;
    uint64_t h = wfp_invocation_self(si->inv);
    const char *res = wfp_env_instance_resource(S->env, h);
    if (!res)
      return 0;
    w->kind = SVC_W_INST;
    w->handle = h;
    w->key = strdup(res);
    w->key_len = strlen(res);
    w->json = wfp_svc_props_json(S, h);
    w->json_len = w->json ? strlen(w->json) : 0;
    return w->key && w->json ? 1 : WFP_ENOMEM;
  }
  default:
    return 0;
  }
}

static bool held_add(svc_inv *si, const svc_write *w) {
  if (si->nheld == si->held_cap) {
    size_t cap = si->held_cap ? si->held_cap * 2 : 8;
    svc_write *n = realloc(si->held, cap * sizeof *n);
    if (!n)
      return false;
    si->held = n;
    si->held_cap = cap;
  }
  si->held[si->nheld++] = *w;
  return true;
}

/* The op takes the held writes of its invocation's rows, then w. */
static bool take_writes(svc_op *op, svc_inv *si, const svc_write *w) {
  size_t n = si->nheld + (w ? 1 : 0);
  if (!n)
    return true;
  op->w = malloc(n * sizeof *op->w);
  if (!op->w)
    return false;
  if (si->nheld) /* held is NULL until a row held a write */
    memcpy(op->w, si->held, si->nheld * sizeof *op->w);
  if (w)
    op->w[si->nheld] = *w;
  op->nw = n;
  si->nheld = 0;
  return true;
}

static void record_done(svc *S, svc_op *op) {
  svc_inv *si = op->si;
  if (op->lost) {
    /* another host took it over: it ends here, and goes on there from its
    ** last record */
    si->lost = true;
    op->cb(op->inv, WFP_ECANCELED);
    return;
  }
  for (size_t i = 0; i < op->nw; i++)
    if (op->w[i].kind == SVC_W_MSG)
      S->stats.messages++;
  wfp_svc_start_spawned(S, op);
  if (op->kind == SVC_OP_END) {
    int status = op->status == WFP_STORE_DONE ? WFP_DONE : WFP_TRAP;
    wfp_svc_count(S, si->fn, WFP_STORE_PENDING, op->status);
    if (status == WFP_TRAP)
      wfp_svc_trap_note(S, si->id, si->fn, op->text, wfp_svc_now_ms());
    log_end(S, si, status, op->text, op->steps);
    wfp_svc_wake_waiters(S, si, status, op->text, op->steps);
  } else {
    si->ready_ns = mono_ns();
  }
  /* the invocation goes on (or ends: then si is freed under this call) */
  op->cb(op->inv, 0);
}

static void on_commit(void *ud, const wfp_commit_record *r, wfp_commit_cb cb) {
  svc *S = ud;
  svc_inv *si = top_of(r->inv);
  bool row = wfp_invocation_parent(r->inv) != NULL;
  if (r->phase == WFP_COMMIT_STEP) {
    if (r->effect >= 0 && r->effect < WFP_EFFECT_COUNT)
      S->stats.effects[r->effect]++;
    S->stats.steps++;
    if (!row && si->ready_ns)
      wfp_svc_latency(S, (double)(mono_ns() - si->ready_ns) / 1e9);
  } else if (r->phase == WFP_COMMIT_END) {
    S->stats.steps++;
    if (!row && si->ready_ns)
      wfp_svc_latency(S, (double)(mono_ns() - si->ready_ns) / 1e9);
  }
  svc_write w;
  int has = 0;
  if (r->phase == WFP_COMMIT_EFFECT && (has = write_of(S, r, si, &w)) < 0)
    goto oom;
  if (row) {
    /* a row of a fan-out is not kept on its own: its writes commit with
    ** its top's next record (the db_query's), and a crash before that runs
    ** the query and its rows again */
    if (has && !held_add(si, &w)) {
      free(w.key);
      free(w.json);
      goto oom;
    }
    cb(r->inv, 0);
    return;
  }
  /* what needs no record: a step before an effect that writes nothing
  ** yet (its record comes after the effect), an effect that wrote nothing
  ** (a read: done again after a crash, unseen); a sleep's wake time and
  ** every write, a query and an end are recorded */
  bool record = r->phase == WFP_COMMIT_END ||
                (r->phase == WFP_COMMIT_STEP && r->effect == WFP_EFFECT_SLEEP_MS) ||
                (r->phase == WFP_COMMIT_EFFECT &&
                 (has || si->nheld || r->effect == WFP_EFFECT_DB_QUERY));
  if (!record) {
    si->ready_ns = mono_ns();
    cb(r->inv, 0);
    return;
  }
  svc_op *op = calloc(1, sizeof *op);
  if (!op) {
    if (has) {
      free(w.key);
      free(w.json);
    }
    goto oom;
  }
  op->si = si;
  op->inv = r->inv;
  op->cb = cb;
  op->seq = si->seq;
  op->epoch = si->epoch;
  memcpy(op->id, si->id, sizeof op->id);
  op->done = record_done;
  bool ok = take_writes(op, si, has ? &w : NULL);
  if (!ok && has) {
    free(w.key);
    free(w.json);
  }
  if (r->phase == WFP_COMMIT_END) {
    op->kind = SVC_OP_END;
    op->status = r->status == WFP_DONE ? WFP_STORE_DONE : WFP_STORE_TRAPPED;
    op->text = strdup(r->text ? r->text : "");
    op->steps = r->steps;
    op->fuel = r->fuel;
    ok = ok && op->text;
  } else {
    op->kind = SVC_OP_STEP;
    wfp_store_step *st = &op->st;
    st->seq = si->seq;
    st->state = op->state = malloc(r->state_len ? r->state_len : 1);
    ok = ok && op->state;
    if (op->state)
      memcpy(op->state, r->state, r->state_len);
    st->state_len = r->state_len;
    st->steps = r->steps;
    st->fuel = r->fuel;
    if (r->phase == WFP_COMMIT_STEP) {
      st->effect = r->effect;
      st->i64 = r->i64;
      st->wake_at = r->wake_at;
    } else {
      st->effect = -1;
      st->has_resume = r->has_resume;
      if (r->has_resume) {
        st->resume = op->resume = dupn(r->resume, r->resume_len);
        st->resume_len = r->resume_len;
        ok = ok && op->resume;
      }
    }
  }
  if (!ok) {
    wfp_svc_op_free(op);
    goto oom;
  }
  wfp_svc_submit(S, op);
  return;
oom:
  cb(r->inv, WFP_ENOMEM);
}

/* db_query in the store's transaction: a runner's thread waits for the
** committer. A query of the invocation's own (not a row's, no each) holds
** the transaction open until its step's record. */
static void run_query(void *ud, wfp_db_job *job) {
  svc *S = ud;
  svc_inv *si = wfp_db_job_data(job);
  bool hold = si && !wfp_db_job_is_row(job) && !wfp_db_job_has_each(job);
  wfp_svc_commit_query(S->com, job, si ? si->seq : 0, si ? si->epoch : 0, hold);
}

/* ---- starting invocations ---- */

static void inv_done(wfp_invocation *inv, int status, void *data) {
  (void)inv;
  svc_inv *si = data;
  svc *S = si->S;
  char lost_id[17] = "";
  if (si->lost) {
    wfp_svc_cluster_lost(S, si);
    snprintf(lost_id, sizeof lost_id, "%s", si->id);
  } else if (status < 0 && !S->stopping) {
    /* the host failed it (out of memory): no end was recorded, so the
    ** store keeps it pending from its last record; the next start takes
    ** it up again */
    logf_(S, "error: invocation %s stopped: %s (it stays pending in the store)", si->id,
          wfp_strerror(status));
    svc_op *op = calloc(1, sizeof *op);
    if (op) {
      op->kind = SVC_OP_RELEASE;
      op->seq = si->seq;
      op->epoch = si->epoch;
      wfp_svc_submit(S, op);
    }
  }
  inv_free(S, si);
  if (lost_id[0])
    wfp_svc_cluster_retake(S, lost_id);
}

static svc_inv *inv_new(svc *S, const char *id, int64_t seq, svc_module *mod, const char *fn,
                        const char *origin, int64_t created_ms) {
  svc_inv *si = calloc(1, sizeof *si);
  if (!si)
    return NULL;
  snprintf(si->id, sizeof si->id, "%s", id);
  si->S = S;
  si->seq = seq;
  si->mod = mod;
  si->fn = strdup(fn);
  si->origin = strdup(origin);
  si->created_ms = created_ms;
  if (!si->fn || !si->origin || !live_add(S, si)) {
    free(si->fn);
    free(si->origin);
    free(si);
    return NULL;
  }
  return si;
}

/* Limits, then the loop. */
static svc_inv *launch(svc *S, svc_inv *si, wfp_invocation *inv) {
  si->inv = inv;
  if (S->max_fuel)
    wfp_invocation_set_fuel(inv, S->max_fuel, 0);
  if (S->max_steps)
    wfp_invocation_set_max_steps(inv, S->max_steps);
  si->ready_ns = mono_ns();
  if (wfp_loop_start(S->loop, inv, inv_done, si) != 0) {
    logf_(S, "error: invocation %s cannot start: out of memory", si->id);
    inv_free(S, si);
    return NULL;
  }
  si->in_loop = true;
  return si;
}

svc_inv *wfp_svc_start_new(svc *S, const char *id, int64_t seq, svc_module *mod,
                           const char *fn, const char *input, size_t input_len,
                           const char *origin, int64_t created_ms) {
  svc_inv *si = inv_new(S, id, seq, mod, fn, origin, created_ms);
  if (!si)
    return NULL;
  /* several hosts: a new invocation is held from its first epoch */
  si->epoch = S->cl ? 1 : 0;
  wfp_invocation *inv = NULL;
  if (wfp_invocation_new(mod->m, S->env, input, input_len, &inv) != 0) {
    logf_(S, "error: invocation %s cannot start: its input is refused", id);
    inv_free(S, si);
    return NULL;
  }
  return launch(S, si, inv);
}

void wfp_svc_start_spawned(svc *S, svc_op *op) {
  for (size_t i = 0; i < op->nspawn; i++) {
    svc_spawn *sp = &op->spawn[i];
    wfp_svc_count(S, sp->fn, -1, WFP_STORE_PENDING);
    wfp_svc_start_new(S, sp->id, sp->seq, sp->mod, sp->fn, sp->input, strlen(sp->input),
                      sp->origin, sp->created_ms);
  }
}

/* ---- recovery ---- */

typedef struct recover {
  svc *S;
  uint64_t started, waiting, corrupt;
  char missing[8][17];
  int nmissing;
} recover;

static void corrupt_done(svc *S, svc_op *op) {
  (void)S;
  (void)op;
}

static int recover_one(void *ud, const wfp_store_row *r) {
  recover *rc = ud;
  svc *S = rc->S;
  svc_module *mod = wfp_svc_module_by_hash(S, r->program);
  if (!mod) {
    /* its program is not loaded: it waits in the store for a service
    ** that has it */
    rc->waiting++;
    bool said = false;
    for (int i = 0; i < rc->nmissing; i++)
      said |= strcmp(rc->missing[i], r->program) == 0;
    if (!said && rc->nmissing < 8) {
      snprintf(rc->missing[rc->nmissing++], 17, "%s", r->program);
      logf_(S, "invocations of program %s wait in the store: no module given is that program",
            r->program);
    }
    return 0;
  }
  wfp_saved_invocation sv;
  memset(&sv, 0, sizeof sv);
  sv.size = sizeof sv;
  sv.input = r->input;
  sv.input_len = r->input_len;
  sv.state = r->state;
  sv.state_len = r->state_len;
  sv.effect = r->effect;
  sv.key = r->key;
  sv.key_len = r->key_len;
  sv.json = r->json;
  sv.json_len = r->json_len;
  sv.each = r->each;
  sv.each_len = r->each_len;
  sv.i64 = r->i64;
  sv.wake_at = r->wake_at;
  sv.has_resume = r->has_resume;
  sv.resume = r->resume;
  sv.resume_len = r->resume_len;
  sv.steps = r->steps;
  sv.fuel = r->fuel;
  wfp_invocation *inv = NULL;
  wfp_host_diag hd;
  int e = wfp_invocation_revive(mod->m, S->env, &sv, &inv, &hd);
  if (e == WFP_ENOMEM)
    return e;
  svc_inv *si = inv_new(S, r->id, r->seq, mod, r->fn, r->origin, r->created_ms);
  if (!si) {
    wfp_invocation_free(inv);
    return WFP_ENOMEM;
  }
  si->epoch = r->epoch;
  if (e) {
    /* it can never go on: it ends, trapped, with what is wrong */
    rc->corrupt++;
    logf_(S, "error: invocation %s cannot be taken up: %s: %s", r->id, hd.d.path, hd.d.msg);
    svc_op *op = calloc(1, sizeof *op);
    char msg[900];
    snprintf(msg, sizeof msg, "the store's record of this invocation is damaged (%s: %s)",
             hd.d.path, hd.d.msg);
    if (op && (op->text = strdup(msg))) {
      op->kind = SVC_OP_END;
      op->seq = r->seq;
      op->epoch = r->epoch;
      op->status = WFP_STORE_TRAPPED;
      op->steps = r->steps;
      op->fuel = r->fuel;
      op->done = corrupt_done;
      wfp_svc_submit(S, op);
      wfp_svc_count(S, r->fn, WFP_STORE_PENDING, WFP_STORE_TRAPPED);
      wfp_svc_trap_note(S, r->id, r->fn, msg, wfp_svc_now_ms());
    } else {
      free(op);
    }
    inv_free(S, si);
    return 0;
  }
  if (launch(S, si, inv))
    rc->started++;
  return 0;
}

int wfp_svc_take_up(svc *S, const wfp_store_row *r) {
  recover rec;
  memset(&rec, 0, sizeof rec);
  rec.S = S;
  int rc = recover_one(&rec, r);
  S->stats.waiting_program += rec.waiting;
  return rc;
}

/* ---- stopping ---- */

void wfp_svc_stop(svc *S) {
  if (S->stopping)
    return;
  S->stopping = true;
  if (S->http)
    wfp_http_close(S->http);
  S->http = NULL;
  for (int i = 0; i < S->nscheds; i++)
    uv_timer_stop(&S->scheds[i].timer);
  wfp_loop_stop(S->loop);
}

static void on_signal(uv_signal_t *h, int signum) {
  svc *S = h->data;
  logf_(S, "stopping (%s)", signum == SIGTERM ? "SIGTERM" : "SIGINT");
  wfp_svc_stop(S);
}

/* ---- options ---- */

static const char usage_line[] = "usage: wfp-host serve [options] func.so [func.so ...]";

static void help(void) {
  printf("%s\n\n"
         "Runs an HTTP service over a durable store: invocations of the modules'\n"
         "functions are posted over HTTP, each step is committed with the effects\n"
         "it made, and every accepted invocation finishes exactly once across\n"
         "stops and crashes (docs/service.md).\n\n"
         "  --listen HOST:PORT   where to listen (default 127.0.0.1:8080; port 0\n"
         "                       picks a free one); prints 'listening on\n"
         "                       http://HOST:PORT' when ready\n"
         "  --store PATH|URL     the store, a SQLite file (default wfp-store.db), or\n"
         "                       a postgresql:// URL that several hosts share\n"
         "  --db PATH|URL        the database db_query runs on, a SQLite file or a\n"
         "                       postgresql:// URL (default: the store's own, where a\n"
         "                       query's writes commit with its step; another one is\n"
         "                       at-least-once)\n"
         "  --lease-ms N         several hosts on PostgreSQL: how long another host\n"
         "                       waits for this one before it takes its invocations\n"
         "                       over when it stops renewing (default 5000)\n"
         "  --fsync MODE         full (default): every commit reaches the disk before\n"
         "                       it is answered; normal: the log is synced at\n"
         "                       checkpoints (a power loss may lose the last commits);\n"
         "                       off: never synced (a power loss may corrupt)\n"
         "  --workers N          threads that run steps (default: one per core)\n"
         "  --subscribe TOPIC=FN run FN (one json parameter) once per message on\n"
         "                       TOPIC, with the payload (repeatable)\n"
         "  --every DURATION=FN  run FN (no parameters) every DURATION: 500ms, 10s,\n"
         "                       1m, 2h (repeatable)\n"
         "  --ctx KEY=I64        a context key's value when the store has none yet\n"
         "                       (repeatable)\n"
         "  --max-fuel N         end an invocation with a trap after N units of fuel\n"
         "  --max-steps N        end an invocation with a trap after N steps\n"
         "  --max-body BYTES     the largest request body (default 1048576)\n"
         "  --max-connections N  connections open at once (default 1024)\n"
         "  --request-timeout MS a request must arrive within MS (default 10000)\n"
         "  --idle-timeout MS    a kept-alive connection without a request closes\n"
         "                       after MS (default 60000)\n"
         "  --max-wait MS        the longest ?wait=MS a request may ask for (default\n"
         "                       300000)\n"
         "  --help, --version\n\n"
         "SIGTERM and SIGINT stop it; nothing it answered is lost by any stop.\n"
         "Exit status: 0 stopped, 2 usage error, 3 environment error (a module,\n"
         "the store, the address).\n",
         usage_line);
}

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "wfp-host serve: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n%s\nTry 'wfp-host serve --help'.\n", usage_line);
  va_end(ap);
  return 2;
}

typedef struct sopts {
  const char *listen, *store, *db;
  const char **sos, **subs, **everys, **ctx;
  int nsos, nsubs, neverys, nctx;
  uint64_t workers, max_fuel, max_steps, max_body, max_conns, req_timeout, idle_timeout,
      max_wait, lease_ms;
  int sync;
} sopts;

static bool parse_u64(const char *s, uint64_t *v) {
  int64_t x;
  if (!wfp__parse_i64(s, strlen(s), &x) || x < 0)
    return false;
  *v = (uint64_t)x;
  return true;
}

static int parse(int argc, char **argv, sopts *o, bool *done) {
  *done = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-') {
      o->sos[o->nsos++] = a;
      continue;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      help();
      *done = true;
      return 0;
    }
    if (strcmp(a, "--version") == 0) {
      printf("wfp-host %s (serve)\n", WFP_VERSION_STRING);
      *done = true;
      return 0;
    }
    static const char *const valued[] = {
        "--listen",      "--store",          "--db",           "--workers",
        "--subscribe",   "--every",          "--max-fuel",     "--max-steps",
        "--fsync",       "--max-body",       "--max-connections", "--request-timeout",
        "--idle-timeout", "--max-wait",      "--ctx",          "--lease-ms",  NULL};
    const char *v;
    const char *name = wfp__opt_valued(valued, argc, argv, &i, &v);
    if (!name)
      return usage("unknown option '%s'", a);
    if (!v)
      return usage("option '%s' needs a value", name);
    if (strcmp(name, "--listen") == 0)
      o->listen = v;
    else if (strcmp(name, "--store") == 0)
      o->store = v;
    else if (strcmp(name, "--db") == 0)
      o->db = v;
    else if (strcmp(name, "--subscribe") == 0)
      o->subs[o->nsubs++] = v;
    else if (strcmp(name, "--every") == 0)
      o->everys[o->neverys++] = v;
    else if (strcmp(name, "--ctx") == 0) {
      const char *eq = strchr(v, '=');
      int64_t x;
      if (!eq || eq == v || !wfp__parse_i64(eq + 1, strlen(eq + 1), &x))
        return usage("--ctx wants KEY=I64 (a decimal integer), not '%s'", v);
      o->ctx[o->nctx++] = v;
    }
    else if (strcmp(name, "--fsync") == 0) {
      if (strcmp(v, "full") == 0 || strcmp(v, "on") == 0)
        o->sync = WFP_STORE_SYNC_FULL;
      else if (strcmp(v, "normal") == 0)
        o->sync = WFP_STORE_SYNC_NORMAL;
      else if (strcmp(v, "off") == 0)
        o->sync = WFP_STORE_SYNC_OFF;
      else
        return usage("--fsync wants full, normal or off, not '%s'", v);
    } else {
      static const struct {
        const char *name;
        size_t off;
        uint64_t lo, hi;
      } nums[] = {{"--workers", offsetof(sopts, workers), 1, 1024},
                  {"--max-fuel", offsetof(sopts, max_fuel), 1, INT64_MAX},
                  {"--max-steps", offsetof(sopts, max_steps), 1, INT64_MAX},
                  {"--max-body", offsetof(sopts, max_body), 1, 1u << 30},
                  {"--max-connections", offsetof(sopts, max_conns), 1, 1000000},
                  {"--request-timeout", offsetof(sopts, req_timeout), 1, 86400000},
                  {"--idle-timeout", offsetof(sopts, idle_timeout), 1, 86400000},
                  {"--max-wait", offsetof(sopts, max_wait), 0, 86400000},
                  {"--lease-ms", offsetof(sopts, lease_ms), 100, 3600000}};
      for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++)
        if (strcmp(name, nums[k].name) == 0) {
          uint64_t *dst = (uint64_t *)((char *)o + nums[k].off);
          if (!parse_u64(v, dst) || *dst < nums[k].lo || *dst > nums[k].hi)
            return usage("%s wants a whole number from %llu to %llu, not '%s'", name,
                         (unsigned long long)nums[k].lo, (unsigned long long)nums[k].hi, v);
        }
    }
  }
  if (!o->nsos)
    return usage("no module given");
  return 0;
}

/* "HOST:PORT", "[V6]:PORT" */
static int split_listen(const char *s, char *host, size_t hn, int *port) {
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s)
    return 0;
  const char *h = s;
  size_t len = (size_t)(colon - s);
  if (h[0] == '[') {
    if (len < 2 || h[len - 1] != ']')
      return 0;
    h++;
    len -= 2;
  }
  if (!len || len >= hn)
    return 0;
  memcpy(host, h, len);
  host[len] = 0;
  uint64_t p;
  if (!parse_u64(colon + 1, &p) || p > 65535)
    return 0;
  *port = (int)p;
  return 1;
}

/* ---- loading the store into the environment ---- */

static int load_ctx(void *ud, const char *key, size_t len, int64_t v) {
  svc *S = ud;
  return wfp_env_ctx_setn(S->env, key, len, v) == WFP_ENOMEM ? WFP_ENOMEM : 0;
}

typedef struct inst_load {
  svc *S;
  char err[400];
} inst_load;

static int load_inst(void *ud, uint64_t handle, const char *resource, const char *props) {
  inst_load *il = ud;
  svc *S = il->S;
  svc_module *mod = NULL;
  for (int i = S->nmods - 1; i >= 0 && !mod; i--) {
    const wfp_module_desc *d = wfp_module_descriptor_of(S->mods[i].m);
    for (uint32_t k = 0; k < d->nresources; k++)
      if (strcmp(d->resources[k].name, resource) == 0)
        mod = &S->mods[i];
  }
  if (!mod) {
    /* kept in the store as it is; invocations on it wait for a module
    ** that has its resource */
    logf_(S, "instance %llu of resource %s: no module given has that resource",
          (unsigned long long)handle, resource);
    return 0;
  }
  /* one seen before (several hosts: another one changed it since) keeps
  ** its handle, and takes the store's properties */
  int rc = wfp_env_instance_resource(S->env, handle)
               ? WFP_OK
               : wfp_env_instance_restore(S->env, mod->m, resource, handle);
  if (rc == WFP_ENOMEM)
    return rc;
  if (rc) {
    snprintf(il->err, sizeof il->err, "instance %llu cannot be restored",
             (unsigned long long)handle);
    return WFP_EIO;
  }
  /* its properties: one JSON object, member by member */
  wfp__arena a;
  wfp__arena_init(&a);
  wfp__jv *t = NULL;
  size_t at;
  const char *why;
  if (wfp__json_parse(props, strlen(props), WFP_JSON_MAX_DEPTH, &a, &t, &at, &why) == 0 &&
      t->type == WFP__J_OBJ) {
    size_t n = strlen(props), i = 0;
    wfp__json_mem m;
    (void)t;
    while ((i = wfp__json_member(props, i, n, &m)) != 0) {
      wfp__buf name;
      wfp__buf_init(&name);
      wfp__json_string(props, m.key, n, &name);
      char *val = strndup(props + m.val, m.val_end - m.val);
      if (name.data && val)
        wfp_env_instance_set(S->env, handle, name.data, val);
      free(val);
      wfp__buf_free(&name);
    }
  }
  wfp__arena_free(&a);
  return 0;
}

int wfp_svc_instance_load(svc *S, uint64_t handle, const char *resource, const char *props,
                          char *err, size_t errlen) {
  inst_load il = {S, ""};
  int rc = load_inst(&il, handle, resource, props);
  if (rc)
    snprintf(err, errlen, "%s", rc == WFP_ENOMEM ? "out of memory" : il.err);
  return rc;
}

static int load_count(void *ud, const char *fn, int status, uint64_t n) {
  wfp_svc_count_add(ud, fn, status, n);
  return 0;
}

/* The store lists the newest trap first; the ring takes the oldest
** first. */
typedef struct trap_load {
  char id[SVC_TRAPS_KEPT][17];
  char *fn[SVC_TRAPS_KEPT], *msg[SVC_TRAPS_KEPT];
  int64_t at[SVC_TRAPS_KEPT];
  int n;
} trap_load;

static int load_trap(void *ud, const wfp_store_row *r) {
  trap_load *t = ud;
  if (t->n == SVC_TRAPS_KEPT)
    return 0;
  snprintf(t->id[t->n], 17, "%s", r->id);
  t->fn[t->n] = strdup(r->fn);
  t->msg[t->n] = strdup(r->trap ? r->trap : "");
  t->at[t->n] = r->updated_ms;
  t->n++;
  return 0;
}

static void setup_done(svc *S, svc_op *op) {
  (void)S;
  *(bool *)op->si = true;
}

/* ---- main ---- */

int wfp_serve_main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  sopts o;
  memset(&o, 0, sizeof o);
  o.listen = "127.0.0.1:8080";
  o.store = "wfp-store.db";
  o.max_body = 1u << 20;
  o.max_conns = 1024;
  o.req_timeout = 10000;
  o.idle_timeout = 60000;
  o.max_wait = 300000;
  o.lease_ms = 5000;
  o.sos = calloc((size_t)argc + 1, sizeof *o.sos);
  o.subs = calloc((size_t)argc + 1, sizeof *o.subs);
  o.everys = calloc((size_t)argc + 1, sizeof *o.everys);
  o.ctx = calloc((size_t)argc + 1, sizeof *o.ctx);
  svc *S = calloc(1, sizeof *S);
  uv_loop_t uv;
  bool uv_ready = false;
  wfp_pgq_runner *pg_runner = NULL;
  int code = 2;
  char err[1024];
  if (!o.sos || !o.subs || !o.everys || !o.ctx || !S) {
    fprintf(stderr, "wfp-host: error: out of memory\n");
    code = 3;
    goto out;
  }
  S->log = stderr;
  bool done = false;
  if ((code = parse(argc, argv, &o, &done)) != 0 || done)
    goto out;
  code = 3;
  char host[256];
  int port = 0;
  if (!split_listen(o.listen, host, sizeof host, &port)) {
    code = usage("--listen wants HOST:PORT, not '%s'", o.listen);
    goto out;
  }
  /* the modules, in command-line order (the last one that has a function
  ** runs a new invocation of it) */
  S->mods = calloc((size_t)o.nsos, sizeof *S->mods);
  if (!S->mods)
    goto oom;
  for (int i = 0; i < o.nsos; i++) {
    wfp_host_diag hd;
    if (wfp_module_load(o.sos[i], &S->mods[i].m, &hd) != 0) {
      fprintf(stderr, "wfp-host: error: %s: %s%s%s\n", o.sos[i], hd.d.path,
              hd.d.path[0] ? ": " : "", hd.d.msg);
      goto out;
    }
    S->mods[i].path = o.sos[i];
    S->mods[i].hash = wfp_module_hash(S->mods[i].m);
    S->nmods++;
  }
  S->subs = calloc((size_t)o.nsubs + 1, sizeof *S->subs);
  S->scheds = calloc((size_t)o.neverys + 1, sizeof *S->scheds);
  if (!S->subs || !S->scheds)
    goto oom;
  for (int i = 0; i < o.nsubs; i++) {
    int rc = wfp_svc_sub_parse(S, o.subs[i], &S->subs[i], err, sizeof err);
    S->nsubs++;
    if (rc) {
      code = rc == WFP_ENOMEM ? 3 : usage("%s", err);
      goto out;
    }
  }
  for (int i = 0; i < o.neverys; i++) {
    int rc = wfp_svc_sched_parse(S, o.everys[i], &S->scheds[i], err, sizeof err);
    S->nscheds++;
    if (rc) {
      code = rc == WFP_ENOMEM ? 3 : usage("%s", err);
      goto out;
    }
  }
  S->max_fuel = o.max_fuel;
  S->max_steps = o.max_steps;
  S->max_wait_ms = (int64_t)o.max_wait;
  /* logs and the status page name the store without its password */
  char store_shown[1024];
  wfp_store_url_shown(o.store, store_shown, sizeof store_shown);
  S->store_path = store_shown;
  S->started_ms = wfp_svc_now_ms();
  /* the store; on PostgreSQL this process is one host among several, with
  ** an id of its own */
  char host_id[17];
  wfp_svc_new_id(host_id);
  wfp_store_opts so = {sizeof so, o.sync, host_id, (int64_t)o.lease_ms};
  if (wfp_store_open(o.store, &so, &S->store, err, sizeof err) != 0) {
    fprintf(stderr, "wfp-host: error: %s\n", err);
    goto out;
  }
  if (!(S->env = wfp_env_new()))
    goto oom;
  /* db_query: the store's own file (exactly once), or another one */
  S->db_in_store = true;
  if (o.db && wfp_store_is_pg(o.db)) {
    /* PostgreSQL: the store's own database when the URL is the store's */
    S->db_in_store = strcmp(o.db, o.store) == 0;
    if (!S->db_in_store && wfp_pgq_runner_open(o.db, &pg_runner, err, sizeof err) != 0) {
      fprintf(stderr, "wfp-host: error: --db: %s\n", err);
      goto out;
    }
    S->db_path = o.db;
  } else if (o.db) {
    char *a = realpath(o.db, NULL), *b = realpath(o.store, NULL);
    S->db_in_store = a && b && strcmp(a, b) == 0;
    free(a);
    free(b);
    if (!S->db_in_store && wfp_env_open_db(S->env, o.db, err, sizeof err) != 0) {
      fprintf(stderr, "wfp-host: error: %s\n", err);
      goto out;
    }
    S->db_path = o.db;
  }
  /* what the store holds: context, instances, counts, recent traps */
  wfp_store *st = S->store;
  inst_load il = {S, ""};
  int rc = st->m->load_ctx(st, load_ctx, S);
  if (!rc)
    rc = st->m->load_instances(st, load_inst, &il);
  if (!rc)
    rc = st->m->load_counts(st, load_count, S);
  trap_load tl;
  memset(&tl, 0, sizeof tl);
  if (!rc)
    rc = st->m->load_traps(st, SVC_TRAPS_KEPT, load_trap, &tl);
  for (int i = tl.n - 1; i >= 0; i--) {
    if (tl.fn[i] && tl.msg[i])
      wfp_svc_trap_note(S, tl.id[i], tl.fn[i], tl.msg[i], tl.at[i]);
    free(tl.fn[i]);
    free(tl.msg[i]);
  }
  if (rc) {
    fprintf(stderr, "wfp-host: error: %s\n",
            rc == WFP_ENOMEM ? "out of memory" : il.err[0] ? il.err : st->m->errmsg(st));
    goto out;
  }
  /* the loop, on a uv loop of ours (the HTTP server and timers share it) */
  if (uv_loop_init(&uv) != 0) {
    fprintf(stderr, "wfp-host: error: cannot set up the event loop\n");
    goto out;
  }
  uv_ready = true;
  S->uv = &uv;
  wfp_loop_opts lo;
  memset(&lo, 0, sizeof lo);
  lo.size = sizeof lo;
  lo.workers = (unsigned)o.workers;
  lo.uv_loop = &uv;
  if (wfp_loop_new(&lo, S->env, &S->loop) != 0) {
    fprintf(stderr, "wfp-host: error: cannot set up the loop\n");
    goto out;
  }
  wfp_loop_set_commit(S->loop, on_commit, S);
  wfp_loop_set_sink(S->loop, NULL, NULL);
  if (S->db_in_store)
    wfp_loop_set_db_runner(S->loop, run_query, S);
  else if (pg_runner)
    wfp_loop_set_db_runner(S->loop, wfp_pgq_runner_run, pg_runner);
  if (wfp_svc_committer_start(S, S->store, &uv, &S->com) != 0) {
    fprintf(stderr, "wfp-host: error: cannot start the committer\n");
    goto out;
  }
  /* several hosts on the store: leases, claims, reads off the loop */
  if (wfp_svc_cluster_start(S, (int64_t)o.lease_ms, err, sizeof err) != 0) {
    fprintf(stderr, "wfp-host: error: %s\n", err);
    goto out;
  }
  /* triggers: cursors and schedules, committed before anything runs */
  bool setup = false;
  svc_op *op = calloc(1, sizeof *op);
  if (!op)
    goto oom;
  op->kind = SVC_OP_SETUP;
  op->done = setup_done;
  /* --ctx: a key the store does not have yet starts at its value */
  op->w = calloc((size_t)o.nctx + 1, sizeof *op->w);
  if (!op->w) {
    free(op);
    goto oom;
  }
  for (int i = 0; i < o.nctx; i++) {
    const char *eq = strchr(o.ctx[i], '=');
    size_t kl = (size_t)(eq - o.ctx[i]);
    int64_t v = 0, had;
    wfp__parse_i64(eq + 1, strlen(eq + 1), &v);
    char *key = strndup(o.ctx[i], kl);
    if (!key) {
      wfp_svc_op_free(op);
      goto oom;
    }
    if (wfp_env_ctx_get(S->env, key, &had) == 0) {
      free(key);
      continue;
    }
    if (wfp_env_ctx_setn(S->env, key, kl, v) != 0) {
      free(key);
      wfp_svc_op_free(op);
      code = usage("--ctx: a key that is not valid UTF-8");
      goto out;
    }
    op->w[op->nw++] = (svc_write){SVC_W_CTX, key, kl, NULL, 0, v, 0};
  }
  op->si = (svc_inv *)&setup;
  wfp_svc_submit(S, op);
  while (!setup && !wfp_svc_committer_failure(S->com))
    uv_run(&uv, UV_RUN_ONCE);
  if (!setup) {
    fprintf(stderr, "wfp-host: error: %s\n", wfp_svc_committer_failure(S->com));
    goto out;
  }
  /* recovery: every pending invocation goes on from its last record */
  recover rec;
  memset(&rec, 0, sizeof rec);
  rec.S = S;
  if ((rc = st->m->load_pending(st, recover_one, &rec)) != 0) {
    fprintf(stderr, "wfp-host: error: %s\n",
            rc == WFP_ENOMEM ? "out of memory" : st->m->errmsg(st));
    goto out;
  }
  S->stats.waiting_program = rec.waiting;
  /* the HTTP server */
  wfp_http_opts ho = {o.max_body, 32768, (unsigned)o.max_conns, o.req_timeout, o.idle_timeout};
  if (wfp_http_listen(&uv, host, port, &ho, wfp_svc_handle, S, &S->http, err, sizeof err) !=
      0) {
    fprintf(stderr, "wfp-host: error: %s\n", err);
    goto out;
  }
  wfp_svc_scheds_arm(S);
  wfp_svc_cluster_go(S);
  uv_signal_init(&uv, &S->sigterm);
  uv_signal_init(&uv, &S->sigint);
  S->sigterm.data = S->sigint.data = S;
  uv_signal_start(&S->sigterm, on_signal, SIGTERM);
  uv_signal_start(&S->sigint, on_signal, SIGINT);
  wfp__buf line; /* the store's name as a JSON string: a path may hold quotes */
  wfp__buf_init(&line);
  wfp__buf_printf(&line, "{\"time_ms\":%lld,\"event\":\"start\",\"store\":",
                  (long long)wfp_svc_now_ms());
  wfp__buf_add_jstr(&line, S->store_path, strlen(S->store_path));
  wfp__buf_printf(&line, ",\"recovered\":%llu,\"waiting_for_program\":%llu}\n",
                  (unsigned long long)rec.started, (unsigned long long)rec.waiting);
  if (!line.oom)
    fwrite(line.data, 1, line.len, S->log);
  wfp__buf_free(&line);
  printf("listening on http://%s\n", wfp_http_address(S->http));
  fflush(stdout);
  S->exit_code = 0;
  wfp_loop_run(S->loop, WFP_RUN_DEFAULT);
  /* stopped: the http server and timers are closing */
  wfp_svc_stop(S);
  uv_close((uv_handle_t *)&S->sigterm, NULL);
  uv_close((uv_handle_t *)&S->sigint, NULL);
  code = S->exit_code;
  goto out;
oom:
  fprintf(stderr, "wfp-host: error: out of memory\n");
  code = 3;
out:
  if (S) {
    S->stopping = true;
    if (S->http)
      wfp_http_close(S->http);
    for (int i = 0; i < S->nscheds; i++)
      if (S->scheds[i].timer.data)
        uv_close((uv_handle_t *)&S->scheds[i].timer, NULL);
    /* what was handed over commits; then the loop lets go of the rest (and
    ** several hosts' store lets go of this host's: others take it at once) */
    wfp_svc_cluster_stop(S);
    wfp_svc_committer_stop(S->com);
    if (S->store)
      wfp_svc_cluster_leave(S);
    wfp_loop_free(S->loop);
    if (uv_ready) {
      while (uv_run(&uv, UV_RUN_NOWAIT))
        ;
      uv_loop_close(&uv);
    }
    while (S->live)
      inv_free(S, S->live);
    free(S->table);
    wfp_svc_cluster_free(S);
    if (S->store)
      S->store->m->close(S->store);
    wfp_pgq_runner_close(pg_runner);
    wfp_env_free(S->env);
    for (int i = 0; i < S->nmods; i++)
      wfp_module_free(S->mods[i].m);
    free(S->mods);
    for (int i = 0; i < S->nsubs; i++) {
      free(S->subs[i].name);
      free(S->subs[i].topic);
      free(S->subs[i].fn);
    }
    free(S->subs);
    for (int i = 0; i < S->nscheds; i++) {
      free(S->scheds[i].name);
      free(S->scheds[i].fn);
    }
    free(S->scheds);
    wfp_svc_stats_free(&S->stats);
    free(S);
  }
  free(o.sos);
  free(o.subs);
  free(o.everys);
  free(o.ctx);
  fflush(stdout);
  return code;
}
