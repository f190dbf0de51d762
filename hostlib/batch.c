/*
** batch.c: many invocations from lines of text (wfp-host --batch): a
** reader thread splits the input into lines, the loop runs one invocation
** per line, and the results are written in input order, each as soon as it
** and every line before it ended. Lines are read as invocations finish
** (with a concurrency cap, the reader waits), so a long input never sits
** in memory whole. Not here: the loop (loop.c), inputs (input.c).
*/
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "host_int.h"

/* Lines read ahead of the invocations that take them, at most. */
#define READ_AHEAD 4096

typedef struct line {
  char *text;
  size_t len;
} line;

typedef struct batch batch;

/* One line's invocation and, once ended, its result. */
typedef struct slot {
  batch *b;
  uint64_t no; /* the line number, from 1 */
  wfp_invocation *inv;
  bool ended;
  char *result; /* the output line (NULL: out of memory) */
  size_t rlen;
} slot;

struct batch {
  wfp_module *m;
  wfp_env *env;
  const wfp_batch_opts *o;
  FILE *out;
  wfp_loop *loop;

  /* the reader thread and what it read (under mu) */
  int fd;
  pthread_t reader;
  bool reading;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  line *ring; /* READ_AHEAD lines */
  size_t head, n;
  bool eof, stop;
  int read_errno;
  uv_async_t *async;
  uv_prepare_t *flush; /* writes out what ended, before the loop waits */
  /* the lines taken, in order: slots[done..nslots) are not written yet */
  slot **slots;
  size_t done, nslots, cap;
  uint64_t next_no;
  size_t alive;
  bool dirty, write_failed, closed, finishing;
  int write_errno;
  int rc; /* WFP_ENOMEM when the host ran out of memory */
  wfp_batch_stats st;
};

/* ---- the reader ---- */

static bool push_line(batch *b, const char *p, size_t n) {
  char *t = malloc(n + 1);
  if (!t)
    return false;
  memcpy(t, p, n);
  t[n] = 0;
  pthread_mutex_lock(&b->mu);
  while (b->n == READ_AHEAD && !b->stop)
    pthread_cond_wait(&b->cv, &b->mu);
  bool stop = b->stop;
  if (!stop) {
    b->ring[(b->head + b->n) % READ_AHEAD] = (line){t, n};
    b->n++;
  }
  pthread_mutex_unlock(&b->mu);
  if (stop) {
    free(t);
    return false;
  }
  uv_async_send(b->async);
  return true;
}

static void *reader(void *arg) {
  batch *b = arg;
  wfp__buf part;
  wfp__buf_init(&part);
  char buf[65536];
  int err = 0;
  bool ok = true;
  for (;;) {
    ssize_t r = read(b->fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      err = errno;
      break;
    }
    if (r == 0)
      break;
    size_t s = 0;
    for (size_t i = 0; i < (size_t)r && ok; i++) {
      if (buf[i] != '\n')
        continue;
      if (part.len) {
        wfp__buf_add(&part, buf + s, i - s);
        ok = !part.oom && push_line(b, part.data, part.len);
        part.len = 0;
      } else {
        ok = push_line(b, buf + s, i - s);
      }
      s = i + 1;
    }
    if (!ok)
      break;
    wfp__buf_add(&part, buf + s, (size_t)r - s);
    if (part.oom) {
      ok = false;
      break;
    }
  }
  /* a last line without its newline is a line too */
  if (ok && !err && part.len)
    ok = push_line(b, part.data, part.len);
  wfp__buf_free(&part);
  pthread_mutex_lock(&b->mu);
  b->eof = true;
  b->read_errno = err ? err : ok || b->stop ? 0 : ENOMEM;
  pthread_mutex_unlock(&b->mu);
  uv_async_send(b->async);
  return NULL;
}

/* ---- writing, in input order ---- */

static void write_ready(batch *b) {
  size_t k = b->done;
  while (k < b->nslots && b->slots[k]->ended) {
    slot *s = b->slots[k];
    /* out of memory anywhere: no line more (the one that failed is no
    ** trap of the program, and the ones after it may miss their turn) */
    if (s->result && !b->write_failed && !b->rc &&
        fwrite(s->result, 1, s->rlen, b->out) != s->rlen) {
      b->write_failed = true;
      b->write_errno = errno;
      wfp_loop_stop(b->loop);
    }
    free(s->result);
    free(s);
    k++;
    b->dirty = true;
  }
  b->done = k;
}

static void on_prepare(uv_prepare_t *h) {
  batch *b = h->data;
  if (b->dirty && !b->write_failed) {
    b->dirty = false;
    if (fflush(b->out) != 0) {
      b->write_failed = true;
      b->write_errno = errno;
      wfp_loop_stop(b->loop);
    }
  }
}

/* The line's result: {"line": N, "output": ...} or {"line": N, "trap": ...}. */
static void ended(slot *s, const char *output, const char *trap) {
  batch *b = s->b;
  wfp__buf r;
  wfp__buf_init(&r);
  wfp__buf_printf(&r, "{\"line\":%llu,", (unsigned long long)s->no);
  if (output) {
    wfp__buf_adds(&r, "\"output\":");
    wfp__buf_adds(&r, output);
    b->st.done++;
  } else {
    wfp__buf_adds(&r, "\"trap\":");
    wfp__buf_add_jstr(&r, trap, strlen(trap));
    b->st.trapped++;
  }
  wfp__buf_adds(&r, "}\n");
  s->ended = true;
  if (r.oom) {
    wfp__buf_free(&r);
    b->rc = WFP_ENOMEM;
  } else if (!(s->result = wfp__buf_take(&r, &s->rlen))) {
    b->rc = WFP_ENOMEM;
  }
  write_ready(b);
}

static void feed(batch *b);

static void on_done(wfp_invocation *inv, int status, void *data) {
  slot *s = data;
  batch *b = s->b;
  b->alive--;
  s->inv = NULL;
  if (status == WFP_DONE) {
    ended(s, wfp_invocation_output(inv), NULL);
  } else if (status == WFP_TRAP) {
    ended(s, NULL, wfp_invocation_trap_message(inv));
  } else {
    if (status == WFP_ENOMEM)
      b->rc = WFP_ENOMEM;
    ended(s, NULL, status == WFP_ECANCELED ? "cancelled: the host stopped first"
                                           : wfp_strerror(status));
  }
  wfp_invocation_free(inv);
  feed(b);
}

/* Starts the invocation of one line, or gives its trap line. */
static void start_line(batch *b, slot *s, line *ln) {
  const wfp_batch_opts *o = b->o;
  char *text = NULL;
  size_t len = 0;
  wfp_input *in = wfp_input_new(b->m);
  int rc = in ? wfp_input_set_json(in, ln->text, ln->len) : WFP_ENOMEM;
  if (!rc && o->self)
    rc = wfp__input_default_self(in, b->env, o->self);
  if (!rc)
    rc = wfp_input_finish(in, b->env, &text, &len);
  if (rc) {
    const wfp_diag *d = wfp_input_diag(in);
    if (rc == WFP_ENOMEM)
      b->rc = WFP_ENOMEM;
    ended(s, NULL, d ? d->msg : wfp_strerror(rc));
    wfp_input_free(in);
    return;
  }
  wfp_input_free(in);
  wfp_invocation *inv = NULL;
  rc = wfp_invocation_new(b->m, b->env, text, len, &inv);
  wfp_free(text);
  if (rc) {
    if (rc == WFP_ENOMEM)
      b->rc = WFP_ENOMEM;
    ended(s, NULL, rc == WFP_EINVAL ? "the input: \"self\" is not a handle (a positive integer)"
                                    : wfp_strerror(rc));
    return;
  }
  wfp_invocation_set_fuel(inv, o->max_fuel, o->fuel_slice);
  wfp_invocation_set_max_steps(inv, o->max_steps);
  wfp_invocation_set_time_limit(inv, o->max_time_ms);
  wfp_invocation_set_memory_limit(inv, o->max_memory);
  s->inv = inv;
  b->alive++;
  if ((rc = wfp_loop_start(b->loop, inv, on_done, s)) != 0) {
    b->alive--;
    s->inv = NULL;
    wfp_invocation_free(inv);
    if (rc == WFP_ENOMEM)
      b->rc = WFP_ENOMEM;
    ended(s, NULL, wfp_strerror(rc));
  }
}

/* Takes the lines read so far, as many as the cap allows, and starts them. */
static void feed(batch *b) {
  for (;;) {
    size_t room = b->o->concurrency ? (b->alive < b->o->concurrency
                                           ? b->o->concurrency - b->alive
                                           : 0)
                                    : SIZE_MAX;
    if (!room || b->rc || b->write_failed || b->finishing)
      break;
    line ln;
    bool got = false, eof;
    pthread_mutex_lock(&b->mu);
    if (b->n) {
      ln = b->ring[b->head];
      b->head = (b->head + 1) % READ_AHEAD;
      b->n--;
      got = true;
      pthread_cond_signal(&b->cv);
    }
    eof = b->eof && !b->n;
    pthread_mutex_unlock(&b->mu);
    if (!got) {
      if (eof && !b->closed) {
        /* everything is read: the loop ends when the last one does */
        b->closed = true;
        uv_close((uv_handle_t *)b->async, NULL);
      }
      break;
    }
    if (b->cap && b->nslots == b->cap && b->done >= b->cap / 2) {
      /* the written half goes: the array holds what is not written yet */
      memmove(b->slots, b->slots + b->done, (b->nslots - b->done) * sizeof *b->slots);
      b->nslots -= b->done;
      b->done = 0;
    }
    if (b->nslots == b->cap) {
      size_t cap = b->cap ? b->cap * 2 : 256;
      slot **ns = realloc(b->slots, cap * sizeof *ns);
      if (!ns) {
        free(ln.text);
        b->rc = WFP_ENOMEM;
        break;
      }
      b->slots = ns;
      b->cap = cap;
    }
    slot *s = calloc(1, sizeof *s);
    if (!s) {
      free(ln.text);
      b->rc = WFP_ENOMEM;
      break;
    }
    s->b = b;
    s->no = ++b->next_no;
    b->st.lines++;
    b->slots[b->nslots++] = s;
    start_line(b, s, &ln);
    free(ln.text);
  }
  if ((b->rc || b->write_failed) && !b->finishing)
    wfp_loop_stop(b->loop);
}

static void on_lines(uv_async_t *h) { feed(h->data); }

int wfp_batch_run(wfp_module *m, wfp_env *env, const wfp_batch_opts *o, int in_fd, FILE *out,
                  wfp_batch_stats *stats) {
  if (!m || !env || !o || o->size < sizeof(wfp_batch_opts) || in_fd < 0 || !out)
    return WFP_EINVAL;
  batch b;
  memset(&b, 0, sizeof b);
  b.m = m;
  b.env = env;
  b.o = o;
  b.out = out;
  b.fd = in_fd;
  pthread_mutex_init(&b.mu, NULL);
  pthread_cond_init(&b.cv, NULL);
  int rc = WFP_ENOMEM;
  bool handles = false; /* async and flush are set up */
  wfp_loop_opts lo;
  memset(&lo, 0, sizeof lo);
  lo.size = sizeof lo;
  lo.workers = o->workers;
  lo.concurrency = o->concurrency;
  b.ring = calloc(READ_AHEAD, sizeof *b.ring);
  b.async = malloc(sizeof *b.async);
  b.flush = malloc(sizeof *b.flush);
  if (!b.ring || !b.async || !b.flush)
    goto out;
  if ((rc = wfp_loop_new(&lo, env, &b.loop)) != 0)
    goto out;
  uv_loop_t *uv = wfp_loop_uv(b.loop);
  if (uv_async_init(uv, b.async, on_lines) != 0) {
    rc = WFP_EIO;
    goto out;
  }
  b.async->data = &b;
  uv_prepare_init(uv, b.flush);
  b.flush->data = &b;
  uv_prepare_start(b.flush, on_prepare);
  uv_unref((uv_handle_t *)b.flush);
  handles = true;
  if (pthread_create(&b.reader, NULL, reader, &b) != 0) {
    rc = WFP_EIO;
    goto out;
  }
  b.reading = true;
  wfp_loop_run(b.loop, WFP_RUN_DEFAULT);
  rc = WFP_OK;
out:
  if (b.reading) {
    /* a stop before the end of the input: the reader gives up */
    pthread_mutex_lock(&b.mu);
    b.stop = true;
    pthread_cond_broadcast(&b.cv);
    pthread_mutex_unlock(&b.mu);
    pthread_join(b.reader, NULL);
  }
  b.finishing = true;
  if (handles) {
    if (!b.closed)
      uv_close((uv_handle_t *)b.async, NULL);
    uv_close((uv_handle_t *)b.flush, NULL);
  }
  if (b.loop) {
    wfp_loop_free(b.loop); /* the invocations left get WFP_ECANCELED */
    write_ready(&b);
  }
  fflush(out);
  for (size_t i = 0; i < b.n; i++)
    free(b.ring[(b.head + i) % READ_AHEAD].text);
  for (size_t i = b.done; i < b.nslots; i++) {
    free(b.slots[i]->result);
    free(b.slots[i]);
  }
  free(b.slots);
  free(b.ring);
  pthread_mutex_destroy(&b.mu);
  pthread_cond_destroy(&b.cv);
  if (stats)
    *stats = b.st;
  if (rc == WFP_OK && b.rc)
    rc = b.rc;
  if (rc == WFP_OK && b.write_failed) {
    errno = b.write_errno;
    rc = WFP_EIO;
  } else if (rc == WFP_OK && b.read_errno) {
    errno = b.read_errno;
    rc = b.read_errno == ENOMEM ? WFP_ENOMEM : WFP_EIO;
  }
  /* async and flush are closed above; their memory goes once libuv is
  ** done with them (wfp_loop_free ran the loop's last iteration) */
  free(b.async);
  free(b.flush);
  if (rc != WFP_OK)
    return rc;
  return b.st.trapped ? WFP_TRAP : WFP_DONE;
}
