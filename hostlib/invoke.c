/*
** invoke.c: invocations: the stepper loop of the WIT interface. A step runs
** the compiled code inside the trap boundary, copies what it returned out
** of the instance, and leaves a pending effect for perform(), which acts on
** the environment and prepares the resume value. Checkpoints serialize a
** pending invocation with its environment, behind a SHA-256 checksum.
** A step round trip makes no system call: buffers are reused.
*/
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#define WASM_RT_MEMCHECK_SIGNAL_HANDLER 0
#define WASM_RT_USE_STACK_DEPTH_COUNT 1
#include <wasm-rt.h>

#include "host_int.h"

enum { RUNNING = -1 };

struct wfp_invocation {
  wfp_module *m;
  wfp_env *e;
  char *input;
  size_t input_len;
  int status;   /* RUNNING, WFP_DONE, WFP_TRAP */
  bool pending; /* an effect waits for perform() */
  wfp__buf state;
  /* the pending effect, copied out of the instance */
  uint32_t effect;
  wfp__buf s0, s1, s2;
  bool has_s2;
  int64_t ival;
  /* what the next step resumes with */
  bool resume_some;
  wfp__buf resume;
  char *output;
  char *trap;
  uint64_t steps;
  uint64_t self; /* the instance of the input's "self", or 0 */
  uint64_t fuel_used, fuel_max, fuel_slice;
  uint64_t max_steps; /* the step limit, which a fan-out's invocations inherit */
  int depth;          /* fan-out nesting: 0 for an invocation the host started */
  wfp_trace_fn trace;
  void *trace_ud;
  wfp__buf line; /* trace and pending-json scratch */
};

static const char *const effect_names[WFP_EFFECT_COUNT] = {
    "ctx-get-i64", "ctx-set-i64", "msg-send", "sleep-ms",
    "db-query",    "self-get",    "self-set", "yield"};

int wfp_invocation_new(wfp_module *m, wfp_env *e, const char *input, size_t len,
                       wfp_invocation **out) {
  if (!m || !e || !out || (!input && len))
    return WFP_EINVAL;
  *out = NULL;
  wfp_invocation *inv = calloc(1, sizeof *inv);
  if (!inv)
    return WFP_ENOMEM;
  inv->input = malloc(len + 1);
  if (!inv->input) {
    free(inv);
    return WFP_ENOMEM;
  }
  if (len)
    memcpy(inv->input, input, len);
  inv->input[len] = 0;
  inv->input_len = len;
  /* the instance a method runs on: the host performs self_get / self_set
  ** on it; the guest never sees handles */
  cJSON *j = NULL;
  if (len && wfp__json_parse(input, len, &j) == WFP_ENOMEM) {
    free(inv->input);
    free(inv);
    return WFP_ENOMEM;
  }
  const cJSON *self = cJSON_GetObjectItemCaseSensitive(j, "self");
  if (self && !cJSON_IsNull(self)) {
    double v = cJSON_IsNumber(self) ? self->valuedouble : -1;
    if (v < 1 || v > 9007199254740992.0 || v != (double)(uint64_t)v) {
      cJSON_Delete(j);
      free(inv->input);
      free(inv);
      return WFP_EINVAL;
    }
    inv->self = (uint64_t)v;
  }
  cJSON_Delete(j);
  inv->m = m;
  inv->e = e;
  inv->status = RUNNING;
  *out = inv;
  return WFP_OK;
}

void wfp_invocation_free(wfp_invocation *inv) {
  if (!inv)
    return;
  free(inv->input);
  wfp__buf_free(&inv->state);
  wfp__buf_free(&inv->s0);
  wfp__buf_free(&inv->s1);
  wfp__buf_free(&inv->s2);
  wfp__buf_free(&inv->resume);
  wfp__buf_free(&inv->line);
  free(inv->output);
  free(inv->trap);
  free(inv);
}

void wfp_invocation_set_trace(wfp_invocation *inv, wfp_trace_fn fn, void *ud) {
  if (!inv)
    return;
  inv->trace = fn;
  inv->trace_ud = ud;
}

const char *wfp_invocation_output(const wfp_invocation *inv) {
  return inv && inv->status == WFP_DONE ? inv->output : NULL;
}
const char *wfp_invocation_trap_message(const wfp_invocation *inv) {
  return inv && inv->status == WFP_TRAP ? inv->trap : NULL;
}
uint64_t wfp_invocation_steps(const wfp_invocation *inv) { return inv ? inv->steps : 0; }
uint64_t wfp_invocation_self(const wfp_invocation *inv) { return inv ? inv->self : 0; }
uint64_t wfp_invocation_fuel_used(const wfp_invocation *inv) { return inv ? inv->fuel_used : 0; }

#define DEFAULT_FUEL_SLICE 1000000u

int wfp_invocation_set_fuel(wfp_invocation *inv, uint64_t max_total, uint64_t per_step) {
  if (!inv)
    return WFP_EINVAL;
  inv->fuel_max = max_total;
  inv->fuel_slice = per_step;
  return WFP_OK;
}

/* Replaces b's content with p[0..n), NUL-terminated. The buffer only ever
** grows, so a steady stream of steps allocates nothing. */
static void set_bytes(wfp__buf *b, const void *p, size_t n) {
  b->len = 0;
  b->oom = false;
  if (n >= b->cap && !wfp__buf_reserve(b, n))
    return;
  if (n)
    memcpy(b->data, p, n);
  b->data[n] = 0;
  b->len = n;
}

static char *dupn(const void *p, size_t n) {
  char *s = malloc(n + 1);
  if (s) {
    if (n)
      memcpy(s, p, n);
    s[n] = 0;
  }
  return s;
}

static int end_trap(wfp_invocation *inv, const char *msg, size_t n) {
  free(inv->trap);
  inv->trap = dupn(msg, n);
  inv->status = WFP_TRAP;
  inv->pending = false;
  return inv->trap ? WFP_TRAP : WFP_ENOMEM;
}

/* ---- JSON of the pending effect ---- */

static void add_raw_or_null(wfp__buf *b, const wfp__buf *v) {
  if (v->len)
    wfp__buf_add(b, v->data, v->len);
  else
    wfp__buf_adds(b, "null");
}

static void effect_json(wfp_invocation *inv, wfp__buf *b) {
  wfp__buf_adds(b, "{\"effect\":\"");
  wfp__buf_adds(b, inv->effect < WFP_EFFECT_COUNT ? effect_names[inv->effect] : "?");
  wfp__buf_addc(b, '"');
  switch (inv->effect) {
  case WFP_EFFECT_CTX_GET_I64:
  case WFP_EFFECT_CTX_SET_I64:
    wfp__buf_adds(b, ",\"key\":");
    wfp__buf_add_jstr(b, inv->s0.data ? inv->s0.data : "", inv->s0.len);
    if (inv->effect == WFP_EFFECT_CTX_SET_I64) {
      wfp__buf_adds(b, ",\"value\":");
      wfp__buf_add_i64(b, inv->ival);
    }
    break;
  case WFP_EFFECT_MSG_SEND:
    wfp__buf_adds(b, ",\"topic\":");
    wfp__buf_add_jstr(b, inv->s0.data ? inv->s0.data : "", inv->s0.len);
    wfp__buf_adds(b, ",\"payload\":");
    add_raw_or_null(b, &inv->s1);
    break;
  case WFP_EFFECT_SLEEP_MS:
    wfp__buf_adds(b, ",\"ms\":");
    wfp__buf_add_i64(b, inv->ival);
    break;
  case WFP_EFFECT_DB_QUERY:
    wfp__buf_adds(b, ",\"sql\":");
    wfp__buf_add_jstr(b, inv->s0.data ? inv->s0.data : "", inv->s0.len);
    wfp__buf_adds(b, ",\"params\":");
    add_raw_or_null(b, &inv->s1);
    if (inv->has_s2) {
      wfp__buf_adds(b, ",\"each\":");
      add_raw_or_null(b, &inv->s2);
    }
    break;
  case WFP_EFFECT_SELF_GET:
  case WFP_EFFECT_SELF_SET:
    wfp__buf_adds(b, ",\"property\":");
    wfp__buf_add_jstr(b, inv->s0.data ? inv->s0.data : "", inv->s0.len);
    if (inv->effect == WFP_EFFECT_SELF_SET) {
      wfp__buf_adds(b, ",\"value\":");
      add_raw_or_null(b, &inv->s1);
    }
    break;
  default:
    break;
  }
  wfp__buf_addc(b, '}');
}

const char *wfp_invocation_pending_json(wfp_invocation *inv) {
  if (!inv || !inv->pending)
    return NULL;
  inv->line.len = 0;
  inv->line.oom = false;
  effect_json(inv, &inv->line);
  return inv->line.oom ? NULL : inv->line.data;
}

/* false when the line could not be made (out of memory) */
static bool trace_step(wfp_invocation *inv) {
  wfp__buf *b = &inv->line;
  b->len = 0;
  b->oom = false;
  wfp__buf_printf(b, "{\"step\":%llu,\"fuel\":%llu,\"status\":",
                  (unsigned long long)inv->steps, (unsigned long long)inv->fuel_used);
  if (inv->status == WFP_DONE) {
    wfp__buf_adds(b, "\"done\",\"output\":");
    wfp__buf_adds(b, inv->output);
  } else if (inv->status == WFP_TRAP) {
    wfp__buf_adds(b, "\"trap\",\"message\":");
    wfp__buf_add_jstr(b, inv->trap, strlen(inv->trap));
  } else {
    wfp__buf_adds(b, "\"pending\",\"pending\":");
    effect_json(inv, b);
    wfp__buf_printf(b, ",\"state_bytes\":%zu", inv->state.len);
  }
  wfp__buf_addc(b, '}');
  if (b->oom)
    return false;
  inv->trace(inv->trace_ud, b->data);
  return true;
}

/* ---- a step ---- */

typedef struct step_call {
  wfp_invocation *inv;
  void *inst;
  wfp_abi_step out;
  int rc;   /* run_step's */
  int took; /* take()'s */
  int64_t budget;
  int64_t used;
} step_call;

static int take(wfp_invocation *inv, const wfp_abi_step *o);

/* One boundary for the whole round trip: run-step, copying the result out
** of the instance, post-return. (No signal handler is involved: host code
** inside the boundary is as safe as outside it.) */
static void do_step(void *arg) {
  step_call *c = arg;
  wfp_invocation *inv = c->inv;
  const wfp_module_desc *d = inv->m->d;
  d->set_fuel(c->inst, c->budget);
  c->rc = d->run_step(c->inst, 0, inv->input, (uint32_t)inv->input_len,
                      (const uint8_t *)(inv->state.len ? inv->state.data : ""),
                      (uint32_t)inv->state.len, inv->resume_some,
                      inv->resume.len ? inv->resume.data : "",
                      (uint32_t)inv->resume.len, &c->out);
  if (c->rc != 0)
    return;
  c->used = d->fuel_used(c->inst);
  c->took = take(inv, &c->out);
  d->post_return(c->inst);
}

/* Copies the step's result out of the instance. */
static int take(wfp_invocation *inv, const wfp_abi_step *o) {
  switch (o->kind) {
  case WFP_STEP_DONE:
    free(inv->output);
    inv->output = dupn(o->text.ptr, o->text.len);
    if (!inv->output)
      return WFP_ENOMEM;
    inv->status = WFP_DONE;
    return WFP_DONE;
  case WFP_STEP_TRAP:
    return end_trap(inv, (const char *)o->text.ptr, o->text.len);
  default:
    set_bytes(&inv->state, o->state.ptr, o->state.len);
    inv->effect = o->effect;
    set_bytes(&inv->s0, o->s0.ptr, o->s0.len);
    /* s1 and s2 only where the effect has them */
    set_bytes(&inv->s1, o->s1.ptr, o->effect == WFP_EFFECT_MSG_SEND ||
                                           o->effect == WFP_EFFECT_SELF_SET ||
                                           o->effect == WFP_EFFECT_DB_QUERY
                                       ? o->s1.len
                                       : 0);
    set_bytes(&inv->s2, o->s2.ptr, o->has_s2 ? o->s2.len : 0);
    inv->has_s2 = o->has_s2 != 0;
    inv->ival = o->i;
    if (inv->state.oom || inv->s0.oom || inv->s1.oom || inv->s2.oom)
      return WFP_ENOMEM;
    inv->pending = true;
    return WFP_PENDING;
  }
}

int wfp_invocation_step(wfp_invocation *inv) {
  if (!inv || inv->status != RUNNING || inv->pending)
    return WFP_EINVAL;
  /* the step's fuel: a slice, or what the limit leaves; a spent limit ends
  ** the invocation before another step */
  uint64_t budget = inv->fuel_slice ? inv->fuel_slice : DEFAULT_FUEL_SLICE;
  if (inv->fuel_max) {
    if (inv->fuel_used >= inv->fuel_max) {
      char msg[96];
      snprintf(msg, sizeof msg, "fuel limit reached (%llu units)",
               (unsigned long long)inv->fuel_max);
      return end_trap(inv, msg, strlen(msg));
    }
    if (inv->fuel_max - inv->fuel_used < budget)
      budget = inv->fuel_max - inv->fuel_used;
  }
  /* no instance for want of memory: the step did not happen */
  const char *why = NULL;
  void *inst = wfp__module_instance(inv->m, &why);
  if (!inst)
    return WFP_ENOMEM;
  inv->steps++;
  step_call c;
  c.inv = inv;
  c.inst = inst;
  c.rc = 0;
  c.took = WFP_EINTERNAL;
  c.budget = (int64_t)budget;
  bool oom = false;
  int trap = wfp__rt_protect(do_step, &c, &oom);
  int rc;
  if (trap) {
    /* a Wasm trap: the instance's own stack pointer is lost with it */
    char msg[512];
    const char *fatal = "";
    if (trap == WASM_RT_TRAP_UNREACHABLE)
      fatal = inv->m->d->fatal_message(inst);
    if (oom)
      snprintf(msg, sizeof msg, "out of memory");
    else if (fatal[0])
      snprintf(msg, sizeof msg, "%s", fatal);
    else
      snprintf(msg, sizeof msg, "%s", wasm_rt_strerror((wasm_rt_trap_t)trap));
    wfp__module_discard(inv->m);
    rc = end_trap(inv, msg, strlen(msg));
  } else if (c.rc != 0) {
    wfp__module_discard(inv->m);
    static const char bad[] = "internal error: the module returned a malformed step result";
    rc = end_trap(inv, bad, sizeof bad - 1);
  } else {
    inv->fuel_used += c.used > 0 ? (uint64_t)c.used : 0;
    rc = c.took;
  }
  /* the step happened; that its trace line is missing is said */
  if (inv->trace && rc >= 0 && !trace_step(inv))
    rc = WFP_ENOMEM;
  return rc;
}

/* ---- effects ---- */

static void resume_none(wfp_invocation *inv) {
  inv->resume_some = false;
  inv->resume.len = 0;
}

/* The effect failed: the guest turns {"error": ...} into a trap. */
static void resume_error(wfp_invocation *inv, const char *fmt, ...) WFP__PRINTF(2, 3);
static void resume_error(wfp_invocation *inv, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  inv->resume.len = 0;
  inv->resume.oom = false;
  wfp__buf_adds(&inv->resume, "{\"error\":");
  wfp__buf_add_jstr(&inv->resume, msg, strlen(msg));
  wfp__buf_addc(&inv->resume, '}');
  inv->resume_some = true;
}

/* Fan-outs inside fan-outs: each level is a db_query with each run by a
** function a db_query with each called; deeper is a runaway. */
#define FANOUT_DEPTH_MAX 8

/* db_query with each: the function runs once per row, each as its own
** invocation on the same module and environment (its context, messages and
** database), to completion, with the parent's limits; the query resumes
** with the array of their return values. A row that traps fails the query.
** The parent waits between two steps, so the instance is free: its state
** is all in its bytes. */
static int fan_out(wfp_invocation *inv, const wfp__buf *rows, const wfp__buf *offs,
                   size_t nrows) {
  const char *each = inv->s2.data ? inv->s2.data : "";
  size_t en = inv->s2.len;
  /* the guest's form: {"fn":"<16 hex digits>","args":[...]} */
  if (en < 33 || memcmp(each, "{\"fn\":\"", 7) != 0 || each[23] != '"' ||
      memcmp(each + en - 2, "]}", 2) != 0) {
    resume_error(inv, "db_query: the each function value is malformed");
    return WFP_OK;
  }
  char id[17];
  memcpy(id, each + 7, 16);
  id[16] = 0;
  int fi = wfp_module_find(inv->m, id);
  if (fi < 0) {
    resume_error(inv, "db_query: each names no function of this module (%s)", id);
    return WFP_OK;
  }
  if (inv->depth >= FANOUT_DEPTH_MAX) {
    resume_error(inv, "db_query: each nests fan-outs more than %d deep", FANOUT_DEPTH_MAX);
    return WFP_OK;
  }
  bool json_result = inv->m->d->funcs[fi].result_type == WFP_TY_JSON;
  bool noargs = memcmp(each + en - 3, "[]}", 3) == 0;
  wfp__buf out, input;
  wfp__buf_init(&out);
  wfp__buf_init(&input);
  wfp__buf_adds(&out, "{\"rows\":[");
  int rc = WFP_OK;
  bool failed = false;
  for (size_t r = 0; r < nrows && !rc && !failed; r++) {
    size_t se[2];
    memcpy(se, offs->data + r * sizeof se, sizeof se);
    input.len = 0;
    wfp__buf_add(&input, each, en - 2);
    if (!noargs)
      wfp__buf_addc(&input, ',');
    wfp__buf_add(&input, rows->data + se[0], se[1] - se[0]);
    wfp__buf_adds(&input, "]}");
    if (input.oom) {
      rc = WFP_ENOMEM;
      break;
    }
    wfp_invocation *c;
    rc = wfp_invocation_new(inv->m, inv->e, input.data, input.len, &c);
    if (rc)
      break;
    c->depth = inv->depth + 1;
    c->fuel_max = inv->fuel_max;
    c->fuel_slice = inv->fuel_slice;
    c->max_steps = inv->max_steps;
    int st = wfp_invocation_run(c, inv->max_steps);
    if (st < 0) {
      rc = st;
    } else if (st == WFP_TRAP) {
      resume_error(inv, "db_query each, row %zu: %s", r + 1, c->trap);
      failed = true;
    } else {
      /* its return value: a json result is the output; any other is the
      ** output's "result" */
      const char *o = c->output;
      size_t on = strlen(o);
      if (r)
        wfp__buf_addc(&out, ',');
      if (!json_result && on >= 11 && memcmp(o, "{\"result\":", 10) == 0)
        wfp__buf_add(&out, o + 10, on - 11);
      else
        wfp__buf_add(&out, o, on);
    }
    wfp_invocation_free(c);
  }
  wfp__buf_adds(&out, "]}");
  if (!rc && out.oom)
    rc = WFP_ENOMEM;
  if (!rc && !failed) {
    set_bytes(&inv->resume, out.data, out.len);
    inv->resume_some = true;
    if (inv->resume.oom)
      rc = WFP_ENOMEM;
  }
  wfp__buf_free(&out);
  wfp__buf_free(&input);
  return rc;
}

static int db_query(wfp_invocation *inv) {
  wfp__buf rows, offs;
  wfp__buf_init(&rows);
  wfp__buf_init(&offs);
  char err[512] = "";
  size_t nrows = 0;
  int rc = wfp__db_query(inv->e, inv->s0.data ? inv->s0.data : "", inv->s0.len,
                         inv->s1.data, inv->s1.len, &rows, inv->has_s2 ? &offs : NULL,
                         &nrows, err, sizeof err);
  if (rc == WFP_ENOMEM) {
    /* out of memory is the host's failure, not the program's */
  } else if (rc) {
    resume_error(inv, "db_query: %s", err);
    rc = WFP_OK;
  } else if (inv->has_s2) {
    rc = fan_out(inv, &rows, &offs, nrows);
  } else {
    inv->resume.len = 0;
    inv->resume.oom = false;
    wfp__buf_adds(&inv->resume, "{\"rows\":");
    wfp__buf_add(&inv->resume, rows.data, rows.len);
    wfp__buf_addc(&inv->resume, '}');
    inv->resume_some = true;
  }
  wfp__buf_free(&rows);
  wfp__buf_free(&offs);
  return rc;
}

static void sleep_ms(int64_t ms) {
  if (ms <= 0)
    return;
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

int wfp_invocation_perform(wfp_invocation *inv) {
  if (!inv || !inv->pending)
    return WFP_EINVAL;
  wfp_env *e = inv->e;
  const char *s0 = inv->s0.data ? inv->s0.data : "";
  int rc = WFP_OK;
  switch (inv->effect) {
  case WFP_EFFECT_CTX_GET_I64: {
    int64_t v;
    if (wfp__env_ctx_getn(e, s0, inv->s0.len, &v) == WFP_OK) {
      /* the hot path: {"i64":N} written in place */
      inv->resume.len = 0;
      inv->resume.oom = false;
      if (inv->resume.cap >= 32 || wfp__buf_reserve(&inv->resume, 32)) {
        char *r = inv->resume.data;
        memcpy(r, "{\"i64\":", 7);
        size_t n = 7 + wfp__fmt_i64(r + 7, v);
        r[n++] = '}';
        r[n] = 0;
        inv->resume.len = n;
      }
      inv->resume_some = true;
    } else {
      resume_error(inv, "context key '%.*s' is not set", (int)inv->s0.len, s0);
    }
    break;
  }
  case WFP_EFFECT_CTX_SET_I64:
    rc = wfp__env_ctx_setn(e, s0, inv->s0.len, inv->ival);
    resume_none(inv);
    break;
  case WFP_EFFECT_MSG_SEND:
    rc = wfp__env_msg_add(e, s0, inv->s0.len, inv->s1.data ? inv->s1.data : "",
                          inv->s1.len);
    resume_none(inv);
    break;
  case WFP_EFFECT_SLEEP_MS:
    sleep_ms(inv->ival);
    resume_none(inv);
    break;
  case WFP_EFFECT_YIELD:
    resume_none(inv);
    break;
  case WFP_EFFECT_DB_QUERY:
    rc = db_query(inv);
    break;
  case WFP_EFFECT_SELF_GET:
  case WFP_EFFECT_SELF_SET: {
    inst_ent *in = wfp__env_instance(e, inv->self);
    prop_ent *pr = wfp__env_prop(in, s0, inv->s0.len);
    const char *op = inv->effect == WFP_EFFECT_SELF_GET ? "self_get" : "self_set";
    if (!inv->self) {
      resume_error(inv, "%s: this invocation runs on no resource instance "
                   "(its input has no \"self\"; wfp-host: --new)", op);
      break;
    }
    if (!in) {
      resume_error(inv, "%s: there is no resource instance %llu", op,
                   (unsigned long long)inv->self);
      break;
    }
    if (!pr) {
      resume_error(inv, "%s: resource instance %llu (a %s) has no property '%.*s'", op,
                   (unsigned long long)inv->self, in->resource, (int)inv->s0.len, s0);
      break;
    }
    if (inv->effect == WFP_EFFECT_SELF_GET) {
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
        resume_error(inv, "self_set: the value does not fit property '%.*s'",
                     (int)inv->s0.len, s0);
        break;
      }
      free(pr->json);
      pr->json = c;
      resume_none(inv);
    }
    break;
  }
  default:
    resume_error(inv, "this host cannot perform the effect '%s'",
                 inv->effect < WFP_EFFECT_COUNT ? effect_names[inv->effect] : "?");
    break;
  }
  if (rc)
    return rc;
  if (inv->resume.oom)
    return WFP_ENOMEM;
  inv->pending = false;
  if (inv->trace) {
    /* the effect was performed; that its trace line is missing is said */
    wfp__buf *b = &inv->line;
    b->len = 0;
    b->oom = false;
    wfp__buf_printf(b, "{\"step\":%llu,\"performed\":", (unsigned long long)inv->steps);
    effect_json(inv, b);
    wfp__buf_adds(b, ",\"resume\":");
    if (inv->resume_some)
      wfp__buf_add(b, inv->resume.data, inv->resume.len);
    else
      wfp__buf_adds(b, "null");
    wfp__buf_addc(b, '}');
    if (b->oom)
      return WFP_ENOMEM;
    inv->trace(inv->trace_ud, b->data);
  }
  return WFP_OK;
}

int wfp_invocation_set_max_steps(wfp_invocation *inv, uint64_t max_steps) {
  if (!inv)
    return WFP_EINVAL;
  inv->max_steps = max_steps;
  return WFP_OK;
}

int wfp_invocation_run(wfp_invocation *inv, uint64_t max_steps) {
  if (!inv)
    return WFP_EINVAL;
  inv->max_steps = max_steps;
  for (;;) {
    if (inv->status != RUNNING)
      return inv->status;
    if (inv->pending) {
      int rc = wfp_invocation_perform(inv);
      if (rc)
        return rc;
    }
    if (max_steps && inv->steps >= max_steps) {
      char msg[96];
      snprintf(msg, sizeof msg, "step limit reached (%llu steps)",
               (unsigned long long)max_steps);
      return end_trap(inv, msg, strlen(msg));
    }
    int rc = wfp_invocation_step(inv);
    if (rc < 0)
      return rc;
  }
}

/* ---- checkpoints ----
** "WFPC1 <sha256 of the body, hex>\n" then the body, JSON:
** {"format":"wfp-checkpoint","version":1,"program":H,"input":S,"steps":N,
**  "fuel":N,"fuel_max":N,"fuel_slice":N (0: none, the default),
**  "state":BASE64,"effect":{"kind":K,"s0":S,"s1":S,"s2":S|null,"i":"N"},
**  "ctx":[[key,"N"],...],"messages":[[topic,payload],...],
**  "instances":[{"handle":"N","resource":R,"props":[[name,type,json],...]}],
**  "db":PATH|null (db_query's database file; absent in older checkpoints)}
** Integers are decimal strings: exact whatever the JSON reader. */

#define CKPT_MAGIC "WFPC1 "

int wfp_invocation_checkpoint(const wfp_invocation *inv, char **out, size_t *len) {
  if (!inv || !out || !inv->pending)
    return WFP_EINVAL;
  wfp__buf b;
  wfp__buf_init(&b);
  wfp__buf_adds(&b, "{\"format\":\"wfp-checkpoint\",\"version\":1,\"program\":");
  const char *h = inv->m->d->program_hash;
  wfp__buf_add_jstr(&b, h, strlen(h));
  wfp__buf_adds(&b, ",\"input\":");
  wfp__buf_add_jstr(&b, inv->input, inv->input_len);
  wfp__buf_printf(&b,
                  ",\"steps\":\"%llu\",\"fuel\":\"%llu\",\"fuel_max\":\"%llu\","
                  "\"fuel_slice\":\"%llu\",\"state\":\"",
                  (unsigned long long)inv->steps, (unsigned long long)inv->fuel_used,
                  (unsigned long long)inv->fuel_max, (unsigned long long)inv->fuel_slice);
  wfp__buf_add_base64(&b, inv->state.data, inv->state.len);
  wfp__buf_printf(&b, "\",\"effect\":{\"kind\":%u,\"s0\":", inv->effect);
  wfp__buf_add_jstr(&b, inv->s0.data ? inv->s0.data : "", inv->s0.len);
  wfp__buf_adds(&b, ",\"s1\":");
  wfp__buf_add_jstr(&b, inv->s1.data ? inv->s1.data : "", inv->s1.len);
  wfp__buf_adds(&b, ",\"s2\":");
  if (inv->has_s2)
    wfp__buf_add_jstr(&b, inv->s2.data ? inv->s2.data : "", inv->s2.len);
  else
    wfp__buf_adds(&b, "null");
  wfp__buf_adds(&b, ",\"i\":\"");
  wfp__buf_add_i64(&b, inv->ival);
  wfp__buf_adds(&b, "\"},\"ctx\":[");
  for (size_t i = 0; i < inv->e->nctx; i++) {
    if (i)
      wfp__buf_addc(&b, ',');
    wfp__buf_addc(&b, '[');
    wfp__buf_add_jstr(&b, inv->e->ctx[i].key, strlen(inv->e->ctx[i].key));
    wfp__buf_adds(&b, ",\"");
    wfp__buf_add_i64(&b, inv->e->ctx[i].v);
    wfp__buf_adds(&b, "\"]");
  }
  wfp__buf_adds(&b, "],\"messages\":[");
  for (size_t i = 0; i < inv->e->nmsgs; i++) {
    if (i)
      wfp__buf_addc(&b, ',');
    wfp__buf_addc(&b, '[');
    wfp__buf_add_jstr(&b, inv->e->msgs[i].topic, strlen(inv->e->msgs[i].topic));
    wfp__buf_addc(&b, ',');
    wfp__buf_add_jstr(&b, inv->e->msgs[i].payload, strlen(inv->e->msgs[i].payload));
    wfp__buf_addc(&b, ']');
  }
  wfp__buf_adds(&b, "],\"instances\":[");
  for (size_t i = 0; i < inv->e->ninsts; i++) {
    const inst_ent *in = &inv->e->insts[i];
    if (i)
      wfp__buf_addc(&b, ',');
    wfp__buf_printf(&b, "{\"handle\":\"%llu\",\"resource\":", (unsigned long long)in->handle);
    wfp__buf_add_jstr(&b, in->resource, strlen(in->resource));
    wfp__buf_adds(&b, ",\"props\":[");
    for (size_t k = 0; k < in->nprops; k++) {
      if (k)
        wfp__buf_addc(&b, ',');
      wfp__buf_addc(&b, '[');
      wfp__buf_add_jstr(&b, in->props[k].name, strlen(in->props[k].name));
      wfp__buf_printf(&b, ",%u,", in->props[k].type);
      wfp__buf_add_jstr(&b, in->props[k].json, strlen(in->props[k].json));
      wfp__buf_addc(&b, ']');
    }
    wfp__buf_adds(&b, "]}");
  }
  wfp__buf_adds(&b, "],\"db\":");
  if (inv->e->db_path)
    wfp__buf_add_jstr(&b, inv->e->db_path, strlen(inv->e->db_path));
  else
    wfp__buf_adds(&b, "null");
  wfp__buf_adds(&b, "}\n");
  if (b.oom) {
    wfp__buf_free(&b);
    return WFP_ENOMEM;
  }
  uint8_t sum[32];
  char hex[65];
  wfp__sha256_buf(b.data, b.len, sum);
  wfp__hex(sum, 32, hex);
  wfp__buf f;
  wfp__buf_init(&f);
  wfp__buf_adds(&f, CKPT_MAGIC);
  wfp__buf_adds(&f, hex);
  wfp__buf_addc(&f, '\n');
  wfp__buf_add(&f, b.data, b.len);
  wfp__buf_free(&b);
  if (f.oom) {
    wfp__buf_free(&f);
    return WFP_ENOMEM;
  }
  *out = wfp__buf_take(&f, len);
  return WFP_OK;
}

static int corrupt(char *err, size_t n, const char *why) {
  if (err && n)
    snprintf(err, n, "invalid checkpoint: %s", why);
  return WFP_ECORRUPT;
}

static const char *jstr(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool jint(const char *s, int64_t *v) {
  return s && wfp__parse_i64(s, strlen(s), v);
}

int wfp_invocation_restore(wfp_module *m, wfp_env *e, const char *data, size_t len,
                           wfp_invocation **out, char *err, size_t errlen) {
  if (!m || !e || !out || (!data && len))
    return WFP_EINVAL;
  *out = NULL;
  size_t hl = sizeof CKPT_MAGIC - 1 + 64 + 1;
  if (len < hl || memcmp(data, CKPT_MAGIC, sizeof CKPT_MAGIC - 1) != 0 ||
      data[hl - 1] != '\n')
    return corrupt(err, errlen, "not a wfp checkpoint, or truncated");
  uint8_t sum[32];
  char hex[65];
  wfp__sha256_buf(data + hl, len - hl, sum);
  wfp__hex(sum, 32, hex);
  if (memcmp(hex, data + sizeof CKPT_MAGIC - 1, 64) != 0)
    return corrupt(err, errlen, "checksum mismatch (truncated or tampered with)");
  cJSON *j;
  int prc = wfp__json_parse(data + hl, len - hl, &j);
  if (prc == WFP_ENOMEM)
    return WFP_ENOMEM;
  if (!j)
    return corrupt(err, errlen, "malformed body");
  int rc = WFP_ECORRUPT;
  const char *why = "malformed body";
  wfp_invocation *inv = NULL;
  const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "version");
  const char *prog = jstr(j, "program"), *input = jstr(j, "input");
  const char *steps = jstr(j, "steps"), *state = jstr(j, "state");
  int64_t fuel, fuel_max, fuel_slice;
  bool fuel_ok = jint(jstr(j, "fuel"), &fuel) && fuel >= 0 &&
                 jint(jstr(j, "fuel_max"), &fuel_max) && fuel_max >= 0 &&
                 jint(jstr(j, "fuel_slice"), &fuel_slice) && fuel_slice >= 0;
  const cJSON *eff = cJSON_GetObjectItemCaseSensitive(j, "effect");
  const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(j, "ctx");
  const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(j, "messages");
  const cJSON *insts = cJSON_GetObjectItemCaseSensitive(j, "instances");
  const char *f = jstr(j, "format");
  int64_t nsteps, kind, ival;
  if (!f || strcmp(f, "wfp-checkpoint") != 0 || !cJSON_IsNumber(fmt) ||
      fmt->valuedouble != 1 || !prog || !input || !jint(steps, &nsteps) ||
      nsteps < 1 || !fuel_ok || !state || !cJSON_IsObject(eff) || !cJSON_IsArray(ctx) ||
      !cJSON_IsArray(msgs) || !cJSON_IsArray(insts))
    goto out;
  if (strcmp(prog, m->d->program_hash) != 0) {
    if (err && errlen)
      snprintf(err, errlen,
               "the checkpoint was written for program %s; this module is "
               "program %s",
               prog, m->d->program_hash);
    rc = WFP_EFOREIGN;
    goto out;
  }
  const cJSON *k = cJSON_GetObjectItemCaseSensitive(eff, "kind");
  const char *s0 = jstr(eff, "s0"), *s1 = jstr(eff, "s1");
  const cJSON *s2 = cJSON_GetObjectItemCaseSensitive(eff, "s2");
  if (!cJSON_IsNumber(k) || !s0 || !s1 || !s2 || !jint(jstr(eff, "i"), &ival))
    goto out;
  kind = (int64_t)k->valuedouble;
  if (kind < 0 || kind >= WFP_EFFECT_COUNT || (!cJSON_IsNull(s2) && !cJSON_IsString(s2)))
    goto out;
  rc = wfp_invocation_new(m, e, input, strlen(input), &inv);
  if (rc)
    goto out;
  rc = WFP_ECORRUPT;
  if (!wfp__base64_decode(state, strlen(state), &inv->state)) {
    if (inv->state.oom)
      rc = WFP_ENOMEM;
    why = "state is not base64";
    goto out;
  }
  inv->effect = (uint32_t)kind;
  set_bytes(&inv->s0, s0, strlen(s0));
  set_bytes(&inv->s1, s1, strlen(s1));
  inv->has_s2 = cJSON_IsString(s2);
  set_bytes(&inv->s2, inv->has_s2 ? s2->valuestring : "", inv->has_s2 ? strlen(s2->valuestring) : 0);
  inv->ival = ival;
  inv->steps = (uint64_t)nsteps;
  inv->fuel_used = (uint64_t)fuel;
  inv->fuel_max = (uint64_t)fuel_max;
  inv->fuel_slice = (uint64_t)fuel_slice;
  inv->pending = true;
  wfp__env_clear(e);
  const cJSON *it;
  cJSON_ArrayForEach(it, ctx) {
    int64_t v;
    const cJSON *key = cJSON_GetArrayItem(it, 0), *val = cJSON_GetArrayItem(it, 1);
    if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 2 || !cJSON_IsString(key) ||
        !cJSON_IsString(val) || !jint(val->valuestring, &v))
      goto out;
    if (wfp_env_ctx_set(e, key->valuestring, v)) {
      rc = WFP_ENOMEM;
      goto out;
    }
  }
  cJSON_ArrayForEach(it, msgs) {
    const cJSON *t = cJSON_GetArrayItem(it, 0), *p = cJSON_GetArrayItem(it, 1);
    if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 2 || !cJSON_IsString(t) ||
        !cJSON_IsString(p))
      goto out;
    if (wfp__env_msg_add(e, t->valuestring, strlen(t->valuestring), p->valuestring,
                         strlen(p->valuestring))) {
      rc = WFP_ENOMEM;
      goto out;
    }
  }
  cJSON_ArrayForEach(it, insts) {
    int64_t h;
    const char *res = jstr(it, "resource");
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(it, "props");
    if (!jint(jstr(it, "handle"), &h) || h < 1 || !res || !cJSON_IsArray(props) ||
        wfp__env_instance(e, (uint64_t)h))
      goto out;
    inst_ent *in = wfp__env_instance_add(e, (uint64_t)h, res);
    if (!in) {
      rc = WFP_ENOMEM;
      goto out;
    }
    const cJSON *pr;
    cJSON_ArrayForEach(pr, props) {
      const cJSON *pn = cJSON_GetArrayItem(pr, 0), *pt = cJSON_GetArrayItem(pr, 1),
                  *pv = cJSON_GetArrayItem(pr, 2);
      char *c = NULL;
      if (!cJSON_IsArray(pr) || cJSON_GetArraySize(pr) != 3 || !cJSON_IsString(pn) ||
          !cJSON_IsNumber(pt) || pt->valuedouble < WFP_TY_I64 ||
          pt->valuedouble > WFP_TY_JSON || !cJSON_IsString(pv))
        goto out;
      int t = wfp__json_of_type(pv->valuestring, strlen(pv->valuestring),
                                (uint8_t)pt->valuedouble, &c);
      if (t) {
        if (t == WFP_ENOMEM)
          rc = t;
        goto out;
      }
      int r = wfp__env_prop_add(in, pn->valuestring, (uint8_t)pt->valuedouble, c);
      free(c);
      if (r) {
        rc = r;
        goto out;
      }
    }
  }
  if (inv->state.oom || inv->s0.oom || inv->s1.oom || inv->s2.oom) {
    rc = WFP_ENOMEM;
    goto out;
  }
  /* the database file the invocation ran on, unless the host chose one */
  const cJSON *dbp = cJSON_GetObjectItemCaseSensitive(j, "db");
  if (dbp && !cJSON_IsNull(dbp) && !cJSON_IsString(dbp))
    goto out;
  if (cJSON_IsString(dbp) && !e->db &&
      (rc = wfp_env_open_db(e, dbp->valuestring, err, errlen)) != 0)
    goto out_keep_err;
  rc = WFP_OK;
out:
  if (rc == WFP_ECORRUPT)
    corrupt(err, errlen, why);
out_keep_err:
  cJSON_Delete(j);
  if (rc) {
    wfp_invocation_free(inv);
    return rc;
  }
  *out = inv;
  return WFP_OK;
}
