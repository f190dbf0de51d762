/*
** loop.c: the loop: invocations on a libuv loop. A run queue of ready
** invocations; worker threads that take their steps (or, with one worker,
** the loop's own thread); each pending effect handed to a handler as a
** request; the commit hook between the phases; the concurrency cap; one
** invocation at a time per resource instance. The effects themselves:
** effects.c.
**
** An invocation moves: admitted (cap) -> its instance acquired (actor) ->
** ready -> running (a step) -> [commit STEP] -> effect (a handler) ->
** [commit EFFECT] -> ready ... -> [commit END] -> done callback. Everything
** here runs on the loop's thread but the steps on the workers, which get
** an invocation through `jobs` and give it back through `finished`, both
** under `mu`: a running invocation is touched by its worker only.
*/
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <uv.h>

#include "host_int.h"

#define UV(l) ((uv_loop_t *)(l)->uv)

/* How long the loop's own thread takes steps in a row before it looks at
** timers and I/O again (nanoseconds; the clock is read every INLINE_CHECK
** steps, without a system call). */
#define INLINE_SLICE_NS 5000000u
#define INLINE_CHECK 32

/* Steps given to the workers at once, per worker. */
#define JOBS_PER_WORKER 16

/* ---- the phases ---- */

static void pump(wfp_loop *l);
static int start_worker(wfp_loop *l);
static void on_idle(uv_idle_t *h);
static void start_idle(wfp_loop *l);
static void dispatch(wfp_loop *l, wfp_invocation *inv);
static void commit(wfp_loop *l, wfp_invocation *inv, int phase);
static void finish(wfp_loop *l, wfp_invocation *inv, int status);
static int admit(wfp_loop *l, wfp_invocation *inv);
static void kill_now(wfp_loop *l, wfp_invocation *inv, const char *msg);
static void drop_req(wfp_loop *l, wfp_invocation *inv);

void wfp__loop_ready(wfp_loop *l, wfp_invocation *inv) {
  inv->where = WFP__L_READY;
  wfp__q_push(&l->ready, inv);
  pump(l);
}

/* inv takes a place under the cap: its start time, its resource instance
** (or a wait for it), the run queue, which the loop takes from in its next
** iteration (no callback runs here). 0 or WFP_ENOMEM. */
static int admit(wfp_loop *l, wfp_invocation *inv) {
  inv->admitted = true;
  l->alive++;
  if (!inv->started_at)
    inv->started_at = wfp__now_ms();
  bool oom;
  if (!wfp__actor_acquire(l, inv, &oom))
    return oom ? WFP_ENOMEM : WFP_OK;
  inv->where = WFP__L_READY;
  wfp__q_push(&l->ready, inv);
  start_idle(l);
  return WFP_OK;
}

/* Frees a row the loop is done with. */
static void free_row(wfp_loop *l, wfp_invocation *row) {
  l->members--;
  wfp_invocation_free(row);
}

/* An invocation someone started leaves the loop with status: its done
** callback, which may free it or start others. */
static void leave(wfp_loop *l, wfp_invocation *inv, int status) {
  wfp_invocation *next = wfp__actor_release(l, inv);
  if (next)
    wfp__loop_ready(l, next);
  wfp__tops_remove(l, inv);
  l->members--;
  inv->loop = NULL;
  inv->where = WFP__L_NONE;
  inv->perform_only = false;
  if (inv->admitted) {
    inv->admitted = false;
    l->alive--;
  }
  /* the next one waiting for the cap takes this one's place */
  while (l->admit.head && (!l->concurrency || l->alive < l->concurrency)) {
    wfp_invocation *w = wfp__q_pop(&l->admit);
    if (admit(l, w))
      finish(l, w, WFP_ENOMEM);
  }
  wfp_done_cb cb = inv->done;
  void *data = inv->data;
  inv->done = NULL;
  if (cb)
    cb(inv, status, data);
}

/* The invocation ended: a row reports to its fan-out, the others leave. */
static void finish(wfp_loop *l, wfp_invocation *inv, int status) {
  inv->where = WFP__L_NONE;
  if (inv->fan)
    wfp__fanout_cancel(l, inv);
  if (inv->parent) {
    inv->step_rc = status;
    wfp__fanout_row_ended(l, inv);
    return;
  }
  leave(l, inv, status);
}

/* Ends inv: done or trap go through the commit hook first; a host error
** (negative) ends it at once. */
static void end(wfp_loop *l, wfp_invocation *inv, int rc) {
  if (rc < 0) {
    finish(l, inv, rc);
    return;
  }
  commit(l, inv, WFP_COMMIT_END);
}

void wfp__loop_fail(wfp_loop *l, wfp_invocation *inv, int rc) {
  if (inv->req) {
    wfp__req_release(l, inv->req);
    inv->req = NULL;
  }
  if (inv->in_call) { /* its handler runs: it ends once that returned */
    inv->fail_rc = rc;
    return;
  }
  end(l, inv, rc);
}

/* Whether inv may step now: its top's limits hold (else it ends, or waits
** for fuel that running steps reserved), and its fuel is reserved. */
static bool prepare(wfp_loop *l, wfp_invocation *inv) {
  char msg[96];
  wfp_invocation *t = WFP__TOP(inv);
  const char *lim = wfp__limit_reached(inv, msg, sizeof msg);
  if (lim) {
    wfp__loop_kill(l, t, lim);
    return false;
  }
  uint64_t budget = wfp__step_budget(inv);
  if (!budget) {
    /* the limit's last units are reserved by steps of its other rows */
    inv->where = WFP__L_FUEL;
    wfp__q_push(&l->fuel, inv);
    return false;
  }
  inv->budget = budget;
  inv->run_cap = t->mem_max;
  t->reserved += budget;
  inv->where = WFP__L_RUNNING;
  return true;
}

/* A step came back (from a worker, or inline). */
static void after_step(wfp_loop *l, wfp_invocation *inv) {
  inv->where = WFP__L_NONE;
  if (inv->killed) {
    kill_now(l, inv, inv->kill_msg);
    return;
  }
  wfp_invocation *t = WFP__TOP(inv);
  t->reserved -= inv->budget;
  inv->budget = 0;
  if (inv->top) {
    t->row_steps++;
    t->fuel_used += (uint64_t)inv->last_used;
  }
  while (l->fuel.head) {
    wfp_invocation *w = wfp__q_pop(&l->fuel);
    w->where = WFP__L_READY;
    wfp__q_push(&l->ready, w);
  }
  int rc = inv->step_rc;
  if (rc >= 0 && inv->trace && !wfp__trace_step(inv))
    rc = WFP_ENOMEM; /* the step's trace line could not be made */
  if (rc == WFP_PENDING)
    commit(l, inv, WFP_COMMIT_STEP);
  else
    end(l, inv, rc);
}

/* Whether the loop's own thread takes the next step. It is one of the
** workers: with one, it takes every step; with more, it takes those the
** other threads have no room for, and one invocation ready alone while no
** other thread is busy (nothing could run beside it: no thread hop, no
** system call). */
static bool inline_next(const wfp_loop *l) {
  return !l->nthreads || (l->busy == 0 && l->ready.n == 1) ||
         l->busy >= l->nthreads * JOBS_PER_WORKER;
}

/* Takes the next ready invocations: a pending one to its handler, the
** others to a free worker, or to the inline stepper (the idle handle: never
** from inside another invocation's callback). */
static void pump(wfp_loop *l) {
  if (!l->ready.head)
    return;
  if (inline_next(l)) {
    start_idle(l);
    return;
  }
  /* several steps per worker in flight, so that a worker goes on to the
  ** next without waiting for this thread to take the last one back */
  wfp__queue batch = {NULL, NULL, 0};
  while (l->ready.head && l->busy < l->nthreads * JOBS_PER_WORKER) {
    wfp_invocation *inv = wfp__q_pop(&l->ready);
    inv->where = WFP__L_NONE;
    if (inv->pending) {
      dispatch(l, inv);
      continue;
    }
    if (!prepare(l, inv))
      continue;
    if (!l->busy && !l->async_ref) {
      uv_ref((uv_handle_t *)l->async);
      l->async_ref = true;
    }
    /* a thread when the ones there all have one, up to the workers */
    if (l->busy >= l->started && l->started < l->nthreads &&
        start_worker(l) != WFP_OK && !l->started) {
      l->busy++;
      inv->step_rc = WFP_EIO;
      pthread_mutex_lock(&l->mu);
      wfp__q_push(&l->finished, inv);
      pthread_mutex_unlock(&l->mu);
      uv_async_send((uv_async_t *)l->async);
      continue;
    }
    l->busy++;
    wfp__q_push(&batch, inv);
  }
  if (l->ready.head)
    start_idle(l); /* the loop's own thread takes what is left */
  if (!batch.head)
    return;
  pthread_mutex_lock(&l->mu);
  if (l->jobs.tail) {
    l->jobs.tail->next = batch.head;
    batch.head->prev = l->jobs.tail;
  } else {
    l->jobs.head = batch.head;
  }
  l->jobs.tail = batch.tail;
  l->jobs.n += batch.n;
  if (batch.n > 1)
    pthread_cond_broadcast(&l->cv);
  else
    pthread_cond_signal(&l->cv);
  pthread_mutex_unlock(&l->mu);
}

static void start_idle(wfp_loop *l) {
  if (!l->idle_on) {
    l->idle_on = true;
    uv_idle_start((uv_idle_t *)l->idle, on_idle);
  }
}

/* Feeds the other threads, then steps ready invocations on the loop's own
** thread for a time slice while that is the way (inline_next). */
static void on_idle(uv_idle_t *h) {
  wfp_loop *l = h->data;
  if (l->nthreads)
    pump(l); /* the other threads first */
  uint64_t until = uv_hrtime() + INLINE_SLICE_NS;
  for (unsigned k = 1; l->ready.head && inline_next(l); k++) {
    if (k % INLINE_CHECK == 0 && uv_hrtime() > until)
      break;
    /* a worker gave steps back: it may be idle, and only this thread can
    ** give it more (the async callback, once this slice ends) */
    if (l->nthreads && atomic_load_explicit(&l->steps_back, memory_order_relaxed))
      break;
    wfp_invocation *inv = wfp__q_pop(&l->ready);
    inv->where = WFP__L_NONE;
    if (inv->pending) {
      dispatch(l, inv);
      continue;
    }
    if (!prepare(l, inv))
      continue;
    inv->step_rc = wfp__step_run(inv, inv->budget, inv->run_cap);
    after_step(l, inv);
  }
  if (l->nthreads)
    pump(l);
  if ((!l->ready.head || !inline_next(l)) && l->idle_on) {
    l->idle_on = false;
    uv_idle_stop(h);
  }
}

static void *worker(void *arg) {
  wfp_loop *l = arg;
  pthread_mutex_lock(&l->mu);
  for (;;) {
    while (!l->quit && !l->jobs.head)
      pthread_cond_wait(&l->cv, &l->mu);
    wfp_invocation *inv = wfp__q_pop(&l->jobs);
    if (!inv)
      break; /* quit, and nothing left */
    pthread_mutex_unlock(&l->mu);
    inv->step_rc = wfp__step_run(inv, inv->budget, inv->run_cap);
    pthread_mutex_lock(&l->mu);
    wfp__q_push(&l->finished, inv);
    bool dry = !l->jobs.head;
    pthread_mutex_unlock(&l->mu);
    if (dry) /* this thread is out of work */
      atomic_store_explicit(&l->steps_back, true, memory_order_relaxed);
    uv_async_send((uv_async_t *)l->async);
    pthread_mutex_lock(&l->mu);
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

/* Starts one more worker thread. A step may nest calls as deep as on the
** main thread: it gets the same stack size. */
static int start_worker(wfp_loop *l) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  struct rlimit rl;
  size_t stack = 8u << 20;
  if (getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      rl.rlim_cur > stack && rl.rlim_cur < (256u << 20))
    stack = (size_t)rl.rlim_cur;
  pthread_attr_setstacksize(&attr, stack);
  int rc = pthread_create(&l->threads[l->started], &attr, worker, l);
  pthread_attr_destroy(&attr);
  if (rc != 0)
    return WFP_EIO;
  l->started++;
  return WFP_OK;
}

static void on_async(uv_async_t *h) {
  wfp_loop *l = h->data;
  /* wfp_loop_free joined the workers and took their steps back; the uv
  ** loop it runs to close its handles may still deliver their last send */
  if (l->closing)
    return;
  atomic_store_explicit(&l->steps_back, false, memory_order_relaxed);
  pthread_mutex_lock(&l->mu);
  wfp__queue done = l->finished;
  memset(&l->finished, 0, sizeof l->finished);
  pthread_mutex_unlock(&l->mu);
  wfp_invocation *inv;
  while ((inv = wfp__q_pop(&done)) != NULL) {
    l->busy--;
    after_step(l, inv);
  }
  if (!l->busy && l->async_ref) {
    uv_unref((uv_handle_t *)l->async);
    l->async_ref = false;
  }
  pump(l);
}

/* ---- the commit hook ---- */

static void committed(wfp_loop *l, wfp_invocation *inv, int phase, int rc);

static void commit_cb(wfp_invocation *inv, int rc) {
  if (!inv || inv->where != WFP__L_COMMIT || inv->call_done)
    return; /* answered twice */
  if (inv->in_call) {
    inv->call_done = true;
    inv->call_rc = rc;
    return;
  }
  committed(inv->loop, inv, inv->commit_phase, rc);
}

static void commit(wfp_loop *l, wfp_invocation *inv, int phase) {
  if (!l->commit) {
    committed(l, inv, phase, 0);
    return;
  }
  wfp_commit_record r;
  memset(&r, 0, sizeof r);
  r.size = sizeof r;
  r.phase = phase;
  r.inv = inv;
  r.status = phase == WFP_COMMIT_END ? inv->status : WFP_PENDING;
  r.effect = -1;
  if (phase != WFP_COMMIT_END) {
    r.state = (const uint8_t *)inv->state.data;
    r.state_len = inv->state.len;
    r.effect = (int)inv->effect;
    r.key = inv->s0.len ? inv->s0.data : "";
    r.key_len = inv->s0.len;
    r.json = inv->s1.len ? inv->s1.data : "";
    r.json_len = inv->s1.len;
    r.i64 = inv->ival;
    r.wake_at = inv->effect == WFP_EFFECT_SLEEP_MS ? inv->wake_at : 0;
  }
  if (phase == WFP_COMMIT_EFFECT) {
    /* a typed resume value is recorded as its text */
    if (wfp__resume_text(inv)) {
      committed(l, inv, phase, WFP_ENOMEM);
      return;
    }
    r.has_resume = inv->resume_some;
    r.resume = inv->resume_some ? inv->resume.data : NULL;
    r.resume_len = inv->resume_some ? inv->resume.len : 0;
  }
  if (phase == WFP_COMMIT_END)
    r.text = inv->status == WFP_DONE ? inv->output : inv->trap;
  r.steps = inv->steps;
  r.fuel = inv->fuel_used;
  inv->where = WFP__L_COMMIT;
  inv->commit_phase = phase;
  inv->in_call = true;
  inv->call_done = false;
  l->commit(l->commit_ud, &r, commit_cb);
  inv->in_call = false;
  if (inv->call_done)
    committed(l, inv, phase, inv->call_rc);
}

static void committed(wfp_loop *l, wfp_invocation *inv, int phase, int rc) {
  inv->where = WFP__L_NONE;
  inv->call_done = false;
  if (inv->killed) {
    kill_now(l, inv, inv->kill_msg);
    return;
  }
  if (rc < 0) {
    finish(l, inv, rc);
    return;
  }
  switch (phase) {
  case WFP_COMMIT_STEP:
    if (rc == WFP_PENDING && !inv->parent) {
      leave(l, inv, WFP_PENDING);
      return;
    }
    dispatch(l, inv);
    return;
  case WFP_COMMIT_EFFECT:
    if (inv->outbox) {
      inv->outbox = false;
      l->sink(l->sink_ud, inv, inv->s0.len ? inv->s0.data : "", inv->s0.len,
              inv->s1.len ? inv->s1.data : "", inv->s1.len);
      if (inv->msgs_lost) { /* the default sink ran out of memory */
        finish(l, inv, WFP_ENOMEM);
        return;
      }
    }
    if (inv->perform_only) {
      leave(l, inv, WFP_PENDING);
      return;
    }
    wfp__loop_ready(l, inv);
    return;
  default:
    finish(l, inv, inv->status);
    return;
  }
}

/* ---- effects: to a handler, and back ---- */

static void dispatch(wfp_loop *l, wfp_invocation *inv) {
  wfp_effect_req *req = wfp__req_new(l, inv);
  if (!req) {
    end(l, inv, WFP_ENOMEM);
    return;
  }
  inv->req = req;
  inv->where = WFP__L_EFFECT;
  inv->in_call = true;
  inv->call_done = false;
  wfp_effect_fn fn = inv->effect < WFP_EFFECT_COUNT ? l->h.fn[inv->effect] : NULL;
  int rc = fn ? fn(l->h.ud, req) : wfp__builtin(l, req);
  inv->in_call = false;
  if (inv->killed) { /* given up on while its handler ran */
    drop_req(l, inv);
    kill_now(l, inv, inv->kill_msg);
    return;
  }
  if (inv->fail_rc) { /* the host failed its effect while its handler ran */
    rc = inv->fail_rc;
    inv->fail_rc = 0;
    end(l, inv, rc);
    return;
  }
  if (inv->call_done) {
    wfp__loop_effect_done(l, inv);
    return;
  }
  if (rc < 0 && req->state == WFP__REQ_WAITING && req->inv == inv)
    wfp__loop_fail(l, inv, rc);
}

void wfp__loop_effect_done(wfp_loop *l, wfp_invocation *inv) {
  if (inv->in_call) {
    inv->call_done = true;
    return;
  }
  inv->call_done = false;
  if (inv->req) {
    wfp__req_release(l, inv->req);
    inv->req = NULL;
  }
  inv->pending = false;
  inv->where = WFP__L_NONE;
  if (inv->trace && !wfp__trace_performed(inv)) {
    finish(l, inv, WFP_ENOMEM); /* its trace line could not be made */
    return;
  }
  commit(l, inv, WFP_COMMIT_EFFECT);
}

/* ---- giving up on an invocation ---- */

/* The request of an invocation the loop gives up on: a timer or a query
** waiting its turn is the loop's own, and the request is free again; a
** query running, or a handler's request, is orphaned: its completion finds
** no invocation and frees it then. */
static void drop_req(wfp_loop *l, wfp_invocation *inv) {
  wfp_effect_req *req = inv->req;
  if (!req)
    return;
  inv->req = NULL;
  if (req->state != WFP__REQ_WAITING || wfp__timers_remove(l, inv) ||
      wfp__db_lane_remove(l, inv))
    wfp__req_release(l, req);
  else
    req->inv = NULL;
}

/* inv is loose (in no queue, nobody else has it): end it now. */
static void kill_now(wfp_loop *l, wfp_invocation *inv, const char *msg) {
  inv->killed = false;
  inv->where = WFP__L_NONE;
  if (inv->fan)
    wfp__fanout_cancel(l, inv);
  if (!msg) { /* a row whose fan-out went */
    free_row(l, inv);
    return;
  }
  char *keep = inv->kill_msg;
  inv->kill_msg = NULL;
  int rc = wfp__end_trap(inv, msg, strlen(msg));
  free(keep);
  end(l, inv, rc == WFP_TRAP ? WFP_TRAP : rc);
}

void wfp__loop_kill(wfp_loop *l, wfp_invocation *inv, const char *msg) {
  if (inv->fan)
    wfp__fanout_cancel(l, inv);
  switch (inv->where) {
  case WFP__L_READY:
    wfp__q_remove(&l->ready, inv);
    break;
  case WFP__L_FUEL:
    wfp__q_remove(&l->fuel, inv);
    break;
  case WFP__L_ADMIT:
    wfp__q_remove(&l->admit, inv);
    break;
  case WFP__L_ACTOR:
    wfp__actor_release(l, inv);
    break;
  case WFP__L_EFFECT:
    if (inv->in_call)
      goto later; /* its handler runs: once it returned */
    drop_req(l, inv);
    break;
  case WFP__L_RUNNING:
  case WFP__L_COMMIT:
  later:
    /* a worker or the hook has it: it ends when it comes back; a row's
    ** fuel reservation is its top's again now, as the top may go first
    ** (the worker reads its budget: it stays as it is) */
    if (inv->top) {
      if (inv->where == WFP__L_RUNNING)
        inv->top->reserved -= inv->budget;
      inv->top = NULL;
      inv->parent = NULL;
    }
    inv->killed = true;
    free(inv->kill_msg);
    inv->kill_msg = msg ? strdup(msg) : NULL;
    if (msg && !inv->kill_msg)
      inv->kill_msg = strdup("out of memory");
    return;
  default:
    break;
  }
  kill_now(l, inv, msg);
}

/* ---- the loop ---- */

static void close_free(uv_handle_t *h) { free(h); }

int wfp_loop_new(const wfp_loop_opts *opts, wfp_env *env, wfp_loop **out) {
  if (!env || !out || (opts && opts->size < sizeof(wfp_loop_opts)))
    return WFP_EINVAL;
  *out = NULL;
  wfp_loop *l = calloc(1, sizeof *l);
  if (!l)
    return WFP_ENOMEM;
  atomic_init(&l->steps_back, false);
  l->env = env;
  l->sink = wfp__default_sink;
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv, NULL);
  unsigned workers = opts ? opts->workers : 0;
  if (!workers)
    workers = uv_available_parallelism();
  l->workers = workers ? workers : 1;
  l->nthreads = l->workers - 1; /* the loop's own thread is one of them */
  l->concurrency = opts ? opts->concurrency : 0;
  int rc = WFP_ENOMEM;
  if (opts && opts->uv_loop) {
    l->uv = opts->uv_loop;
  } else {
    if (!(l->uv = malloc(sizeof(uv_loop_t))))
      goto fail;
    if (uv_loop_init(UV(l)) != 0) {
      free(l->uv);
      l->uv = NULL;
      rc = WFP_EIO;
      goto fail;
    }
    l->own_uv = true;
  }
  uv_idle_t *idle = malloc(sizeof *idle);
  uv_async_t *async = malloc(sizeof *async);
  if (!idle || !async) {
    free(idle);
    free(async);
    goto fail;
  }
  uv_idle_init(UV(l), idle);
  idle->data = l;
  l->idle = idle;
  if (uv_async_init(UV(l), async, on_async) != 0) {
    free(async);
    rc = WFP_EIO;
    goto fail;
  }
  async->data = l;
  uv_unref((uv_handle_t *)async);
  l->async = async;
  if ((rc = wfp__effects_init(l)) != 0)
    goto fail;
  if (l->nthreads && !(l->threads = calloc(l->nthreads, sizeof *l->threads))) {
    rc = WFP_ENOMEM;
    goto fail;
  }
  *out = l;
  return WFP_OK;
fail:
  wfp_loop_free(l);
  return rc;
}

/* Ends every invocation still in the loop: someone's get WFP_ECANCELED. */
static void cancel_all(wfp_loop *l) {
  while (l->tops.head) {
    wfp_invocation *inv = l->tops.head;
    if (inv->fan)
      wfp__fanout_cancel(l, inv);
    switch (inv->where) {
    case WFP__L_READY:
      wfp__q_remove(&l->ready, inv);
      break;
    case WFP__L_FUEL:
      wfp__q_remove(&l->fuel, inv);
      break;
    case WFP__L_ADMIT:
      wfp__q_remove(&l->admit, inv);
      break;
    case WFP__L_EFFECT:
      drop_req(l, inv);
      break;
    default:
      break;
    }
    /* it lets its instance go (the next owner is cancelled in turn) */
    wfp_invocation *next = wfp__actor_release(l, inv);
    if (next) {
      next->where = WFP__L_READY;
      wfp__q_push(&l->ready, next);
    }
    wfp__tops_remove(l, inv);
    l->members--;
    inv->loop = NULL;
    inv->where = WFP__L_NONE;
    inv->killed = false;
    if (inv->admitted) {
      inv->admitted = false;
      l->alive--;
    }
    wfp_done_cb cb = inv->done;
    inv->done = NULL;
    if (cb)
      cb(inv, WFP_ECANCELED, inv->data);
  }
}

void wfp_loop_free(wfp_loop *l) {
  if (!l)
    return;
  l->closing = 1;
  /* the workers finish the step they run and stop */
  if (l->threads) {
    pthread_mutex_lock(&l->mu);
    l->quit = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    for (unsigned i = 0; i < l->started; i++)
      pthread_join(l->threads[i], NULL);
    free(l->threads);
    l->threads = NULL;
    /* what they gave back is loose: killed rows go now, the others with
    ** their fan-outs or invocations below */
    wfp_invocation *inv;
    while ((inv = wfp__q_pop(&l->finished)) != NULL) {
      inv->where = WFP__L_NONE;
      if (inv->killed)
        free_row(l, inv);
    }
  }
  if (l->uv) {
    cancel_all(l);
    wfp__effects_close(l);
    if (l->idle)
      uv_close((uv_handle_t *)l->idle, close_free);
    if (l->async)
      uv_close((uv_handle_t *)l->async, close_free);
    if (l->own_uv) {
      uv_run(UV(l), UV_RUN_NOWAIT);
      uv_loop_close(UV(l));
      free(l->uv);
    }
  }
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->cv);
  for (size_t i = 0; i < l->nslabs; i++)
    free(l->slabs[i]);
  free(l->slabs);
  free(l->actors);
  free(l);
}

int wfp_loop_run(wfp_loop *l, int mode) {
  if (!l || mode < WFP_RUN_DEFAULT || mode > WFP_RUN_NOWAIT)
    return WFP_EINVAL;
  uv_run_mode m = mode == WFP_RUN_ONCE ? UV_RUN_ONCE
                  : mode == WFP_RUN_NOWAIT ? UV_RUN_NOWAIT
                                           : UV_RUN_DEFAULT;
  return uv_run(UV(l), m);
}

void wfp_loop_stop(wfp_loop *l) {
  if (l)
    uv_stop(UV(l));
}

void *wfp_loop_uv(wfp_loop *l) { return l ? l->uv : NULL; }
wfp_env *wfp_loop_env(const wfp_loop *l) { return l ? l->env : NULL; }
unsigned wfp_loop_workers(const wfp_loop *l) { return l ? l->workers : 0; }
size_t wfp_loop_alive(const wfp_loop *l) { return l ? l->alive + l->admit.n : 0; }
size_t wfp_loop_waiting(const wfp_loop *l) { return l ? l->admit.n : 0; }

int wfp_loop_set_handlers(wfp_loop *l, const wfp_effect_handlers *h) {
  if (!l)
    return WFP_EINVAL;
  memset(&l->h, 0, sizeof l->h);
  if (!h)
    return WFP_OK;
  if (h->version < 1 || h->size < offsetof(wfp_effect_handlers, fn) + sizeof h->fn)
    return WFP_EINVAL;
  l->h.version = WFP_EFFECT_HANDLERS_VERSION;
  l->h.size = sizeof l->h;
  l->h.ud = h->ud;
  memcpy(l->h.fn, h->fn, sizeof l->h.fn);
  return WFP_OK;
}

void wfp_loop_set_sink(wfp_loop *l, wfp_message_sink fn, void *ud) {
  if (!l)
    return;
  l->sink = fn ? fn : wfp__default_sink;
  l->sink_ud = fn ? ud : NULL;
}

void wfp_loop_set_commit(wfp_loop *l, wfp_commit_fn fn, void *ud) {
  if (!l)
    return;
  l->commit = fn;
  l->commit_ud = ud;
}

int wfp_loop_start(wfp_loop *l, wfp_invocation *inv, wfp_done_cb cb, void *data) {
  if (!l || !inv || inv->loop || inv->e != l->env || inv->status != WFP__RUNNING ||
      l->closing)
    return WFP_EINVAL;
  inv->loop = l;
  inv->done = cb;
  inv->data = data;
  inv->killed = false;
  inv->parent = inv->top = NULL;
  wfp__tops_add(l, inv);
  l->members++;
  if (l->concurrency && l->alive >= l->concurrency) {
    inv->where = WFP__L_ADMIT;
    wfp__q_push(&l->admit, inv);
    return WFP_OK;
  }
  if (admit(l, inv)) {
    wfp__tops_remove(l, inv);
    l->members--;
    l->alive--;
    inv->admitted = false;
    inv->loop = NULL;
    return WFP_ENOMEM;
  }
  return WFP_OK;
}

int wfp__loop_start_row(wfp_loop *l, wfp_invocation *row) {
  row->loop = l;
  l->members++;
  wfp__loop_ready(l, row);
  return WFP_OK;
}
