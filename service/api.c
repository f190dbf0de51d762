/*
** api.c: the service's HTTP API (CONTRACT section 6): starting
** invocations (with Idempotency-Key and ?wait=MS), reading them, the
** message log, the context, resource instances, health. Reads go to the
** store's reader connection and so see only what was committed. Every
** refusal is {"error": ...} with 400, 404, 405 or 413. Not here: the
** server (http.c), the status page and metrics (status.c).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "svc.h"

#define IDEM_KEY_MAX 256

static void send_json(wfp_http_req *req, int status, wfp__buf *b) {
  if (b->oom)
    wfp_http_error(req, 500, "out of memory");
  else
    wfp_http_respond(req, status, "application/json", b->data, b->len);
  wfp__buf_free(b);
}

static const char *status_name(int st) {
  return st == WFP_STORE_DONE ? "done" : st == WFP_STORE_TRAPPED ? "trapped" : "pending";
}

/* ---- the invocation object ---- */

void wfp_svc_row_json(wfp__buf *b, const wfp_store_row *r) {
  wfp__buf_printf(b, "{\"id\":\"%s\",\"fn\":", r->id);
  wfp__buf_add_jstr(b, r->fn, strlen(r->fn));
  wfp__buf_printf(b, ",\"program\":\"%s\",\"status\":\"%s\"", r->program,
                  status_name(r->status));
  if (r->status == WFP_STORE_DONE && r->output) {
    wfp__buf_adds(b, ",\"output\":");
    wfp__buf_adds(b, r->output);
  } else if (r->status == WFP_STORE_TRAPPED) {
    const char *t = r->trap ? r->trap : "";
    wfp__buf_adds(b, ",\"trap\":");
    wfp__buf_add_jstr(b, t, strlen(t));
  }
  wfp__buf_printf(b, ",\"steps\":%llu}", (unsigned long long)r->steps);
}

/* The object and the status. */
typedef struct row_out {
  wfp__buf *b;
  int status;
} row_out;

static int row_to_out(void *ud, const wfp_store_row *r) {
  row_out *o = ud;
  o->status = r->status;
  wfp_svc_row_json(o->b, r);
  return 0;
}

/*
** A read of the store for a request: done by wfp_svc_read (on the
** reader's thread when several hosts share the store: the loop never
** waits for the network; at once with SQLite), answered after on the
** loop's thread. kind: what is read.
*/
enum { RD_INV, RD_EXISTING, RD_MSGS, RD_CTX, RD_INST };
typedef struct api_read {
  int kind;
  wfp_http_req *req;
  char id[17];
  int64_t wait;
  char *topic;
  int64_t after, limit;
  uint64_t handle;
  /* the answer */
  int rc, status;
  wfp__buf b;
  char err[600];
} api_read;

static int msg_json(void *ud, const wfp_store_msg *m);
static int ctx_json(void *ud, const char *key, size_t len, int64_t v);
static int inst_json(void *ud, uint64_t handle, const char *resource, const char *props);

static void read_work(svc *S, wfp_store *s, void *arg) {
  (void)S;
  api_read *r = arg;
  switch (r->kind) {
  case RD_INV:
  case RD_EXISTING: {
    row_out ro = {&r->b, WFP_STORE_PENDING};
    r->rc = s->m->get_inv(s, r->id, row_to_out, &ro);
    r->status = ro.status;
    break;
  }
  case RD_MSGS:
    wfp__buf_adds(&r->b, "{\"messages\":[");
    r->rc = s->m->messages(s, r->topic, r->after, r->limit, msg_json, &r->b);
    wfp__buf_adds(&r->b, "]}");
    break;
  case RD_CTX:
    wfp__buf_addc(&r->b, '{');
    r->rc = s->m->load_ctx(s, ctx_json, &r->b);
    wfp__buf_addc(&r->b, '}');
    break;
  case RD_INST:
    r->rc = s->m->get_instance(s, r->handle, inst_json, &r->b);
    break;
  }
  if (r->rc < 0)
    snprintf(r->err, sizeof r->err, "%s", r->rc == WFP_ENOMEM ? "out of memory" : s->m->errmsg(s));
}

static void answer_accepted(wfp_http_req *req, const char *id, const char *status);

static void read_after(svc *S, void *arg) {
  api_read *r = arg;
  wfp_http_req *req = r->req;
  if (S->stopping && r->rc >= 0 && r->kind == RD_EXISTING) {
    wfp__buf_free(&r->b);
    wfp_http_error(req, 503, "the service is stopping");
  } else if (r->rc < 0) {
    wfp__buf_free(&r->b);
    wfp_http_error(req, 500, "the store: %s", r->err);
  } else if (r->kind == RD_INV && r->rc == 0) {
    wfp__buf_free(&r->b);
    wfp_http_error(req, 404, "no invocation '%s'", r->id);
  } else if (r->kind == RD_INV && r->wait > 0 && r->status == WFP_STORE_PENDING && S->cl &&
             !S->stopping) {
    /* GET ?wait on one another host runs: asked of the store until it ends */
    wfp__buf_free(&r->b);
    wfp_svc_wait_remote(S, req, r->id, r->wait, true);
  } else if (r->kind == RD_INST && r->rc == 0) {
    wfp__buf_free(&r->b);
    wfp_http_error(req, 404, "no instance %llu", (unsigned long long)r->handle);
  } else if (r->kind == RD_EXISTING) {
    if (r->rc == 1 && r->wait > 0 && r->status != WFP_STORE_PENDING) {
      send_json(req, 200, &r->b);
    } else if (r->rc == 1 && r->wait > 0 && S->cl) {
      /* another host runs it: this request waits for its end there */
      wfp__buf_free(&r->b);
      wfp_svc_wait_remote(S, req, r->id, r->wait, false);
    } else {
      /* rc 0: committed, and not readable: not possible with one store */
      wfp__buf_free(&r->b);
      answer_accepted(req, r->id, r->rc == 1 ? status_name(r->status) : "pending");
    }
  } else {
    send_json(req, 200, &r->b);
  }
  free(r->topic);
  free(r);
}

static api_read *read_new(wfp_http_req *req, int kind) {
  api_read *r = calloc(1, sizeof *r);
  if (!r) {
    wfp_http_error(req, 500, "out of memory");
    return NULL;
  }
  r->kind = kind;
  r->req = req;
  wfp__buf_init(&r->b);
  return r;
}

/* GET's answer for id from the store: 200, or 404; with several hosts
** and wait > 0, one still pending waits for its end (another host runs
** it). */
static void answer_stored(svc *S, wfp_http_req *req, const char *id, int64_t wait) {
  api_read *r = read_new(req, RD_INV);
  if (!r)
    return;
  snprintf(r->id, sizeof r->id, "%s", id);
  r->wait = wait;
  wfp_svc_read(S, read_work, read_after, r);
}

static void answer_accepted(wfp_http_req *req, const char *id, const char *status) {
  char body[96];
  int n = snprintf(body, sizeof body, "{\"id\":\"%s\",\"status\":\"%s\"}", id, status);
  wfp_http_respond(req, 202, "application/json", body, (size_t)n);
}

/* ---- waiting for an end ---- */

static void waiter_closed(uv_handle_t *h) { free(h->data); }

static void waiter_unlink(svc_waiter *w) {
  if (!w->si)
    return;
  svc_waiter **p = &w->si->waiters;
  while (*p && *p != w)
    p = &(*p)->next;
  if (*p)
    *p = w->next;
  w->si = NULL;
}

static void waiter_timeout(uv_timer_t *t) {
  svc_waiter *w = t->data;
  svc *S = w->S;
  char id[17];
  snprintf(id, sizeof id, "%s", w->si ? w->si->id : "");
  waiter_unlink(w);
  wfp_http_req *req = w->req;
  w->req = NULL;
  uv_close((uv_handle_t *)&w->timer, waiter_closed);
  if (w->get)
    answer_stored(S, req, id, 0);
  else
    answer_accepted(req, id, "pending");
}

static void add_waiter(svc *S, svc_inv *si, wfp_http_req *req, int64_t ms, bool get) {
  svc_waiter *w = calloc(1, sizeof *w);
  if (!w) {
    wfp_http_error(req, 500, "out of memory");
    return;
  }
  w->S = S;
  w->si = si;
  w->req = req;
  w->get = get;
  w->next = si->waiters;
  si->waiters = w;
  uv_timer_init(S->uv, &w->timer);
  w->timer.data = w;
  uv_timer_start(&w->timer, waiter_timeout, (uint64_t)ms, 0);
}

void wfp_svc_wake_waiters(svc *S, svc_inv *si, int status, const char *text, uint64_t steps) {
  (void)S;
  while (si->waiters) {
    svc_waiter *w = si->waiters;
    si->waiters = w->next;
    w->si = NULL;
    wfp__buf b;
    wfp__buf_init(&b);
    wfp_store_row r;
    memset(&r, 0, sizeof r);
    r.id = si->id;
    r.fn = si->fn;
    r.program = si->mod->hash;
    r.status = status == WFP_DONE ? WFP_STORE_DONE : WFP_STORE_TRAPPED;
    r.output = status == WFP_DONE ? text : NULL;
    r.trap = status == WFP_TRAP ? text : NULL;
    r.steps = steps;
    wfp_svc_row_json(&b, &r);
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, waiter_closed);
    wfp_http_req *req = w->req;
    w->req = NULL;
    send_json(req, 200, &b);
  }
}

void wfp_svc_drop_waiters(svc *S, svc_inv *si) {
  (void)S;
  while (si->waiters) {
    svc_waiter *w = si->waiters;
    si->waiters = w->next;
    w->si = NULL;
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, waiter_closed);
    wfp_http_error(w->req, 503, "the service is stopping");
    w->req = NULL;
  }
}

/* ?wait=MS: 0 when absent; -1 when malformed (answered). */
static int64_t wait_param(svc *S, wfp_http_req *req) {
  int bad = 0;
  char *v = wfp_http_param(req->query, "wait", &bad);
  int64_t ms = 0;
  if (bad || (v && (!wfp__parse_i64(v, strlen(v), &ms) || ms < 0 || ms > S->max_wait_ms))) {
    wfp_http_error(req, 400, "wait wants milliseconds from 0 to %lld", (long long)S->max_wait_ms);
    free(v);
    return -1;
  }
  free(v);
  return ms;
}

/* ---- POST /v1/invocations ---- */

/* An existing invocation (an idempotency key named it): as if just
** posted. */
static void answer_existing(svc *S, wfp_http_req *req, const char *id, int64_t wait) {
  svc_inv *si = wfp_svc_find(S, id);
  if (si) {
    if (wait > 0)
      add_waiter(S, si, req, wait, false);
    else
      answer_accepted(req, id, "pending");
    return;
  }
  api_read *r = read_new(req, RD_EXISTING);
  if (!r)
    return;
  snprintf(r->id, sizeof r->id, "%s", id);
  r->wait = wait;
  wfp_svc_read(S, read_work, read_after, r);
}

static void created(svc *S, svc_op *op) {
  wfp_http_req *req = op->req;
  op->req = NULL;
  if (op->busy) {
    wfp_http_error(req, 503, "another request with this Idempotency-Key is being taken; "
                             "retry it");
    return;
  }
  if (op->found) {
    answer_existing(S, req, op->found_id, op->wait_ms);
    return;
  }
  wfp_svc_count(S, op->fn, -1, WFP_STORE_PENDING);
  if (!op->owned) {
    /* several hosts: the one that holds its instance runs it */
    if (op->wait_ms > 0)
      wfp_svc_wait_remote(S, req, op->id, op->wait_ms, false);
    else
      answer_accepted(req, op->id, "pending");
    return;
  }
  svc_inv *si = wfp_svc_start_new(S, op->id, op->seq, op->mod, op->fn, op->input,
                                  strlen(op->input), op->origin, op->create.now_ms);
  if (si && op->wait_ms > 0)
    add_waiter(S, si, req, op->wait_ms, false);
  else
    answer_accepted(req, op->id, "pending");
}

static bool is_hex16(const char *s, size_t n) {
  if (n != 16)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return false;
  return true;
}

/* A JSON value (checked text) of a parameter's type: NULL, or what it
** should have been. */
static const char *arg_type_error(const char *v, size_t n, uint8_t ty) {
  int64_t x;
  switch (ty) {
  case WFP_TY_I64:
    return wfp__parse_i64(v, n, &x) ? NULL : "an integer in the i64 range";
  case WFP_TY_STR:
    return v[0] == '"' ? NULL : "a string";
  case WFP_TY_FN:
    return v[0] == '{' ? NULL : "a function value ({\"fn\": ID, \"args\": [...]})";
  default:
    return NULL;
  }
}

/* The arguments (checked JSON text) against function f's parameters:
** every one given, of its type, no other. 0, or answered with 400. */
static int check_args(wfp_http_req *req, const wfp_abi_func *f, const char *a, size_t n) {
  uint32_t np = f->nparams - f->ncaptures;
  const char *const *names = f->param_names + f->ncaptures;
  const uint8_t *types = f->param_types + f->ncaptures;
  size_t i = wfp__json_ws(a, 0, n);
  if (!a || (i < n && a[i] != '{' && a[i] != '[')) {
    wfp_http_error(req, 400, "$.args: an object of parameter names to values, or an array "
                             "of values, was expected");
    return -1;
  }
  bool seen[256];
  memset(seen, 0, sizeof seen);
  if (a[i] == '[') {
    uint32_t k = 0;
    i = wfp__json_ws(a, i + 1, n);
    while (i < n && a[i] != ']') {
      size_t e = wfp__json_skip(a, i, n);
      if (k >= np) {
        wfp_http_error(req, 400, "$.args: %s takes %u argument%s", f->name, np,
                       np == 1 ? "" : "s");
        return -1;
      }
      const char *why = arg_type_error(a + i, e - i, types[k]);
      if (why) {
        wfp_http_error(req, 400, "$.args[%u]: argument '%s' must be %s", k, names[k], why);
        return -1;
      }
      k++;
      i = wfp__json_ws(a, e, n);
      if (i < n && a[i] == ',')
        i = wfp__json_ws(a, i + 1, n);
    }
    if (k != np) {
      wfp_http_error(req, 400, "$.args: %s takes %u argument%s, %u given", f->name, np,
                     np == 1 ? "" : "s", k);
      return -1;
    }
    return 0;
  }
  wfp__json_mem m;
  while ((i = wfp__json_member(a, i, n, &m)) != 0) {
    uint32_t k = 0;
    while (k < np && !wfp__json_key_is(a, &m, names[k], strlen(names[k])))
      k++;
    if (k == np) {
      wfp__buf key;
      wfp__buf_init(&key);
      wfp__json_string(a, m.key, n, &key);
      wfp_http_error(req, 400, "$.args: %s has no parameter '%.64s'", f->name,
                     key.data ? key.data : "");
      wfp__buf_free(&key);
      return -1;
    }
    const char *why = arg_type_error(a + m.val, m.val_end - m.val, types[k]);
    if (why) {
      wfp_http_error(req, 400, "$.args.%s: argument '%s' must be %s", names[k], names[k], why);
      return -1;
    }
    if (k < sizeof seen)
      seen[k] = true;
  }
  for (uint32_t k = 0; k < np && k < sizeof seen; k++)
    if (!seen[k]) {
      wfp_http_error(req, 400, "$.args.%s: argument '%s' is missing", names[k], names[k]);
      return -1;
    }
  return 0;
}

/* Checks the body is one JSON object: 0, or answered. */
static int body_object(wfp_http_req *req) {
  size_t at = 0;
  const char *why = NULL;
  if (wfp__json_check(req->body, req->body_len, WFP_JSON_MAX_DEPTH, &at, &why) != 0) {
    wfp_http_error(req, 400, "the body is not JSON: %s (at byte %zu)", why ? why : "malformed",
                   at);
    return -1;
  }
  size_t i = wfp__json_ws(req->body, 0, req->body_len);
  if (i >= req->body_len || req->body[i] != '{') {
    wfp_http_error(req, 400, "the body must be a JSON object");
    return -1;
  }
  return 0;
}

static void post_invocation(svc *S, wfp_http_req *req, bool fetched);

static void post_again(svc *S, wfp_http_req *req, bool found) {
  (void)found; /* not found: the second pass answers 404 */
  post_invocation(S, req, true);
}

/* fetched: the instance named by "self" was looked for in the store */
static void post_invocation(svc *S, wfp_http_req *req, bool fetched) {
  int64_t wait = wait_param(S, req);
  if (wait < 0 || body_object(req))
    return;
  if (req->idem_key && (!req->idem_key[0] || strlen(req->idem_key) > IDEM_KEY_MAX)) {
    wfp_http_error(req, 400, "Idempotency-Key wants 1 to %d characters", IDEM_KEY_MAX);
    return;
  }
  const char *body = req->body;
  size_t n = req->body_len, i = wfp__json_ws(body, 0, n);
  wfp__json_mem m;
  wfp__buf fn, program;
  wfp__buf_init(&fn);
  wfp__buf_init(&program);
  const char *args = NULL;
  size_t args_len = 0;
  const char *self = NULL;
  size_t self_len = 0;
  int64_t handle = 0;
  bool has_fn = false, has_program = false;
  wfp_input *in = NULL;
  char *input = NULL;
  while ((i = wfp__json_member(body, i, n, &m)) != 0) {
    const char *v = body + m.val;
    size_t vl = m.val_end - m.val;
    if (wfp__json_key_is(body, &m, "fn", 2)) {
      if (*v != '"' || !wfp__json_string(body, m.val, n, &fn) || memchr(fn.data, 0, fn.len)) {
        wfp_http_error(req, 400, "\"fn\" must be a string: a function's name or id");
        goto out;
      }
      has_fn = true;
    } else if (wfp__json_key_is(body, &m, "program", 7)) {
      if (*v != '"' || !wfp__json_string(body, m.val, n, &program) ||
          !is_hex16(program.data ? program.data : "", program.len)) {
        wfp_http_error(req, 400, "\"program\" must be a program hash: 16 hex digits");
        goto out;
      }
      has_program = true;
    } else if (wfp__json_key_is(body, &m, "args", 4)) {
      args = v;
      args_len = vl;
    } else if (wfp__json_key_is(body, &m, "self", 4)) {
      if (!(vl == 4 && memcmp(v, "null", 4) == 0)) {
        self = v;
        self_len = vl;
      }
    } else {
      wfp__buf k;
      wfp__buf_init(&k);
      wfp__json_string(body, m.key, n, &k);
      wfp_http_error(req, 400, "unknown member \"%.64s\" (an invocation has fn, args, self "
                               "and program)", k.data ? k.data : "");
      wfp__buf_free(&k);
      goto out;
    }
  }
  svc_module *mod = NULL;
  const char *fname = has_fn ? fn.data : NULL;
  if (has_program) {
    if (!(mod = wfp_svc_module_by_hash(S, program.data))) {
      wfp_http_error(req, 404, "no module of program %s is loaded", program.data);
      goto out;
    }
    if (!fname)
      fname = wfp_module_entry(mod->m);
  } else if (!fname) {
    for (int k = S->nmods - 1; k >= 0 && !mod; k--)
      if (wfp_module_entry(S->mods[k].m)) {
        mod = &S->mods[k];
        fname = wfp_module_entry(mod->m);
      }
  } else {
    mod = wfp_svc_module_for(S, NULL, fname);
  }
  if (!fname) {
    wfp_http_error(req, 400, "no \"fn\", and no module has an entry function");
    goto out;
  }
  if (!mod || wfp_module_find(mod->m, fname) < 0) {
    wfp_http_error(req, 404, "no function '%s'%s%s", fname, has_program ? " in program " : "",
                   has_program ? program.data : "");
    goto out;
  }
  /* arguments are checked here, not by the program's first step: a
  ** wrong one is the request's fault (400), never an invocation's trap */
  const wfp_abi_func *f = &wfp_module_descriptor_of(mod->m)->funcs[wfp_module_find(mod->m, fname)];
  if (args ? check_args(req, f, args, args_len) != 0
           : f->nparams > f->ncaptures &&
                 (wfp_http_error(req, 400, "$.args: %s takes %u argument%s", f->name,
                                 f->nparams - f->ncaptures,
                                 f->nparams - f->ncaptures == 1 ? "" : "s"), 1)) {
    req = NULL;
    goto out;
  }
  if (!(in = wfp_input_new(mod->m)))
    goto oom;
  int rc = wfp_input_set_fn(in, fname);
  if (!rc && args)
    rc = wfp_input_set_args(in, args, args_len);
  if (!rc && self) {
    if (!wfp__parse_i64(self, self_len, &handle) || handle < 1) {
      wfp_http_error(req, 400, "\"self\" must be an instance's handle (a positive integer)");
      goto out;
    }
    if (!wfp_env_instance_resource(S->env, (uint64_t)handle)) {
      /* several hosts: one made by another host is read from the store,
      ** and the request taken again */
      if (!fetched && wfp_svc_instance_fetch(S, req, (uint64_t)handle, post_again)) {
        req = NULL;
        goto out;
      }
      wfp_http_error(req, 404, "no instance %lld", (long long)handle);
      goto out;
    }
    rc = wfp_input_set_self(in, (uint64_t)handle);
  }
  size_t input_len = 0;
  if (!rc)
    rc = wfp_input_finish(in, S->env, &input, &input_len);
  if (rc == WFP_ENOMEM)
    goto oom;
  if (rc) {
    const wfp_diag *d = wfp_input_diag(in);
    wfp_http_error(req, 400, "%s%s%s", d && d->path && d->path[0] ? d->path : "",
                   d && d->path && d->path[0] ? ": " : "", d ? d->msg : wfp_strerror(rc));
    goto out;
  }
  svc_op *op = calloc(1, sizeof *op);
  if (!op)
    goto oom;
  op->kind = SVC_OP_CREATE;
  wfp_svc_new_id(op->id);
  op->fn = strdup(fname);
  op->input = strndup(input, input_len);
  op->origin = strdup("http");
  op->idem = req->idem_key ? strdup(req->idem_key) : NULL;
  if (!op->fn || !op->input || !op->origin || (req->idem_key && !op->idem)) {
    wfp_svc_op_free(op);
    goto oom;
  }
  op->create.id = op->id;
  op->create.program = mod->hash;
  op->create.fn = op->fn;
  op->create.input = op->input;
  op->create.input_len = input_len;
  op->create.self = (uint64_t)handle;
  op->create.origin = op->origin;
  op->mod = mod;
  op->req = req;
  op->wait_ms = wait;
  op->done = created;
  wfp_svc_submit(S, op);
  req = NULL;
  goto out;
oom:
  wfp_http_error(req, 500, "out of memory");
  req = NULL;
out:
  wfp_free(input);
  wfp_input_free(in);
  wfp__buf_free(&fn);
  wfp__buf_free(&program);
}

/* ---- GET /v1/invocations/ID ---- */

static void get_invocation(svc *S, wfp_http_req *req, const char *id) {
  int64_t wait = wait_param(S, req);
  if (wait < 0)
    return;
  if (!is_hex16(id, strlen(id))) {
    wfp_http_error(req, 404, "no invocation '%.64s'", id);
    return;
  }
  svc_inv *si = wait > 0 ? wfp_svc_find(S, id) : NULL;
  if (si)
    add_waiter(S, si, req, wait, true);
  else
    answer_stored(S, req, id, wait);
}

/* ---- GET /v1/messages ---- */

static int msg_json(void *ud, const wfp_store_msg *m) {
  wfp__buf *b = ud;
  if (b->len > 13)
    wfp__buf_addc(b, ',');
  wfp__buf_printf(b, "{\"seq\":%lld,\"topic\":", (long long)m->seq);
  wfp__buf_add_jstr(b, m->topic, m->topic_len);
  wfp__buf_adds(b, ",\"payload\":");
  wfp__buf_add(b, m->payload, m->payload_len);
  wfp__buf_printf(b, ",\"invocation\":\"%s\"}", m->invocation);
  return b->oom ? WFP_ENOMEM : 0;
}

static int64_t int_param(wfp_http_req *req, const char *name, int64_t dflt, bool *bad) {
  int b = 0;
  char *v = wfp_http_param(req->query, name, &b);
  int64_t x = dflt;
  if (b || (v && (!wfp__parse_i64(v, strlen(v), &x) || x < 0)))
    *bad = true;
  free(v);
  return x;
}

static void get_messages(svc *S, wfp_http_req *req) {
  bool bad = false;
  int64_t after = int_param(req, "after", 0, &bad);
  int64_t limit = int_param(req, "limit", INT64_MAX, &bad);
  int b2 = 0;
  char *topic = wfp_http_param(req->query, "topic", &b2);
  if (bad || b2) {
    free(topic);
    wfp_http_error(req, 400, "messages take topic=T, after=SEQ and limit=N (whole numbers)");
    return;
  }
  api_read *r = read_new(req, RD_MSGS);
  if (!r) {
    free(topic);
    return;
  }
  r->topic = topic;
  r->after = after;
  r->limit = limit;
  wfp_svc_read(S, read_work, read_after, r);
}

/* ---- GET /v1/context ---- */

static int ctx_json(void *ud, const char *key, size_t len, int64_t v) {
  wfp__buf *b = ud;
  if (b->len > 1)
    wfp__buf_addc(b, ',');
  wfp__buf_add_jstr(b, key, len);
  wfp__buf_addc(b, ':');
  wfp__buf_add_i64(b, v);
  return b->oom ? WFP_ENOMEM : 0;
}

static void get_context(svc *S, wfp_http_req *req) {
  api_read *r = read_new(req, RD_CTX);
  if (r)
    wfp_svc_read(S, read_work, read_after, r);
}

/* ---- instances ---- */

static int inst_json(void *ud, uint64_t handle, const char *resource, const char *props) {
  wfp__buf *b = ud;
  wfp__buf_printf(b, "{\"handle\":%llu,\"resource\":", (unsigned long long)handle);
  wfp__buf_add_jstr(b, resource, strlen(resource));
  wfp__buf_adds(b, ",\"props\":");
  wfp__buf_adds(b, props);
  wfp__buf_addc(b, '}');
  return 0;
}

static void get_instance(svc *S, wfp_http_req *req, const char *hs) {
  int64_t h = 0;
  if (!wfp__parse_i64(hs, strlen(hs), &h) || h < 1) {
    wfp_http_error(req, 404, "no instance '%.64s'", hs);
    return;
  }
  api_read *r = read_new(req, RD_INST);
  if (!r)
    return;
  r->handle = (uint64_t)h;
  wfp_svc_read(S, read_work, read_after, r);
}

static void instance_created(svc *S, svc_op *op) {
  (void)S;
  char body[64];
  int n = snprintf(body, sizeof body, "{\"handle\":%llu}", (unsigned long long)op->handle);
  wfp_http_req *req = op->req;
  op->req = NULL;
  wfp_http_respond(req, 201, "application/json", body, (size_t)n);
}

/* Does the JSON value v[0..n) fit a property of type ty? */
static bool fits(const char *v, size_t n, uint8_t ty) {
  int64_t x;
  switch (ty) {
  case WFP_TY_I64:
    return wfp__parse_i64(v, n, &x);
  case WFP_TY_STR:
    return v[0] == '"';
  case WFP_TY_JSON:
    return true;
  default:
    return false;
  }
}

static const char *type_name(uint8_t ty) {
  return ty == WFP_TY_I64 ? "i64" : ty == WFP_TY_STR ? "str" : ty == WFP_TY_JSON ? "json" : "fn";
}

static void post_instance(svc *S, wfp_http_req *req) {
  if (body_object(req))
    return;
  const char *body = req->body;
  size_t n = req->body_len, i = wfp__json_ws(body, 0, n);
  wfp__json_mem m;
  wfp__buf res;
  wfp__buf_init(&res);
  const char *props = NULL;
  size_t props_len = 0;
  char *pj = NULL;
  while ((i = wfp__json_member(body, i, n, &m)) != 0) {
    if (wfp__json_key_is(body, &m, "resource", 8)) {
      if (body[m.val] != '"' || !wfp__json_string(body, m.val, n, &res) ||
          memchr(res.data, 0, res.len)) {
        wfp_http_error(req, 400, "\"resource\" must be a string: a resource's name");
        goto out;
      }
    } else if (wfp__json_key_is(body, &m, "props", 5)) {
      props = body + m.val;
      props_len = m.val_end - m.val;
      if (*props != '{') {
        wfp_http_error(req, 400, "\"props\" must be an object: property names to values");
        goto out;
      }
    } else {
      wfp_http_error(req, 400, "unknown member (an instance has resource and props)");
      goto out;
    }
  }
  if (!res.data) {
    wfp_http_error(req, 400, "\"resource\" is missing");
    goto out;
  }
  /* the last module that has the resource */
  svc_module *mod = NULL;
  const wfp_abi_resource *r = NULL;
  for (int k = S->nmods - 1; k >= 0 && !r; k--) {
    const wfp_module_desc *d = wfp_module_descriptor_of(S->mods[k].m);
    for (uint32_t j = 0; j < d->nresources && !r; j++)
      if (strcmp(d->resources[j].name, res.data) == 0) {
        r = &d->resources[j];
        mod = &S->mods[k];
      }
  }
  if (!r) {
    wfp_http_error(req, 404, "no resource '%s'", res.data);
    goto out;
  }
  /* every property checked before the instance exists */
  if (props) {
    size_t k = 0;
    while ((k = wfp__json_member(props, k, props_len, &m)) != 0) {
      wfp__buf name;
      wfp__buf_init(&name);
      wfp__json_string(props, m.key, props_len, &name);
      uint32_t p = 0;
      while (p < r->nprops && !(name.data && strcmp(r->prop_names[p], name.data) == 0))
        p++;
      bool ok = p < r->nprops;
      if (!ok)
        wfp_http_error(req, 400, "$.props: %s has no property '%.64s'", r->name,
                       name.data ? name.data : "");
      else if (!fits(props + m.val, m.val_end - m.val, r->prop_types[p])) {
        ok = false;
        wfp_http_error(req, 400, "$.props.%s: not a value of its type, %s", r->prop_names[p],
                       type_name(r->prop_types[p]));
      }
      wfp__buf_free(&name);
      if (!ok)
        goto out;
    }
  }
  uint64_t h = 0;
  int rc = wfp_svc_instance_new(S, mod, r->name, &h);
  if (rc == WFP_ELIMIT) {
    wfp_http_error(req, 503, "no instance handle at hand yet; retry");
    goto out;
  }
  if (rc)
    goto oom;
  if (props) {
    size_t k = 0;
    while ((k = wfp__json_member(props, k, props_len, &m)) != 0) {
      wfp__buf name;
      wfp__buf_init(&name);
      wfp__json_string(props, m.key, props_len, &name);
      char *val = strndup(props + m.val, m.val_end - m.val);
      rc = name.data && val ? wfp_env_instance_set(S->env, h, name.data, val) : WFP_ENOMEM;
      free(val);
      wfp__buf_free(&name);
      if (rc)
        goto oom;
    }
  }
  if (!(pj = wfp_svc_props_json(S, h)))
    goto oom;
  svc_op *op = calloc(1, sizeof *op);
  if (!op)
    goto oom;
  op->kind = SVC_OP_INSTANCE;
  op->handle = h;
  op->resource = strdup(r->name);
  op->props = pj;
  pj = NULL;
  if (!op->resource) {
    wfp_svc_op_free(op);
    goto oom;
  }
  op->req = req;
  op->done = instance_created;
  wfp_svc_submit(S, op);
  goto out;
oom:
  wfp_http_error(req, 500, "out of memory");
out:
  free(pj);
  wfp__buf_free(&res);
}

/* ---- routes ---- */

void wfp_svc_handle(void *ud, wfp_http_req *req) {
  svc *S = ud;
  const char *p = req->path;
  bool get = strcmp(req->method, "GET") == 0, post = strcmp(req->method, "POST") == 0;
  if (S->stopping) {
    wfp_http_error(req, 503, "the service is stopping");
    return;
  }
#define ONLY(cond, allowed)                                                    \
  do {                                                                         \
    if (!(cond)) {                                                             \
      wfp_http_error(req, 405, "%s %s: only %s", req->method, p, allowed);   \
      return;                                                                  \
    }                                                                          \
  } while (0)
  if (strcmp(p, "/v1/invocations") == 0) {
    ONLY(post, "POST");
    post_invocation(S, req, false);
  } else if (strncmp(p, "/v1/invocations/", 16) == 0 && p[16] && !strchr(p + 16, '/')) {
    ONLY(get, "GET");
    get_invocation(S, req, p + 16);
  } else if (strcmp(p, "/v1/messages") == 0) {
    ONLY(get, "GET");
    get_messages(S, req);
  } else if (strcmp(p, "/v1/context") == 0) {
    ONLY(get, "GET");
    get_context(S, req);
  } else if (strcmp(p, "/v1/instances") == 0) {
    ONLY(post, "POST");
    post_instance(S, req);
  } else if (strncmp(p, "/v1/instances/", 14) == 0 && p[14] && !strchr(p + 14, '/')) {
    ONLY(get, "GET");
    get_instance(S, req, p + 14);
  } else if (strcmp(p, "/v1/health") == 0) {
    ONLY(get, "GET");
    wfp_http_respond(req, 200, "application/json", "{\"ok\":true}", 11);
  } else if (strcmp(p, "/metrics") == 0) {
    ONLY(get, "GET");
    wfp_svc_metrics(S, req);
  } else if (strcmp(p, "/") == 0) {
    ONLY(get, "GET");
    wfp_svc_status_page(S, req);
  } else {
    wfp_http_error(req, 404, "no such route: %s %.200s", req->method, p);
  }
#undef ONLY
}
