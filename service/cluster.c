/*
** cluster.c: several wfp-host serve processes on one PostgreSQL store, the
** loop's side (CONTRACT section 7). A thread of its own renews this host's
** lease (every lease/3), listens for work (LISTEN wfp_work) and claims
** runnable invocations in batches when told to: on a notification, when
** another host's lease is due to end, when a sleeper left in the store is
** due, and every lease/2 in case a notification was lost. Claimed rows are
** taken up like a restart's (serve.c). A reader thread answers the
** store's reads off the loop (the API's GETs, ctx_get), and requests that
** wait for an invocation another host runs ask the store until it ends.
** Not here: SQL (store_pg.c), fences (commit.c asks the store).
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "svc.h"

#define CLAIM_LIMIT 256
#define WAIT_POLL_MS 50

/* A claimed row, copied off the cluster's thread. */
typedef struct cl_inst {
  uint64_t handle;
  char *resource, *props;
} cl_inst;

typedef struct cl_claim {
  wfp__arena a;
  wfp_store_row *rows;
  size_t n, cap;
  cl_inst *insts;
  size_t ni, icap;
  int rc;
  char err[600];
  int64_t next_due_ms, next_expiry_ms;
  int full;
  bool oom;
} cl_claim;

/* A read off the loop. */
typedef struct cl_read {
  svc_read_fn work;
  svc_after_fn after;
  void *arg;
  struct cl_read *next;
} cl_read;

/* A request waiting for an invocation another host runs. */
typedef struct rwait {
  wfp_http_req *req;
  char id[17];
  int64_t until_ms;
  bool get;
  struct rwait *next;
} rwait;

struct svc_cluster {
  svc *S;
  wfp_store *s;
  const wfp_store_cluster *m;
  int64_t lease_ms;
  const char **progs;
  int nprogs;
  /* the cluster's thread, and what it shares with the loop (under mu) */
  pthread_t thread;
  bool thread_up;
  int wake[2];
  pthread_mutex_t mu;
  bool stop;
  bool want_claim, want_handles;
  cl_claim *claimed; /* a claim's answer, for the loop */
  uint64_t hfirst, hn; /* a block fetched, for the loop (hn 0: none) */
  unsigned notes, lapses, hb_fail;
  char hb_err[600];
  uv_async_t async;
  /* the loop's */
  bool claiming, again;
  uv_timer_t poll, due, expiry;
  uint64_t next_handle, end_handle;
  uint64_t spare_first, spare_n;
  bool fetching;
  rwait *waits;
  uv_timer_t wait_timer;
  bool wait_reading;
  struct ctx_read *parked; /* context reads that failed, until the loop stopped */
  /* claimed rows whose invocation still runs here under an epoch it no
  ** longer has (another host held it between): taken up when that one ended
  ** at its fence (wfp_svc_cluster_retake) */
  cl_claim *deferred;
  size_t ndeferred; /* rows of deferred not taken up yet */
  /* the reader's thread */
  pthread_t rthread;
  bool rthread_up;
  pthread_cond_t rcv;
  cl_read *rq_h, *rq_t; /* to read, under mu */
  cl_read *rd_h, *rd_t; /* read, for the loop, under mu */
  bool rstop;
  uv_async_t rasync;
  bool stopped; /* wfp_svc_cluster_stop ran */
  /* metrics */
  uint64_t claims, claimed_rows, instances_taken, lost, notifications, heartbeats,
      heartbeat_failures, lapsed, claim_batch_max;
  double claim_seconds;
};

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void poke(svc_cluster *c) {
  char b = 1;
  ssize_t w = write(c->wake[1], &b, 1);
  (void)w; /* full pipe: it is awake already */
}

/* ---- copying claimed rows (the cluster's thread) ---- */

static const char *dupa(cl_claim *k, const char *p, size_t n) {
  if (!p)
    return NULL;
  char *d = wfp__arena_alloc(&k->a, n + 1);
  if (!d) {
    k->oom = true;
    return NULL;
  }
  memcpy(d, p, n);
  d[n] = 0;
  return d;
}

static int claim_row(void *ud, const wfp_store_row *r) {
  cl_claim *k = ud;
  if (k->n == k->cap) {
    size_t cap = k->cap ? k->cap * 2 : 64;
    wfp_store_row *n = realloc(k->rows, cap * sizeof *n);
    if (!n)
      return WFP_ENOMEM;
    k->rows = n;
    k->cap = cap;
  }
  wfp_store_row *w = &k->rows[k->n++];
  *w = *r;
  w->id = dupa(k, r->id, strlen(r->id));
  w->program = dupa(k, r->program, strlen(r->program));
  w->fn = dupa(k, r->fn, strlen(r->fn));
  w->input = dupa(k, r->input, r->input_len);
  w->origin = dupa(k, r->origin, strlen(r->origin));
  w->state = (const uint8_t *)dupa(k, (const char *)r->state, r->state_len);
  w->key = dupa(k, r->key, r->key_len);
  w->json = dupa(k, r->json, r->json_len);
  w->each = dupa(k, r->each, r->each_len);
  w->resume = dupa(k, r->resume, r->resume_len);
  w->output = r->output ? dupa(k, r->output, strlen(r->output)) : NULL;
  w->trap = r->trap ? dupa(k, r->trap, strlen(r->trap)) : NULL;
  return k->oom ? WFP_ENOMEM : WFP_OK;
}

static int claim_inst(void *ud, uint64_t handle, const char *resource, const char *props) {
  cl_claim *k = ud;
  if (k->ni == k->icap) {
    size_t cap = k->icap ? k->icap * 2 : 8;
    cl_inst *n = realloc(k->insts, cap * sizeof *n);
    if (!n)
      return WFP_ENOMEM;
    k->insts = n;
    k->icap = cap;
  }
  cl_inst *w = &k->insts[k->ni++];
  w->handle = handle;
  w->resource = (char *)dupa(k, resource, strlen(resource));
  w->props = (char *)dupa(k, props, strlen(props));
  return k->oom ? WFP_ENOMEM : WFP_OK;
}

static void claim_free(cl_claim *k) {
  if (!k)
    return;
  wfp__arena_free(&k->a);
  free(k->rows);
  free(k->insts);
  free(k);
}

static cl_claim *do_claim(svc_cluster *c) {
  cl_claim *k = calloc(1, sizeof *k);
  if (!k)
    return NULL;
  wfp__arena_init(&k->a);
  wfp_store_claim q;
  memset(&q, 0, sizeof q);
  q.size = sizeof q;
  q.programs = c->progs;
  q.nprograms = c->nprogs;
  q.limit = CLAIM_LIMIT;
  q.now_ms = wfp_svc_now_ms();
  /* a sleeper is taken a little before it is due: its timer here wakes
  ** it on time */
  q.ahead_ms = c->lease_ms / 4 < 1000 ? c->lease_ms / 4 : 1000;
  q.row = claim_row;
  q.inst = claim_inst;
  q.ud = k;
  double t0 = mono_s();
  k->rc = c->m->claim(c->s, &q);
  if (k->rc)
    snprintf(k->err, sizeof k->err, "%s",
             k->rc == WFP_ENOMEM ? "out of memory" : c->s->m->errmsg(c->s));
  k->next_due_ms = q.next_due_ms;
  k->next_expiry_ms = q.next_expiry_ms;
  k->full = q.full;
  pthread_mutex_lock(&c->mu);
  c->claim_seconds += mono_s() - t0;
  pthread_mutex_unlock(&c->mu);
  return k;
}

/* ---- the cluster's thread ---- */

static void *cluster_main(void *arg) {
  svc_cluster *c = arg;
  uint64_t period = (uint64_t)(c->lease_ms / 3 > 0 ? c->lease_ms / 3 : 1);
  uint64_t next_hb = mono_ms() + period;
  for (;;) {
    pthread_mutex_lock(&c->mu);
    bool stop = c->stop, claim = c->want_claim, handles = c->want_handles;
    c->want_claim = c->want_handles = false;
    pthread_mutex_unlock(&c->mu);
    if (stop)
      break;
    bool tell = false;
    if (claim) {
      cl_claim *k = do_claim(c);
      pthread_mutex_lock(&c->mu);
      claim_free(c->claimed); /* never: the loop takes each before asking again */
      c->claimed = k;
      pthread_mutex_unlock(&c->mu);
      tell = true;
    }
    if (handles) {
      uint64_t first = 0, n = 0;
      if (c->m->handles(c->s, &first, &n) != 0)
        n = 0;
      pthread_mutex_lock(&c->mu);
      c->hfirst = first;
      c->hn = n ? n : (uint64_t)-1; /* -1: the fetch failed */
      pthread_mutex_unlock(&c->mu);
      tell = true;
    }
    uint64_t now = mono_ms();
    if (now >= next_hb) {
      int lapsed = 0;
      int rc = c->m->heartbeat(c->s, &lapsed);
      pthread_mutex_lock(&c->mu);
      c->heartbeats++;
      if (rc) {
        c->heartbeat_failures++;
        c->hb_fail++;
        snprintf(c->hb_err, sizeof c->hb_err, "%s", c->s->m->errmsg(c->s));
        tell = true;
      } else if (lapsed) {
        c->lapses++;
        tell = true;
      }
      pthread_mutex_unlock(&c->mu);
      /* after a failure, again soon: the lease must not lapse for a blip */
      next_hb = mono_ms() + (rc ? (period < 200 ? period : 200) : period);
      now = mono_ms();
    }
    if (tell)
      uv_async_send(&c->async);
    pthread_mutex_lock(&c->mu);
    bool more = c->want_claim || c->want_handles || c->stop;
    pthread_mutex_unlock(&c->mu);
    if (more)
      continue;
    int ms = next_hb > now ? (int)(next_hb - now) : 0;
    int notes = c->m->listen(c->s, c->wake[0], ms);
    char drain[64];
    while (read(c->wake[0], drain, sizeof drain) > 0)
      ;
    if (notes > 0) {
      pthread_mutex_lock(&c->mu);
      c->notes |= (unsigned)notes;
      pthread_mutex_unlock(&c->mu);
      uv_async_send(&c->async);
    }
  }
  return NULL;
}

/* ---- claiming (the loop's side) ---- */

static void claim_now(svc_cluster *c) {
  if (c->S->stopping)
    return;
  if (c->claiming) {
    c->again = true;
    return;
  }
  c->claiming = true;
  c->again = false;
  pthread_mutex_lock(&c->mu);
  c->want_claim = true;
  pthread_mutex_unlock(&c->mu);
  poke(c);
}

static void on_claim_timer(uv_timer_t *t) { claim_now(t->data); }

/* The counts of the status page and /metrics, and its recent traps, are
** the store's, all hosts together: read again at each poll. */
typedef struct count_read {
  char **fn;
  int *status;
  uint64_t *n;
  size_t len, cap;
  int rc;
  /* the traps, newest first */
  char tid[SVC_TRAPS_KEPT][17];
  char *tfn[SVC_TRAPS_KEPT], *tmsg[SVC_TRAPS_KEPT];
  int64_t tat[SVC_TRAPS_KEPT];
  int nt;
} count_read;

static int trap_one(void *ud, const wfp_store_row *r) {
  count_read *k = ud;
  if (k->nt == SVC_TRAPS_KEPT)
    return 0;
  snprintf(k->tid[k->nt], sizeof k->tid[k->nt], "%s", r->id);
  k->tfn[k->nt] = strdup(r->fn);
  k->tmsg[k->nt] = strdup(r->trap ? r->trap : "");
  k->tat[k->nt] = r->updated_ms;
  k->nt++;
  return 0;
}

static int count_one(void *ud, const char *fn, int status, uint64_t n) {
  count_read *k = ud;
  if (k->len == k->cap) {
    size_t cap = k->cap ? k->cap * 2 : 16;
    char **f = realloc(k->fn, cap * sizeof *f);
    if (f)
      k->fn = f;
    int *st = f ? realloc(k->status, cap * sizeof *st) : NULL;
    if (st)
      k->status = st;
    uint64_t *nn = st ? realloc(k->n, cap * sizeof *nn) : NULL;
    if (!nn)
      return WFP_ENOMEM;
    k->n = nn;
    k->cap = cap;
  }
  if (!(k->fn[k->len] = strdup(fn)))
    return WFP_ENOMEM;
  k->status[k->len] = status;
  k->n[k->len++] = n;
  return 0;
}

static void count_work(svc *S, wfp_store *s, void *arg) {
  (void)S;
  count_read *k = arg;
  k->rc = s->m->load_counts(s, count_one, k);
  if (!k->rc)
    k->rc = s->m->load_traps(s, SVC_TRAPS_KEPT, trap_one, k);
}

static void count_after(svc *S, void *arg) {
  count_read *k = arg;
  if (!k->rc && !S->stopping) {
    for (size_t i = 0; i < S->stats.nfns; i++)
      memset(S->stats.fns[i].n, 0, sizeof S->stats.fns[i].n);
    for (size_t i = 0; i < k->len; i++)
      wfp_svc_count_add(S, k->fn[i], k->status[i], k->n[i]);
    /* the ring again, oldest first (its slots free what they held) */
    S->stats.ntraps = 0;
    for (int i = k->nt - 1; i >= 0; i--)
      if (k->tfn[i] && k->tmsg[i])
        wfp_svc_trap_note(S, k->tid[i], k->tfn[i], k->tmsg[i], k->tat[i]);
  }
  for (int i = 0; i < k->nt; i++) {
    free(k->tfn[i]);
    free(k->tmsg[i]);
  }
  for (size_t i = 0; i < k->len; i++)
    free(k->fn[i]);
  free(k->fn);
  free(k->status);
  free(k->n);
  free(k);
}

static void on_poll(uv_timer_t *t) {
  svc_cluster *c = t->data;
  claim_now(c);
  count_read *k = calloc(1, sizeof *k);
  if (k)
    wfp_svc_read(c->S, count_work, count_after, k);
}

static void take_claim(svc_cluster *c, cl_claim *k) {
  svc *S = c->S;
  c->claiming = false;
  if (k->rc) {
    fprintf(S->log, "wfp-host: claiming invocations failed: %s (again in %lld ms)\n", k->err,
            (long long)(c->lease_ms / 2));
    fflush(S->log);
    claim_free(k);
    return;
  }
  c->claims++;
  c->claimed_rows += k->n;
  c->instances_taken += k->ni;
  if (k->n > c->claim_batch_max)
    c->claim_batch_max = k->n;
  /* instances first: their invocations run on what the store holds */
  for (size_t i = 0; i < k->ni; i++) {
    char err[400];
    if (wfp_svc_instance_load(S, k->insts[i].handle, k->insts[i].resource, k->insts[i].props,
                              err, sizeof err) != 0)
      fprintf(S->log, "wfp-host: instance %llu: %s\n", (unsigned long long)k->insts[i].handle,
              err);
  }
  if (k->ni)
    c->m->hold(c->s);
  for (size_t i = 0; i < k->n; i++) {
    const wfp_store_row *r = &k->rows[i];
    svc_inv *live = wfp_svc_find(S, r->id);
    if (live && live->epoch == r->epoch) /* running here, held here all along */
      continue;
    if (live) {
      /* it runs here under an older epoch (made here, waiting for its
      ** instance, while another host held the instance): its next record
      ** fails its fence and it ends; then the row is taken up */
      bool again = false; /* claimed back twice before it ended: once */
      for (size_t j = 0; c->deferred && j < c->deferred->n && !again; j++)
        again = c->deferred->rows[j].id && strcmp(c->deferred->rows[j].id, r->id) == 0;
      if (again)
        continue;
      if (!c->deferred && (c->deferred = calloc(1, sizeof *c->deferred)) != NULL)
        wfp__arena_init(&c->deferred->a);
      if (!c->deferred || claim_row(c->deferred, r) != 0)
        fprintf(S->log, "wfp-host: invocation %s cannot be taken up: out of memory\n", r->id);
      else
        c->ndeferred++;
      continue;
    }
    if (wfp_svc_take_up(S, r) == WFP_ENOMEM)
      fprintf(S->log, "wfp-host: invocation %s cannot be taken up: out of memory\n", r->id);
  }
  if (k->n)
    fprintf(S->log,
            "{\"time_ms\":%lld,\"event\":\"claim\",\"invocations\":%zu,\"instances\":%zu}\n",
            (long long)wfp_svc_now_ms(), k->n, k->ni);
  /* when to look again */
  if (k->next_due_ms > 0) {
    int64_t left = k->next_due_ms - wfp_svc_now_ms() - c->lease_ms / 4;
    uv_timer_start(&c->due, on_claim_timer, left > 0 ? (uint64_t)left : 0, 0);
  }
  if (k->next_expiry_ms >= 0)
    uv_timer_start(&c->expiry, on_claim_timer, (uint64_t)k->next_expiry_ms + 5, 0);
  bool again = c->again || k->full;
  claim_free(k);
  if (again)
    claim_now(c);
}

static void handles_fetched(svc_cluster *c, uint64_t first, uint64_t n) {
  c->fetching = false;
  if (n == (uint64_t)-1)
    return; /* asked again when the next instance is made */
  if (c->next_handle >= c->end_handle) {
    c->next_handle = first;
    c->end_handle = first + n;
  } else {
    c->spare_first = first;
    c->spare_n = n;
  }
}

static void on_async(uv_async_t *h) {
  svc_cluster *c = h->data;
  svc *S = c->S;
  pthread_mutex_lock(&c->mu);
  cl_claim *k = c->claimed;
  c->claimed = NULL;
  uint64_t hf = c->hfirst, hn = c->hn;
  c->hn = 0;
  unsigned notes = c->notes, lapses = c->lapses, fails = c->hb_fail;
  c->notes = c->lapses = c->hb_fail = 0;
  char hb_err[600];
  snprintf(hb_err, sizeof hb_err, "%s", c->hb_err);
  pthread_mutex_unlock(&c->mu);
  if (hn)
    handles_fetched(c, hf, hn);
  if (lapses) {
    c->lapsed += lapses;
    fprintf(S->log, "wfp-host: this host's lease had lapsed (paused, or cut off from the "
                    "store): what another host took over meanwhile is dropped here at its next "
                    "commit\n");
  }
  if (fails)
    fprintf(S->log, "wfp-host: renewing the lease failed: %s\n", hb_err);
  if (k) {
    if (S->stopping)
      claim_free(k);
    else
      take_claim(c, k);
  }
  if (notes & WFP_STORE_NOTE_WORK) {
    c->notifications++;
    claim_now(c);
  }
  fflush(S->log);
}

/* ---- reads off the loop ---- */

static void *reader_main(void *arg) {
  svc_cluster *c = arg;
  pthread_mutex_lock(&c->mu);
  for (;;) {
    while (!c->rq_h && !c->rstop)
      pthread_cond_wait(&c->rcv, &c->mu);
    if (!c->rq_h)
      break;
    cl_read *r = c->rq_h;
    c->rq_h = r->next;
    if (!c->rq_h)
      c->rq_t = NULL;
    pthread_mutex_unlock(&c->mu);
    r->work(c->S, c->s, r->arg);
    pthread_mutex_lock(&c->mu);
    r->next = NULL;
    if (c->rd_t)
      c->rd_t->next = r;
    else
      c->rd_h = r;
    c->rd_t = r;
    pthread_mutex_unlock(&c->mu);
    uv_async_send(&c->rasync);
    pthread_mutex_lock(&c->mu);
  }
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

static void on_read(uv_async_t *h) {
  svc_cluster *c = h->data;
  pthread_mutex_lock(&c->mu);
  cl_read *r = c->rd_h;
  c->rd_h = c->rd_t = NULL;
  pthread_mutex_unlock(&c->mu);
  while (r) {
    cl_read *n = r->next;
    r->after(c->S, r->arg);
    free(r);
    r = n;
  }
}

void wfp_svc_read(svc *S, svc_read_fn work, svc_after_fn after, void *arg) {
  svc_cluster *c = S->cl;
  cl_read *r = c && c->rthread_up ? calloc(1, sizeof *r) : NULL;
  if (!r) {
    /* one process on its store (SQLite): reads are local and quick */
    work(S, S->store, arg);
    after(S, arg);
    return;
  }
  r->work = work;
  r->after = after;
  r->arg = arg;
  pthread_mutex_lock(&c->mu);
  if (c->rq_t)
    c->rq_t->next = r;
  else
    c->rq_h = r;
  c->rq_t = r;
  pthread_cond_signal(&c->rcv);
  pthread_mutex_unlock(&c->mu);
}

/* ---- ctx_get on the store (every host sees every commit) ---- */

typedef struct ctx_read {
  wfp_effect_req *req;
  char *key;
  size_t len;
  int rc;
  int64_t v;
  char err[600];
  struct ctx_read *next;
} ctx_read;

static void ctx_work(svc *S, wfp_store *s, void *arg) {
  (void)S;
  ctx_read *r = arg;
  r->rc = s->m->cluster->ctx_get(s, r->key, r->len, &r->v);
  if (r->rc < 0)
    snprintf(r->err, sizeof r->err, "%s", s->m->errmsg(s));
}

static void ctx_after(svc *S, void *arg) {
  ctx_read *r = arg;
  if (r->rc == 1) {
    wfp_effect_complete_i64(r->req, r->v);
  } else if (r->rc == 0) {
    char m[300];
    snprintf(m, sizeof m, "context key '%.*s' is not set", (int)(r->len > 200 ? 200 : r->len),
             r->key);
    wfp_effect_fail(r->req, m);
  } else {
    /* as a failed commit: the service stops, nothing is lost; the request
    ** waits for the loop to have stopped (wfp_svc_cluster_stop), so that
    ** no step goes on from a read that did not happen */
    if (!S->stopping) {
      fprintf(S->log, "wfp-host: error: the store failed: %s; stopping (nothing that was "
                      "answered is lost)\n",
              r->err);
      fflush(S->log);
      S->exit_code = 3;
      wfp_svc_stop(S);
    }
    r->next = S->cl->parked;
    S->cl->parked = r;
    return;
  }
  free(r->key);
  free(r);
}

static svc_inv *top_inv(wfp_invocation *inv) {
  wfp_invocation *p;
  while ((p = wfp_invocation_parent(inv)) != NULL)
    inv = p;
  return wfp_invocation_data(inv);
}

static int h_ctx_get(void *ud, wfp_effect_req *req) {
  svc *S = ud;
  size_t len = 0;
  const char *key = wfp_effect_key(req, &len);
  /* a row of a fan-out sees the writes of its fan-out, not committed yet */
  svc_inv *si = top_inv(wfp_effect_invocation(req));
  for (size_t i = si ? si->nheld : 0; i-- > 0;) {
    const svc_write *w = &si->held[i];
    if (w->kind == SVC_W_CTX && w->key_len == len && memcmp(w->key, key, len) == 0)
      return wfp_effect_complete_i64(req, w->i64);
  }
  ctx_read *r = calloc(1, sizeof *r);
  if (!r || !(r->key = malloc(len ? len : 1))) {
    free(r);
    return WFP_ENOMEM;
  }
  memcpy(r->key, key, len);
  r->len = len;
  r->req = req;
  wfp_svc_read(S, ctx_work, ctx_after, r);
  return WFP_OK;
}

/* ---- instances ---- */

int wfp_svc_instance_new(svc *S, svc_module *mod, const char *resource, uint64_t *h) {
  svc_cluster *c = S->cl;
  if (!c)
    return wfp_env_instance_new(S->env, mod->m, resource, h);
  if (c->next_handle >= c->end_handle && c->spare_n) {
    c->next_handle = c->spare_first;
    c->end_handle = c->spare_first + c->spare_n;
    c->spare_n = 0;
  }
  if (c->next_handle >= c->end_handle || !c->next_handle) {
    if (!c->fetching) {
      c->fetching = true;
      pthread_mutex_lock(&c->mu);
      c->want_handles = true;
      pthread_mutex_unlock(&c->mu);
      poke(c);
    }
    return WFP_ELIMIT;
  }
  uint64_t next = c->next_handle;
  int rc = wfp_env_instance_restore(S->env, mod->m, resource, next);
  if (rc)
    return rc;
  c->next_handle++;
  *h = next;
  /* the next block before this one runs out */
  if (!c->spare_n && !c->fetching && c->end_handle - c->next_handle < 500) {
    c->fetching = true;
    pthread_mutex_lock(&c->mu);
    c->want_handles = true;
    pthread_mutex_unlock(&c->mu);
    poke(c);
  }
  return WFP_OK;
}

typedef struct inst_fetch {
  svc_fetch_fn again;
  wfp_http_req *req;
  uint64_t handle;
  int rc;
  char *resource, *props;
  char err[600];
} inst_fetch;

static int fetch_cb(void *ud, uint64_t handle, const char *resource, const char *props) {
  (void)handle;
  inst_fetch *f = ud;
  f->resource = strdup(resource);
  f->props = strdup(props);
  return f->resource && f->props ? 0 : WFP_ENOMEM;
}

static void fetch_work(svc *S, wfp_store *s, void *arg) {
  (void)S;
  inst_fetch *f = arg;
  f->rc = s->m->get_instance(s, f->handle, fetch_cb, f);
  if (f->rc < 0)
    snprintf(f->err, sizeof f->err, "%s",
             f->rc == WFP_ENOMEM ? "out of memory" : s->m->errmsg(s));
}

static void fetch_after(svc *S, void *arg) {
  inst_fetch *f = arg;
  char err[400];
  if (S->stopping)
    wfp_http_error(f->req, 503, "the service is stopping");
  else if (f->rc < 0)
    wfp_http_error(f->req, 500, "the store: %s", f->err);
  else if (f->rc == 0 || wfp_env_instance_resource(S->env, f->handle) ||
           wfp_svc_instance_load(S, f->handle, f->resource, f->props, err, sizeof err) != 0 ||
           !wfp_env_instance_resource(S->env, f->handle))
    /* none, or of a resource no module given here has */
    f->again(S, f->req, false);
  else
    f->again(S, f->req, true);
  free(f->resource);
  free(f->props);
  free(f);
}

int wfp_svc_instance_fetch(svc *S, wfp_http_req *req, uint64_t h, svc_fetch_fn again) {
  if (!S->cl)
    return 0;
  inst_fetch *f = calloc(1, sizeof *f);
  if (!f)
    return 0;
  f->again = again;
  f->req = req;
  f->handle = h;
  wfp_svc_read(S, fetch_work, fetch_after, f);
  return 1;
}

/* ---- requests that wait for an invocation another host runs ---- */

typedef struct wait_read {
  size_t n;
  char (*ids)[17];
  int *status; /* -1: none such */
  char **json;
  int rc;
} wait_read;

typedef struct one_row {
  int status;
  char *json;
} one_row;

static int wait_row(void *ud, const wfp_store_row *r) {
  one_row *o = ud;
  o->status = r->status;
  wfp__buf b;
  wfp__buf_init(&b);
  wfp_svc_row_json(&b, r);
  o->json = b.oom ? NULL : wfp__buf_take(&b, NULL);
  wfp__buf_free(&b);
  return o->json ? 0 : WFP_ENOMEM;
}

static void wait_work(svc *S, wfp_store *s, void *arg) {
  (void)S;
  wait_read *w = arg;
  for (size_t i = 0; i < w->n; i++) {
    one_row o = {-1, NULL};
    int rc = s->m->get_inv(s, w->ids[i], wait_row, &o);
    w->status[i] = rc == 1 ? o.status : -1;
    w->json[i] = o.json;
    if (rc < 0)
      w->rc = rc;
  }
}

static void answer_wait(rwait *q, int status, const char *json) {
  if (!json && q->get) {
    wfp_http_error(q->req, 404, "no invocation '%s'", q->id);
  } else if (json && (status != WFP_STORE_PENDING || q->get)) {
    wfp_http_respond(q->req, 200, "application/json", json, strlen(json));
  } else {
    char body[96];
    int n = snprintf(body, sizeof body, "{\"id\":\"%s\",\"status\":\"pending\"}", q->id);
    wfp_http_respond(q->req, 202, "application/json", body, (size_t)n);
  }
}

static void wait_arm(svc_cluster *c);

static void wait_after(svc *S, void *arg) {
  wait_read *w = arg;
  svc_cluster *c = S->cl;
  c->wait_reading = false;
  int64_t now = wfp_svc_now_ms();
  for (rwait **p = &c->waits; *p;) {
    rwait *q = *p;
    size_t k = 0;
    while (k < w->n && strcmp(w->ids[k], q->id) != 0)
      k++;
    bool ended = k < w->n && w->status[k] > WFP_STORE_PENDING;
    if (S->stopping) {
      wfp_http_error(q->req, 503, "the service is stopping");
    } else if (ended || (k < w->n && now >= q->until_ms)) {
      answer_wait(q, w->status[k], w->json[k]);
    } else {
      p = &q->next;
      continue;
    }
    *p = q->next;
    free(q);
  }
  for (size_t i = 0; i < w->n; i++)
    free(w->json[i]);
  free(w->ids);
  free(w->status);
  free(w->json);
  free(w);
  wait_arm(c);
}

static void on_wait_timer(uv_timer_t *t) {
  svc_cluster *c = t->data;
  if (c->wait_reading || !c->waits)
    return;
  size_t n = 0;
  for (rwait *q = c->waits; q; q = q->next)
    n++;
  wait_read *w = calloc(1, sizeof *w);
  if (w) {
    w->ids = calloc(n, sizeof *w->ids);
    w->status = calloc(n, sizeof *w->status);
    w->json = calloc(n, sizeof *w->json);
  }
  if (!w || !w->ids || !w->status || !w->json) {
    if (w) {
      free(w->ids);
      free(w->status);
      free(w->json);
    }
    free(w);
    wait_arm(c);
    return;
  }
  for (rwait *q = c->waits; q; q = q->next)
    memcpy(w->ids[w->n++], q->id, 17);
  c->wait_reading = true;
  wfp_svc_read(c->S, wait_work, wait_after, w);
}

static void wait_arm(svc_cluster *c) {
  if (c->waits && !c->wait_reading && !c->S->stopping)
    uv_timer_start(&c->wait_timer, on_wait_timer, WAIT_POLL_MS, 0);
}

void wfp_svc_wait_remote(svc *S, wfp_http_req *req, const char *id, int64_t ms, bool get) {
  svc_cluster *c = S->cl;
  if (S->stopping || (c && c->stopped)) {
    /* the waits were answered already (wfp_svc_cluster_stop): a request
    ** that comes to wait now (a commit done while the service stops) is
    ** answered at once */
    wfp_http_error(req, 503, "the service is stopping");
    return;
  }
  rwait *q = c ? calloc(1, sizeof *q) : NULL;
  if (!q) {
    wfp_http_error(req, 500, "out of memory");
    return;
  }
  q->req = req;
  snprintf(q->id, sizeof q->id, "%s", id);
  q->until_ms = wfp_svc_now_ms() + ms;
  q->get = get;
  q->next = c->waits;
  c->waits = q;
  wait_arm(c);
}

static void free_data(uv_handle_t *h) { free(h->data); }

void wfp_svc_cluster_retake(svc *S, const char *id) {
  svc_cluster *c = S->cl;
  if (!c || !c->ndeferred || S->stopping)
    return;
  for (size_t i = 0; i < c->deferred->n; i++) {
    wfp_store_row *r = &c->deferred->rows[i];
    if (!r->id || strcmp(r->id, id) != 0)
      continue;
    r->id = NULL;
    c->ndeferred--;
    if (wfp_svc_take_up(S, r) == WFP_ENOMEM)
      fprintf(S->log, "wfp-host: invocation %s cannot be taken up: out of memory\n", id);
    break;
  }
  if (!c->ndeferred) {
    claim_free(c->deferred);
    c->deferred = NULL;
  }
}

void wfp_svc_cluster_lost(svc *S, svc_inv *si) {
  svc_cluster *c = S->cl;
  if (!c)
    return;
  c->lost++;
  /* its waiters wait for the host that took it over */
  while (si->waiters) {
    svc_waiter *w = si->waiters;
    si->waiters = w->next;
    w->si = NULL;
    uv_timer_stop(&w->timer);
    int64_t left = (int64_t)uv_timer_get_due_in(&w->timer);
    wfp_http_req *req = w->req;
    w->req = NULL;
    uv_close((uv_handle_t *)&w->timer, free_data);
    wfp_svc_wait_remote(S, req, si->id, left, w->get);
  }
}

/* ---- metrics ---- */

void wfp_svc_cluster_metrics(svc *S, wfp__buf *b) {
  svc_cluster *c = S->cl;
  if (!c)
    return;
  pthread_mutex_lock(&c->mu);
  uint64_t hb = c->heartbeats, hbf = c->heartbeat_failures;
  double cs = c->claim_seconds;
  pthread_mutex_unlock(&c->mu);
  wfp__buf_printf(
      b,
      "# HELP wfp_cluster_leases_held Invocations this host holds under its lease.\n"
      "# TYPE wfp_cluster_leases_held gauge\nwfp_cluster_leases_held %zu\n"
      "# HELP wfp_cluster_claims_total Claims made (FOR UPDATE SKIP LOCKED batches).\n"
      "# TYPE wfp_cluster_claims_total counter\nwfp_cluster_claims_total %llu\n"
      "# HELP wfp_cluster_claimed_total Invocations claimed: posted elsewhere, released, or "
      "taken over from a host whose lease ended.\n"
      "# TYPE wfp_cluster_claimed_total counter\nwfp_cluster_claimed_total %llu\n"
      "# HELP wfp_cluster_claim_batch_max The largest claim.\n"
      "# TYPE wfp_cluster_claim_batch_max gauge\nwfp_cluster_claim_batch_max %llu\n"
      "# HELP wfp_cluster_claim_seconds_total Time spent claiming.\n"
      "# TYPE wfp_cluster_claim_seconds_total counter\nwfp_cluster_claim_seconds_total %.6f\n"
      "# HELP wfp_cluster_instances_taken_total Resource instances taken over.\n"
      "# TYPE wfp_cluster_instances_taken_total counter\n"
      "wfp_cluster_instances_taken_total %llu\n"
      "# HELP wfp_cluster_lost_total Invocations dropped here because another host took them "
      "over (a fence held).\n"
      "# TYPE wfp_cluster_lost_total counter\nwfp_cluster_lost_total %llu\n"
      "# HELP wfp_cluster_notifications_total Work notifications (LISTEN wfp_work).\n"
      "# TYPE wfp_cluster_notifications_total counter\nwfp_cluster_notifications_total %llu\n"
      "# HELP wfp_cluster_heartbeats_total Lease renewals.\n"
      "# TYPE wfp_cluster_heartbeats_total counter\nwfp_cluster_heartbeats_total %llu\n"
      "# HELP wfp_cluster_heartbeat_failures_total Lease renewals that failed.\n"
      "# TYPE wfp_cluster_heartbeat_failures_total counter\n"
      "wfp_cluster_heartbeat_failures_total %llu\n"
      "# HELP wfp_cluster_lease_lapses_total Renewals that found this host's lease ended.\n"
      "# TYPE wfp_cluster_lease_lapses_total counter\nwfp_cluster_lease_lapses_total %llu\n",
      S->nlive, (unsigned long long)c->claims, (unsigned long long)c->claimed_rows,
      (unsigned long long)c->claim_batch_max, cs, (unsigned long long)c->instances_taken,
      (unsigned long long)c->lost, (unsigned long long)c->notifications,
      (unsigned long long)hb, (unsigned long long)hbf, (unsigned long long)c->lapsed);
}

/* ---- start and stop ---- */

int wfp_svc_cluster_start(svc *S, int64_t lease_ms, char *err, size_t errlen) {
  const wfp_store_cluster *m = S->store->m->cluster;
  if (!m)
    return WFP_OK;
  svc_cluster *c = calloc(1, sizeof *c);
  if (!c || !(c->progs = calloc((size_t)S->nmods + 1, sizeof *c->progs))) {
    free(c);
    snprintf(err, errlen, "out of memory");
    return WFP_ENOMEM;
  }
  c->S = S;
  c->s = S->store;
  c->m = m;
  c->lease_ms = lease_ms;
  c->wake[0] = c->wake[1] = -1;
  for (int i = 0; i < S->nmods; i++) {
    bool seen = false;
    for (int k = 0; k < c->nprogs; k++)
      seen |= strcmp(c->progs[k], S->mods[i].hash) == 0;
    if (!seen)
      c->progs[c->nprogs++] = S->mods[i].hash;
  }
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->rcv, NULL);
  S->cl = c;
  /* the first block of instance handles, before anything is served */
  uint64_t first = 0, n = 0;
  if (m->handles(S->store, &first, &n) != 0) {
    snprintf(err, errlen, "%s", S->store->m->errmsg(S->store));
    return WFP_EIO;
  }
  c->next_handle = first;
  c->end_handle = first + n;
  if (pipe(c->wake) != 0) {
    snprintf(err, errlen, "cannot make a pipe: %s", strerror(errno));
    return WFP_EIO;
  }
  for (int i = 0; i < 2; i++) {
    fcntl(c->wake[i], F_SETFL, fcntl(c->wake[i], F_GETFL) | O_NONBLOCK);
    fcntl(c->wake[i], F_SETFD, FD_CLOEXEC);
  }
  uv_async_init(S->uv, &c->async, on_async);
  c->async.data = c;
  uv_async_init(S->uv, &c->rasync, on_read);
  c->rasync.data = c;
  uv_timer_init(S->uv, &c->poll);
  uv_timer_init(S->uv, &c->due);
  uv_timer_init(S->uv, &c->expiry);
  uv_timer_init(S->uv, &c->wait_timer);
  c->poll.data = c->due.data = c->expiry.data = c->wait_timer.data = c;
  if (pthread_create(&c->thread, NULL, cluster_main, c) != 0) {
    snprintf(err, errlen, "cannot start a thread");
    return WFP_EIO;
  }
  c->thread_up = true;
  if (pthread_create(&c->rthread, NULL, reader_main, c) != 0) {
    snprintf(err, errlen, "cannot start a thread");
    return WFP_EIO;
  }
  c->rthread_up = true;
  /* ctx_get reads what every host committed */
  wfp_effect_handlers h;
  memset(&h, 0, sizeof h);
  h.version = WFP_EFFECT_HANDLERS_VERSION;
  h.size = sizeof h;
  h.ud = S;
  h.fn[WFP_EFFECT_CTX_GET_I64] = h_ctx_get;
  wfp_loop_set_handlers(S->loop, &h);
  return WFP_OK;
}

void wfp_svc_cluster_go(svc *S) {
  svc_cluster *c = S->cl;
  if (!c)
    return;
  uint64_t every = (uint64_t)(c->lease_ms / 2 > 0 ? c->lease_ms / 2 : 1);
  uv_timer_start(&c->poll, on_poll, every, every);
  claim_now(c);
}

static void close_timer(uv_timer_t *t) {
  if (t->data)
    uv_close((uv_handle_t *)t, NULL);
}

void wfp_svc_cluster_stop(svc *S) {
  svc_cluster *c = S->cl;
  if (!c)
    return;
  c->stopped = true;
  pthread_mutex_lock(&c->mu);
  c->stop = true;
  c->rstop = true;
  pthread_cond_signal(&c->rcv);
  pthread_mutex_unlock(&c->mu);
  if (c->wake[1] >= 0)
    poke(c);
  if (c->thread_up)
    pthread_join(c->thread, NULL);
  if (c->rthread_up)
    pthread_join(c->rthread, NULL);
  c->thread_up = c->rthread_up = false;
  /* reads not done: their after callbacks see the service stopping */
  pthread_mutex_lock(&c->mu);
  cl_read *r = c->rq_h;
  c->rq_h = c->rq_t = NULL;
  pthread_mutex_unlock(&c->mu);
  on_read(&c->rasync);
  while (r) {
    cl_read *n = r->next;
    r->after(S, r->arg);
    free(r);
    r = n;
  }
  while (c->waits) {
    rwait *q = c->waits;
    c->waits = q->next;
    wfp_http_error(q->req, 503, "the service is stopping");
    free(q);
  }
  while (c->parked) {
    ctx_read *p = c->parked;
    c->parked = p->next;
    wfp_effect_fail(p->req, "the store could not be read");
    free(p->key);
    free(p);
  }
  if (c->async.data) {
    uv_close((uv_handle_t *)&c->async, NULL);
    uv_close((uv_handle_t *)&c->rasync, NULL);
    close_timer(&c->poll);
    close_timer(&c->due);
    close_timer(&c->expiry);
    close_timer(&c->wait_timer);
  }
}

void wfp_svc_cluster_leave(svc *S) {
  svc_cluster *c = S->cl;
  if (!c)
    return;
  if (c->m->leave(S->store) != 0)
    fprintf(S->log, "wfp-host: letting go of this host's invocations failed: %s (others take "
                    "them over when its lease ends)\n",
            S->store->m->errmsg(S->store));
}

void wfp_svc_cluster_free(svc *S) {
  svc_cluster *c = S->cl;
  if (!c)
    return;
  claim_free(c->claimed);
  claim_free(c->deferred);
  if (c->wake[0] >= 0)
    close(c->wake[0]);
  if (c->wake[1] >= 0)
    close(c->wake[1]);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->rcv);
  free(c->progs);
  free(c);
  S->cl = NULL;
}
