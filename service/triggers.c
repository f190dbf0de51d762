/*
** triggers.c: invocations nobody posted. Subscribers (--subscribe
** TOPIC=FN): the message log is the queue and each subscriber's cursor is
** committed in the transaction that adds the message and creates the
** subscriber's invocation for it, so a message makes its invocation
** exactly once. Schedules (--every DURATION=FN): the next due time is
** committed with the invocation a tick starts, so a tick runs once across
** restarts. Not here: starting the invocations (serve.c).
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "svc.h"

void wfp_svc_new_id(char out[17]) {
  uint8_t r[8];
  size_t got = 0;
  while (got < sizeof r) {
    ssize_t n = getrandom(r + got, sizeof r - got, 0);
    if (n > 0)
      got += (size_t)n;
    else if (errno != EINTR)
      break;
  }
  if (got < sizeof r) { /* no entropy at all: the clock and a counter */
    static uint64_t k;
    uint64_t v = (uint64_t)wfp_svc_now_ms() << 16 ^ __atomic_add_fetch(&k, 1, __ATOMIC_RELAXED);
    memcpy(r, &v, sizeof r);
  }
  wfp__hex(r, sizeof r, out);
  out[16] = 0;
}

/* The function fn of module m: its descriptor, or NULL. */
static const wfp_abi_func *func_of(const svc_module *m, const char *fn) {
  int i = wfp_module_find(m->m, fn);
  return i < 0 ? NULL : &wfp_module_descriptor_of(m->m)->funcs[i];
}

int wfp_svc_sub_parse(svc *S, const char *spec, svc_sub *out, char *err, size_t n) {
  memset(out, 0, sizeof *out);
  const char *eq = strrchr(spec, '=');
  if (!eq || eq == spec || !eq[1]) {
    snprintf(err, n, "--subscribe wants TOPIC=FN, not '%s'", spec);
    return WFP_EUSAGE;
  }
  const char *fn = eq + 1;
  svc_module *m = wfp_svc_module_for(S, NULL, fn);
  const wfp_abi_func *f = m ? func_of(m, fn) : NULL;
  if (!f) {
    snprintf(err, n, "--subscribe %s: no module has the function '%s'", spec, fn);
    return WFP_EUSAGE;
  }
  if (f->resource || f->nparams - f->ncaptures != 1 ||
      f->param_types[f->ncaptures] != WFP_TY_JSON) {
    snprintf(err, n, "--subscribe %s: '%s' must be a function of one json parameter (the "
                     "message's payload)", spec, fn);
    return WFP_EUSAGE;
  }
  out->name = strdup(spec);
  out->topic = strndup(spec, (size_t)(eq - spec));
  out->fn = strdup(fn);
  out->mod = m;
  if (!out->name || !out->topic || !out->fn) {
    snprintf(err, n, "out of memory");
    return WFP_ENOMEM;
  }
  return WFP_OK;
}

int wfp_svc_sched_parse(svc *S, const char *spec, svc_sched *out, char *err, size_t n) {
  memset(out, 0, sizeof *out);
  const char *eq = strchr(spec, '=');
  char *end = NULL;
  errno = 0;
  unsigned long long v = eq ? strtoull(spec, &end, 10) : 0;
  uint64_t unit = 0;
  if (eq && end && end > spec && errno == 0) {
    size_t ul = (size_t)(eq - end);
    if (ul == 2 && memcmp(end, "ms", 2) == 0)
      unit = 1;
    else if (ul == 1 && *end == 's')
      unit = 1000;
    else if (ul == 1 && *end == 'm')
      unit = 60000;
    else if (ul == 1 && *end == 'h')
      unit = 3600000;
  }
  if (!unit || v == 0 || v > (uint64_t)365 * 86400000 / unit || !eq[1]) {
    snprintf(err, n,
             "--every wants DURATION=FN, DURATION a positive whole number of ms, s, m or h "
             "(500ms, 10s, 1m), not '%s'", spec);
    return WFP_EUSAGE;
  }
  const char *fn = eq + 1;
  svc_module *m = wfp_svc_module_for(S, NULL, fn);
  const wfp_abi_func *f = m ? func_of(m, fn) : NULL;
  if (!f) {
    snprintf(err, n, "--every %s: no module has the function '%s'", spec, fn);
    return WFP_EUSAGE;
  }
  if (f->resource || f->nparams != f->ncaptures) {
    snprintf(err, n, "--every %s: '%s' must be a function without parameters", spec, fn);
    return WFP_EUSAGE;
  }
  out->name = strdup(spec);
  out->fn = strdup(fn);
  out->period_ms = v * unit;
  out->mod = m;
  out->S = S;
  if (!out->name || !out->fn) {
    snprintf(err, n, "out of memory");
    return WFP_ENOMEM;
  }
  return WFP_OK;
}

/* ---- on the committer's thread ---- */

int wfp_svc_spawn(svc *S, wfp_store *s, svc_op *op, svc_module *mod, const char *fn,
                  const char *input, size_t input_len, const char *origin, int64_t now) {
  (void)S;
  svc_spawn *ns = realloc(op->spawn, (op->nspawn + 1) * sizeof *ns);
  if (!ns)
    return WFP_ENOMEM;
  op->spawn = ns;
  svc_spawn *sp = &ns[op->nspawn];
  memset(sp, 0, sizeof *sp);
  wfp_svc_new_id(sp->id);
  sp->mod = mod;
  sp->created_ms = now;
  sp->fn = strdup(fn);
  sp->input = strndup(input, input_len);
  sp->origin = strdup(origin);
  op->nspawn++;
  if (!sp->fn || !sp->input || !sp->origin)
    return WFP_ENOMEM;
  wfp_store_new nw = {sp->id, mod->hash, fn, input, input_len, 0, origin, now, NULL, NULL};
  return s->m->inv_create(s, &nw, &sp->seq);
}

/* {"fn": FN, "args": [payload]} */
static int sub_input(const svc_sub *sub, const char *payload, size_t pn, wfp__buf *b) {
  b->len = 0;
  b->oom = false;
  wfp__buf_adds(b, "{\"fn\":");
  wfp__buf_add_jstr(b, sub->fn, strlen(sub->fn));
  wfp__buf_adds(b, ",\"args\":[");
  wfp__buf_add(b, payload, pn);
  wfp__buf_adds(b, "]}");
  return b->oom ? WFP_ENOMEM : WFP_OK;
}

static int sub_deliver(svc *S, wfp_store *s, svc_op *op, const svc_sub *sub,
                       const char *payload, size_t pn, int64_t seq, int64_t now) {
  /* the cursor first: a message another host delivered already (catching
  ** up at the same moment) makes no second invocation */
  int rc = s->m->cursor_set(s, sub->name, seq);
  if (rc)
    return rc > 0 ? WFP_OK : rc;
  wfp__buf b;
  wfp__buf_init(&b);
  char origin[600];
  snprintf(origin, sizeof origin, "subscriber %s", sub->name);
  rc = sub_input(sub, payload, pn, &b);
  if (!rc)
    rc = wfp_svc_spawn(S, s, op, sub->mod, sub->fn, b.data, b.len, origin, now);
  wfp__buf_free(&b);
  return rc;
}

int wfp_svc_subs_on_message(svc *S, wfp_store *s, svc_op *op, const char *topic, size_t tn,
                            const char *payload, size_t pn, int64_t seq, int64_t now) {
  for (int i = 0; i < S->nsubs; i++) {
    const svc_sub *sub = &S->subs[i];
    if (strlen(sub->topic) != tn || memcmp(sub->topic, topic, tn) != 0)
      continue;
    int rc = sub_deliver(S, s, op, sub, payload, pn, seq, now);
    if (rc)
      return rc;
  }
  return WFP_OK;
}

typedef struct catchup {
  svc *S;
  wfp_store *s;
  svc_op *op;
  const svc_sub *sub;
  int64_t now;
} catchup;

static int catch_one(void *ud, const wfp_store_msg *m) {
  catchup *c = ud;
  return sub_deliver(c->S, c->s, c->op, c->sub, m->payload, m->payload_len, m->seq, c->now);
}

int wfp_svc_triggers_setup(svc *S, wfp_store *s, svc_op *op, int64_t now) {
  for (int i = 0; i < S->nsubs; i++) {
    const svc_sub *sub = &S->subs[i];
    int64_t cur = 0;
    int rc = s->m->cursor_get(s, sub->name, &cur);
    if (rc < 0)
      return rc;
    if (rc == 0) {
      /* a new subscriber starts with the messages sent from now on */
      int64_t last = 0;
      if ((rc = s->m->msg_last(s, &last)) != 0 ||
          (rc = s->m->cursor_set(s, sub->name, last)) < 0)
        return rc;
      continue;
    }
    /* messages past its cursor (none, as each message moves the cursors
    ** in its own transaction; kept for stores written otherwise) */
    catchup c = {S, s, op, sub, now};
    if ((rc = s->m->msg_scan(s, sub->topic, cur, catch_one, &c)) != 0)
      return rc;
  }
  for (int i = 0; i < S->nscheds; i++) {
    svc_sched *sc = &S->scheds[i];
    int64_t due = 0;
    int rc = s->m->sched_get(s, sc->name, &due);
    if (rc < 0)
      return rc;
    if (rc == 0) {
      due = now + (int64_t)sc->period_ms;
      if ((rc = s->m->sched_set(s, sc->name, due)) != 0)
        return rc;
    }
    sc->due = due;
  }
  return WFP_OK;
}

int wfp_svc_sched_tick(svc *S, wfp_store *s, svc_op *op, int64_t now) {
  svc_sched *sc = op->sched;
  int64_t due = 0;
  int rc = s->m->sched_get(s, sc->name, &due);
  if (rc < 0)
    return rc;
  if (rc == 0)
    due = now;
  if (due > now) {
    op->next_due = due;
    return WFP_OK;
  }
  /* one run for this tick, and the ticks missed while the service was
  ** down (docs/service.md); the next one stays in phase */
  int64_t period = (int64_t)sc->period_ms;
  int64_t next = due + ((now - due) / period + 1) * period;
  char input[1200], origin[600];
  int n = snprintf(input, sizeof input, "{\"fn\":");
  wfp__buf b;
  wfp__buf_init(&b);
  wfp__buf_add_jstr(&b, sc->fn, strlen(sc->fn));
  if (b.oom || b.len + 20 > sizeof input) {
    wfp__buf_free(&b);
    return WFP_ENOMEM;
  }
  n += snprintf(input + n, sizeof input - (size_t)n, "%s,\"args\":[]}", b.data);
  wfp__buf_free(&b);
  snprintf(origin, sizeof origin, "every %s", sc->name);
  if ((rc = wfp_svc_spawn(S, s, op, sc->mod, sc->fn, input, (size_t)n, origin, now)) != 0 ||
      (rc = s->m->sched_set(s, sc->name, next)) != 0)
    return rc;
  op->next_due = next;
  return WFP_OK;
}

/* ---- the loop's side: timers ---- */

static void arm(svc_sched *sc);

static void tick_done(svc *S, svc_op *op) {
  svc_sched *sc = op->sched;
  sc->ticking = false;
  sc->due = op->next_due;
  wfp_svc_start_spawned(S, op);
  arm(sc);
}

static void on_tick(uv_timer_t *t) {
  svc_sched *sc = t->data;
  svc *S = sc->S;
  if (S->stopping || sc->ticking)
    return;
  svc_op *op = calloc(1, sizeof *op);
  if (!op) { /* again in a second */
    uv_timer_start(&sc->timer, on_tick, 1000, 0);
    return;
  }
  op->kind = SVC_OP_TICK;
  op->sched = sc;
  op->done = tick_done;
  sc->ticking = true;
  wfp_svc_submit(S, op);
}

static void arm(svc_sched *sc) {
  if (sc->S->stopping)
    return;
  int64_t left = sc->due - wfp_svc_now_ms();
  uv_timer_start(&sc->timer, on_tick, left > 0 ? (uint64_t)left : 0, 0);
}

void wfp_svc_scheds_arm(svc *S) {
  for (int i = 0; i < S->nscheds; i++) {
    svc_sched *sc = &S->scheds[i];
    uv_timer_init(S->uv, &sc->timer);
    sc->timer.data = sc;
    arm(sc);
  }
}
