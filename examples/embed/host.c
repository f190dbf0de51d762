/*
** host.c: a host of one's own on libwfp-host (wfp/loop.h): many
** invocations of one module on one loop, with a ctx_get_i64 handler of its
** own. The context each invocation reads lives in this program's own map,
** one per invocation, and the handler answers later, from a libuv timer,
** as a store across the network would. Not here: compiling (wfp-aot).
**
** Build: cc host.c $(pkg-config --cflags --libs wfp-host libuv)
** Run:   ./host simple.so [COUNT]   (examples/program.simple.json)
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>
#include <wfp/loop.h>

/* The embedder's own context: one map (here one key, "n") per invocation. */
typedef struct job {
  int64_t n;       /* ctx "n" of this invocation */
  char output[64]; /* what it returned */
  int status;
} job;

/* A pending answer: the request, and the timer that completes it. */
typedef struct answer {
  uv_timer_t timer;
  wfp_effect_req *req;
} answer;

static void answer_closed(uv_handle_t *h) { free(h->data); }

static void answer_now(uv_timer_t *t) {
  answer *a = t->data;
  wfp_invocation *inv = wfp_effect_invocation(a->req);
  job *j = wfp_invocation_data(inv);
  size_t klen;
  const char *key = wfp_effect_key(a->req, &klen);
  if (klen == 1 && key[0] == 'n')
    wfp_effect_complete_i64(a->req, j->n); /* the next step resumes with {"i64": n} */
  else
    wfp_effect_fail(a->req, "no such key in the embedder's map"); /* a trap */
  t->data = a;
  uv_close((uv_handle_t *)t, answer_closed);
}

/* The handler: keeps the request and answers it 5 ms later. */
static int ctx_get(void *ud, wfp_effect_req *req) {
  uv_loop_t *uv = ud;
  answer *a = malloc(sizeof *a);
  if (!a)
    return WFP_ENOMEM; /* the invocation ends with this error */
  a->req = req;
  uv_timer_init(uv, &a->timer);
  a->timer.data = a;
  uv_timer_start(&a->timer, answer_now, 5, 0);
  return 0;
}

static int messages;

/* A sink of one's own: count the messages (the default collects them). */
static void sink(void *ud, wfp_invocation *inv, const char *topic, size_t tn,
                 const char *payload, size_t pn) {
  (void)ud;
  (void)inv;
  (void)topic;
  (void)tn;
  (void)payload;
  (void)pn;
  messages++;
}

static void done(wfp_invocation *inv, int status, void *data) {
  job *j = data;
  j->status = status;
  const char *out = status == WFP_DONE ? wfp_invocation_output(inv)
                    : status == WFP_TRAP ? wfp_invocation_trap_message(inv)
                                         : wfp_strerror(status);
  snprintf(j->output, sizeof j->output, "%s", out);
  wfp_invocation_free(inv); /* ours: freed in its done callback */
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: host func.so [COUNT]\n");
    return 2;
  }
  int count = argc > 2 ? atoi(argv[2]) : 100;
  if (count < 1)
    count = 1;
  wfp_host_diag hd;
  wfp_module *m = NULL;
  if (wfp_module_load(argv[1], &m, &hd)) {
    char line[1024];
    wfp_diag_format(&hd.d, line, sizeof line);
    fprintf(stderr, "%s\n", line);
    return 3;
  }
  wfp_env *env = wfp_env_new();
  wfp_loop *loop = NULL;
  wfp_loop_opts o = {sizeof o, 2, 0, NULL}; /* two threads run steps */
  job *jobs = calloc((size_t)count, sizeof *jobs);
  if (!env || !jobs || wfp_loop_new(&o, env, &loop)) {
    fprintf(stderr, "cannot set up the loop\n");
    return 3;
  }
  wfp_effect_handlers h;
  memset(&h, 0, sizeof h);
  h.version = WFP_EFFECT_HANDLERS_VERSION;
  h.size = sizeof h;
  h.ud = wfp_loop_uv(loop);
  h.fn[WFP_EFFECT_CTX_GET_I64] = ctx_get; /* the other effects: built-ins */
  wfp_loop_set_handlers(loop, &h);
  wfp_loop_set_sink(loop, sink, NULL);
  for (int i = 0; i < count; i++) {
    wfp_invocation *inv;
    jobs[i].n = i * 10;
    if (wfp_invocation_new(m, env, "{}", 2, &inv) || wfp_loop_start(loop, inv, done, &jobs[i])) {
      fprintf(stderr, "cannot start invocation %d\n", i);
      return 3;
    }
  }
  printf("started %d invocations on %u threads\n", count, wfp_loop_workers(loop));
  wfp_loop_run(loop, WFP_RUN_DEFAULT); /* until every one ended */
  int good = 0;
  for (int i = 0; i < count; i++) {
    char want[64];
    snprintf(want, sizeof want, "{\"result\":%lld}", (long long)jobs[i].n + 1);
    good += jobs[i].status == WFP_DONE && strcmp(jobs[i].output, want) == 0;
  }
  printf("first %s, last %s\n", jobs[0].output, jobs[count - 1].output);
  printf("%d of %d done with n + 1, %d messages\n", good, count, messages);
  wfp_loop_free(loop);
  wfp_env_free(env);
  wfp_module_free(m);
  free(jobs);
  return good == count ? 0 : 1;
}
