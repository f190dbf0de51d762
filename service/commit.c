/*
** commit.c: the committer: group commit on a thread of its own. The loop
** hands over ops (a new invocation, a step's record with the write its
** effect made, an end, ...); the committer takes everything queued, applies
** it in order inside one transaction, commits, and gives the ops back to
** the loop's thread, which then lets their invocations go on. A crash
** loses a suffix of the queue, never a hole in it: an invocation that read
** another's uncommitted write is never durable without it.
**
** db_query in the store's database runs here too, in the open transaction
** (a runner's thread waits for it): the transaction then stays open until
** the record of that query's step arrives, so that the query's writes and
** the step commit together (queries arriving meanwhile wait for the next
** transaction). Not here: what the ops mean to the loop (serve.c).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "svc.h"

struct svc_committer {
  svc *S;
  wfp_store *s;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  svc_op *qh, *qt; /* handed over, under mu */
  svc_op *dh, *dt; /* committed, for the loop, under mu */
  svc_op *xh;      /* not committed (a failure, the end), with a request to
                   ** answer: for the loop, under mu */
  bool stop;       /* under mu: finish and end */
  bool stopped;    /* under mu: the thread ended; queries are not run */
  bool running;
  char failure[600];
  bool failed;     /* under mu */
  uv_async_t async;
  /* the committer's own */
  int64_t *holds; /* invocations whose query waits for its record */
  size_t nholds, holds_cap;
  uint64_t txns, ops;
  uint64_t batch_hist[SVC_BATCH_BUCKETS + 1];
  double seconds;
};

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void wfp_svc_op_free(svc_op *op) {
  if (!op)
    return;
  free(op->fn);
  free(op->input);
  free(op->origin);
  free(op->idem);
  free(op->state);
  free(op->key);
  free(op->json);
  free(op->each);
  free(op->resume);
  free(op->text);
  for (size_t i = 0; i < op->nw; i++) {
    free(op->w[i].key);
    free(op->w[i].json);
  }
  free(op->w);
  free(op->resource);
  free(op->props);
  for (size_t i = 0; i < op->nspawn; i++) {
    free(op->spawn[i].fn);
    free(op->spawn[i].input);
    free(op->spawn[i].origin);
  }
  free(op->spawn);
  free(op);
}

/* ---- holds ---- */

static bool hold_add(svc_committer *c, int64_t seq) {
  if (c->nholds == c->holds_cap) {
    size_t cap = c->holds_cap ? c->holds_cap * 2 : 16;
    int64_t *n = realloc(c->holds, cap * sizeof *n);
    if (!n)
      return false;
    c->holds = n;
    c->holds_cap = cap;
  }
  c->holds[c->nholds++] = seq;
  return true;
}

static void hold_release(svc_committer *c, int64_t seq) {
  for (size_t i = 0; i < c->nholds; i++)
    if (c->holds[i] == seq) {
      c->holds[i] = c->holds[--c->nholds];
      return;
    }
}

/* ---- applying one op ---- */

static int apply_writes(svc_committer *c, svc_op *op, int64_t now) {
  wfp_store *s = c->s;
  for (size_t i = 0; i < op->nw; i++) {
    svc_write *w = &op->w[i];
    int rc = 0;
    switch (w->kind) {
    case SVC_W_CTX:
      /* --ctx on a store several hosts share: only where no host set it */
      rc = op->kind == SVC_OP_SETUP && s->m->cluster
               ? s->m->cluster->ctx_default(s, w->key, w->key_len, w->i64)
               : s->m->ctx_set(s, w->key, w->key_len, w->i64);
      break;
    case SVC_W_MSG: {
      int64_t seq = 0;
      rc = s->m->msg_add(s, w->key, w->key_len, w->json, w->json_len, op->id, now, &seq);
      if (!rc)
        rc = wfp_svc_subs_on_message(c->S, s, op, w->key, w->key_len, w->json, w->json_len,
                                     seq, now);
      break;
    }
    case SVC_W_INST:
      rc = s->m->inst_put(s, w->handle, w->key, w->json);
      break;
    default:
      break;
    }
    if (rc)
      return rc;
  }
  return WFP_OK;
}

/* Several hosts: 1 when the op's invocation is still this host's (its
** row locked to the commit), 0 when another host took it over (op->lost:
** nothing of the op is written). */
static int fenced(wfp_store *s, svc_op *op) {
  if (!s->m->cluster || !op->epoch)
    return 1;
  int rc = s->m->cluster->fence(s, op->seq, op->epoch);
  if (rc == 0)
    op->lost = true;
  return rc;
}

static int apply(svc_committer *c, svc_op *op) {
  wfp_store *s = c->s;
  int64_t now = wfp_svc_now_ms();
  int rc = WFP_OK;
  switch (op->kind) {
  case SVC_OP_CREATE:
    op->create.owned_out = &op->owned;
    op->create.epoch_out = &op->epoch;
    op->owned = 1;
    if (op->idem) {
      rc = s->m->idem_get(s, op->idem, op->found_id);
      if (rc == WFP_ELIMIT) { /* another host takes the same key now */
        op->busy = true;
        return WFP_OK;
      }
      if (rc < 0)
        return rc;
      if (rc == 1) {
        op->found = true;
        return WFP_OK;
      }
    }
    op->create.now_ms = now;
    if ((rc = s->m->inv_create(s, &op->create, &op->seq)) != 0)
      return rc;
    if (op->idem)
      rc = s->m->idem_put(s, op->idem, op->id, now);
    return rc;
  case SVC_OP_STEP:
    op->st.now_ms = now;
    if ((rc = fenced(s, op)) <= 0) {
      hold_release(c, op->seq);
      return rc;
    }
    if ((rc = s->m->inv_step(s, &op->st)) != 0)
      return rc;
    hold_release(c, op->seq);
    return apply_writes(c, op, now);
  case SVC_OP_END:
    if ((rc = fenced(s, op)) <= 0) {
      hold_release(c, op->seq);
      return rc;
    }
    if ((rc = apply_writes(c, op, now)) != 0)
      return rc;
    hold_release(c, op->seq);
    return s->m->inv_end(s, op->seq, op->status, op->text, op->steps, op->fuel, now);
  case SVC_OP_INSTANCE:
    return s->m->inst_put(s, op->handle, op->resource, op->props);
  case SVC_OP_TICK:
    return wfp_svc_sched_tick(c->S, s, op, now);
  case SVC_OP_SETUP:
    if ((rc = wfp_svc_triggers_setup(c->S, s, op, now)) != 0)
      return rc;
    return apply_writes(c, op, now);
  case SVC_OP_RELEASE:
    hold_release(c, op->seq);
    /* several hosts: another one (or this one) claims it again */
    if (s->m->cluster && op->epoch)
      return s->m->cluster->release(s, op->seq, op->epoch);
    return WFP_OK;
  case SVC_OP_QUERY:
    if (!s->m->db_run)
      return WFP_OK;
    /* a query of an invocation another host took over is not run */
    if ((rc = fenced(s, op)) <= 0)
      return rc;
    if ((rc = s->m->db_run(s, op->job)) != 0)
      return rc;
    /* a statement that wrote waits for its step's record: they commit as
    ** one */
    if (op->hold && !wfp_db_job_readonly(op->job) && !hold_add(c, op->seq))
      return WFP_ENOMEM;
    return WFP_OK;
  default:
    return WFP_OK;
  }
}

/* ---- the thread ---- */

/* A query's waiting runner goes on (run or not). The op is the runner's:
** not touched after this. */
static void query_done(svc_committer *c, svc_op *op) {
  pthread_mutex_lock(&c->mu);
  op->ran = true;
  pthread_cond_signal(&op->ran_cv);
  pthread_mutex_unlock(&c->mu);
}

typedef struct oplist {
  svc_op *h, *t;
} oplist;

static void push(oplist *l, svc_op *op) {
  op->next = NULL;
  if (l->t)
    l->t->next = op;
  else
    l->h = op;
  l->t = op;
}

/* Applies batch in order into applied; queries when allowed, else they
** wait in deferred. The first failure's code. */
static int process(svc_committer *c, svc_op *batch, bool queries, oplist *applied,
                   oplist *deferred, int rc) {
  while (batch) {
    svc_op *op = batch;
    batch = op->next;
    if (op->kind == SVC_OP_QUERY && !queries) {
      push(deferred, op);
      continue;
    }
    if (!rc)
      rc = apply(c, op);
    if (op->kind == SVC_OP_QUERY)
      query_done(c, op);
    else
      push(applied, op);
  }
  return rc;
}

static void free_list(svc_op *op) {
  while (op) {
    svc_op *n = op->next;
    wfp_svc_op_free(op);
    op = n;
  }
}

/* Ops that will not commit (the committer's thread): one a request waits
** for goes to the loop, which answers it 503 (answered_dropped). */
static void drop_list(svc_committer *c, svc_op *op) {
  while (op) {
    svc_op *n = op->next;
    if (op->req && op->kind != SVC_OP_QUERY) {
      pthread_mutex_lock(&c->mu);
      op->next = c->xh;
      c->xh = op;
      pthread_mutex_unlock(&c->mu);
    } else {
      wfp_svc_op_free(op);
    }
    op = n;
  }
}

/* The loop's thread. */
static void answer_dropped(svc_committer *c) {
  pthread_mutex_lock(&c->mu);
  svc_op *op = c->xh;
  c->xh = NULL;
  pthread_mutex_unlock(&c->mu);
  while (op) {
    svc_op *n = op->next;
    wfp_http_error(op->req, 503, "the service is stopping");
    op->req = NULL;
    wfp_svc_op_free(op);
    op = n;
  }
}

static void fail_with(svc_committer *c, int rc) {
  pthread_mutex_lock(&c->mu);
  if (!c->failed) {
    c->failed = true;
    snprintf(c->failure, sizeof c->failure, "the store failed: %s",
             rc == WFP_ENOMEM ? "out of memory" : c->s->m->errmsg(c->s));
  }
  pthread_mutex_unlock(&c->mu);
  uv_async_send(&c->async);
}

static void *run(void *arg) {
  svc_committer *c = arg;
  oplist deferred = {NULL, NULL};
  pthread_mutex_lock(&c->mu);
  for (;;) {
    while (!c->qh && !deferred.h && !c->stop)
      pthread_cond_wait(&c->cv, &c->mu);
    if (!c->qh && !deferred.h)
      break; /* stopped, and nothing left */
    /* the queries that waited first, then everything queued */
    svc_op *batch = deferred.h;
    if (deferred.t)
      deferred.t->next = c->qh;
    else
      batch = c->qh;
    deferred.h = deferred.t = NULL;
    c->qh = c->qt = NULL;
    pthread_mutex_unlock(&c->mu);
    uint64_t t0 = mono_ns();
    oplist applied = {NULL, NULL};
    /* when BEGIN fails nothing of the batch is applied (its queries go on
    ** unrun) */
    int rc = process(c, batch, true, &applied, &deferred, c->s->m->begin(c->s));
    bool lost = false;
    /* a query's writes wait for its step's record */
    while (!rc && c->nholds) {
      pthread_mutex_lock(&c->mu);
      while (!c->qh && !c->stop)
        pthread_cond_wait(&c->cv, &c->mu);
      svc_op *more = c->qh;
      c->qh = c->qt = NULL;
      bool stop = c->stop;
      pthread_mutex_unlock(&c->mu);
      if (!more && stop) {
        lost = true; /* as a crash here would: none of it happened */
        break;
      }
      rc = process(c, more, false, &applied, &deferred, WFP_OK);
    }
    uint64_t n = 0;
    for (svc_op *op = applied.h; op; op = op->next)
      n++;
    if (!rc && !lost)
      rc = c->s->m->commit(c->s);
    if (rc || lost) {
      c->s->m->rollback(c->s);
      c->nholds = 0;
      drop_list(c, applied.h);
      if (rc) {
        fail_with(c, rc);
        pthread_mutex_lock(&c->mu);
        break;
      }
    } else {
      int b = 0;
      while (b < SVC_BATCH_BUCKETS && n > (1ull << b))
        b++;
      double secs = (double)(mono_ns() - t0) / 1e9;
      pthread_mutex_lock(&c->mu);
      c->txns++;
      c->ops += n;
      c->batch_hist[b]++;
      c->seconds += secs;
      if (applied.h) {
        if (c->dt)
          c->dt->next = applied.h;
        else
          c->dh = applied.h;
        c->dt = applied.t;
      }
      pthread_mutex_unlock(&c->mu);
      if (applied.h)
        uv_async_send(&c->async);
    }
    pthread_mutex_lock(&c->mu);
  }
  /* the end: queries that wait go on unrun; other ops are dropped */
  c->stopped = true;
  svc_op *left = c->qh;
  c->qh = c->qt = NULL;
  pthread_mutex_unlock(&c->mu);
  for (svc_op *lists[2] = {deferred.h, left}, **l = lists; l < lists + 2; l++) {
    svc_op *op = *l;
    while (op) {
      svc_op *next = op->next;
      if (op->kind == SVC_OP_QUERY) {
        query_done(c, op);
      } else {
        op->next = NULL;
        drop_list(c, op);
      }
      op = next;
    }
  }
  return NULL;
}

/* ---- the loop's side ---- */

static void on_async(uv_async_t *h) {
  svc_committer *c = h->data;
  pthread_mutex_lock(&c->mu);
  svc_op *op = c->dh;
  c->dh = c->dt = NULL;
  bool failed = c->failed;
  pthread_mutex_unlock(&c->mu);
  answer_dropped(c);
  while (op) {
    svc_op *next = op->next;
    if (op->done && !c->S->stopping) {
      op->done(c->S, op);
    } else if (op->req) { /* committed; a retry with its key finds it */
      wfp_http_error(op->req, 503, "the service is stopping");
      op->req = NULL;
    }
    wfp_svc_op_free(op);
    op = next;
  }
  if (failed && !c->S->stopping) {
    fprintf(c->S->log, "wfp-host: error: %s; stopping (nothing that was answered is lost)\n",
            c->failure);
    fflush(c->S->log);
    c->S->exit_code = 3;
    wfp_svc_stop(c->S);
  }
}

static void close_free(uv_handle_t *h) { free(h->data); }

int wfp_svc_committer_start(svc *S, wfp_store *s, uv_loop_t *uv, svc_committer **out) {
  *out = NULL;
  svc_committer *c = calloc(1, sizeof *c);
  if (!c)
    return WFP_ENOMEM;
  c->S = S;
  c->s = s;
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  if (uv_async_init(uv, &c->async, on_async) != 0) {
    free(c);
    return WFP_EIO;
  }
  c->async.data = c;
  if (pthread_create(&c->thread, NULL, run, c) != 0) {
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    uv_close((uv_handle_t *)&c->async, close_free);
    return WFP_EIO;
  }
  c->running = true;
  *out = c;
  return WFP_OK;
}

void wfp_svc_commit(svc_committer *c, svc_op *op) {
  op->next = NULL;
  pthread_mutex_lock(&c->mu);
  if (c->stopped) {
    pthread_mutex_unlock(&c->mu);
    wfp_svc_op_free(op);
    return;
  }
  if (c->qt)
    c->qt->next = op;
  else
    c->qh = op;
  c->qt = op;
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

void wfp_svc_commit_query(svc_committer *c, wfp_db_job *job, int64_t seq, int64_t epoch,
                          bool hold) {
  svc_op op;
  memset(&op, 0, sizeof op);
  op.kind = SVC_OP_QUERY;
  op.job = job;
  op.seq = seq;
  op.epoch = epoch;
  op.hold = hold && seq > 0;
  pthread_cond_init(&op.ran_cv, NULL);
  pthread_mutex_lock(&c->mu);
  if (!c->stopped) {
    if (c->qt)
      c->qt->next = &op;
    else
      c->qh = &op;
    c->qt = &op;
    pthread_cond_signal(&c->cv);
    while (!op.ran)
      pthread_cond_wait(&op.ran_cv, &c->mu);
  }
  pthread_mutex_unlock(&c->mu);
  pthread_cond_destroy(&op.ran_cv);
}

void wfp_svc_committer_stop(svc_committer *c) {
  if (!c)
    return;
  if (c->running) {
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
  }
  /* committed ops the loop did not take: dropped (it is stopping); their
  ** requests, and those of ops not committed, answered */
  answer_dropped(c);
  for (svc_op *op = c->dh; op; op = op->next)
    if (op->req) {
      wfp_http_error(op->req, 503, "the service is stopping");
      op->req = NULL;
    }
  free_list(c->dh);
  c->dh = c->dt = NULL;
  free(c->holds);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cv);
  uv_close((uv_handle_t *)&c->async, close_free);
}

const char *wfp_svc_committer_failure(svc_committer *c) {
  return c && c->failed ? c->failure : NULL;
}

void wfp_svc_committer_stats(svc_committer *c, uint64_t *txns, uint64_t *ops,
                             uint64_t *batch_hist, int nbuckets, double *seconds) {
  pthread_mutex_lock(&c->mu);
  *txns = c->txns;
  *ops = c->ops;
  for (int i = 0; i < nbuckets && i <= SVC_BATCH_BUCKETS; i++)
    batch_hist[i] = c->batch_hist[i];
  *seconds = c->seconds;
  pthread_mutex_unlock(&c->mu);
}
