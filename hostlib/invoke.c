/*
** invoke.c: invocations: the stepper loop of the WIT interface. A step runs
** the compiled code inside the trap boundary, copies what it returned out
** of the instance, and leaves a pending effect for perform(), which acts on
** the environment and prepares the resume value (checkpoints of a pending
** invocation: checkpoint.c). A step round trip makes no system call:
** buffers are reused.
*/
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "wfp/wasm-rt.h"

#include "host_int.h"

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
  cJSON *j = len ? cJSON_ParseWithLength(input, len) : NULL;
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
  inv->status = WFP__RUNNING;
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

void wfp_invocation_fuel_limits(const wfp_invocation *inv, uint64_t *max_total,
                                uint64_t *per_step) {
  if (max_total)
    *max_total = inv ? inv->fuel_max : 0;
  if (per_step)
    *per_step = inv ? inv->fuel_slice : 0;
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
  effect_json(inv, &inv->line);
  return inv->line.oom ? NULL : inv->line.data;
}

static void trace_step(wfp_invocation *inv) {
  wfp__buf *b = &inv->line;
  b->len = 0;
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
  if (!b->oom)
    inv->trace(inv->trace_ud, b->data);
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
  if (!inv || inv->status != WFP__RUNNING || inv->pending)
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
  const char *why = NULL;
  void *inst = wfp__module_take(inv->m, &why);
  inv->steps++;
  if (!inst)
    return end_trap(inv, why, strlen(why));
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
    wfp__module_drop(inv->m, inst);
    rc = end_trap(inv, msg, strlen(msg));
  } else if (c.rc != 0) {
    wfp__module_drop(inv->m, inst);
    static const char bad[] = "internal error: the module returned a malformed step result";
    rc = end_trap(inv, bad, sizeof bad - 1);
  } else {
    inv->fuel_used += c.used > 0 ? (uint64_t)c.used : 0;
    wfp__module_give(inv->m, inst);
    rc = c.took;
  }
  if (inv->trace && rc >= 0)
    trace_step(inv);
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
  if (!rc && !failed && out.len > WFP_DB_RESULT_MAX) {
    resume_error(inv, "db_query each: the results are larger than %d bytes, the most "
                 "one query may return", WFP_DB_RESULT_MAX);
    failed = true;
  }
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
  /* SQL work is fuel: a query may use its budget, or what the invocation's
  ** limit leaves (then the next step traps on that limit) */
  uint64_t fuel = WFP_DB_QUERY_FUEL_MAX, used = 0;
  if (inv->fuel_max) {
    uint64_t left = inv->fuel_used < inv->fuel_max ? inv->fuel_max - inv->fuel_used : 0;
    if (left < fuel)
      fuel = left;
  }
  int rc = wfp__db_query(inv->e, inv->s0.data ? inv->s0.data : "", inv->s0.len,
                         inv->s1.data, inv->s1.len, fuel, &used, &rows,
                         inv->has_s2 ? &offs : NULL, &nrows, err, sizeof err);
  inv->fuel_used += used < fuel ? used : fuel;
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
    /* a sleep longer than a day is a fault, not a wait (a checkpoint may
    ** name any duration) */
    if (inv->ival > WFP_SLEEP_MAX_MS) {
      resume_error(inv, "sleep_ms: %lld ms is longer than the longest sleep, %d ms "
                   "(a day)", (long long)inv->ival, WFP_SLEEP_MAX_MS);
      break;
    }
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
  if (inv->trace) {
    wfp__buf *b = &inv->line;
    b->len = 0;
    wfp__buf_printf(b, "{\"step\":%llu,\"performed\":", (unsigned long long)inv->steps);
    effect_json(inv, b);
    wfp__buf_adds(b, ",\"resume\":");
    if (inv->resume_some)
      wfp__buf_add(b, inv->resume.data, inv->resume.len);
    else
      wfp__buf_adds(b, "null");
    wfp__buf_addc(b, '}');
    if (!b->oom)
      inv->trace(inv->trace_ud, b->data);
  }
  inv->pending = false;
  return WFP_OK;
}

int wfp_invocation_set_max_steps(wfp_invocation *inv, uint64_t max_steps) {
  if (!inv)
    return WFP_EINVAL;
  inv->max_steps = max_steps;
  return WFP_OK;
}

uint64_t wfp_invocation_max_steps(const wfp_invocation *inv) {
  return inv ? inv->max_steps : 0;
}

int wfp_invocation_run(wfp_invocation *inv, uint64_t max_steps) {
  if (!inv)
    return WFP_EINVAL;
  /* 0 keeps the invocation's own limit: a restored one keeps its
  ** checkpoint's, so a runaway stopped and resumed still ends */
  if (max_steps)
    inv->max_steps = max_steps;
  max_steps = inv->max_steps;
  for (;;) {
    if (inv->status != WFP__RUNNING)
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
