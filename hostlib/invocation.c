/*
** invocation.c: the invocation object, one step of it, and its pending
** effect as a request. A step runs the compiled code inside the trap
** boundary, on an instance taken from the module's pool and given back,
** and copies what it returned out of the instance; a request's completion
** sets the value the next step resumes with. Running many of them, and the
** effects themselves: loop.c, effects.c; checkpoints: checkpoint.c. A step
** round trip makes no system call: buffers are reused.
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
  cJSON *j = NULL;
  if (len && wfp__cjson_parse(input, len, &j) == WFP_ENOMEM) {
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
  free(inv->kill_msg);
  wfp__inv_msgs_clear(inv);
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
void wfp__set_bytes(wfp__buf *b, const void *p, size_t n) {
  b->len = 0;
  b->oom = false;
  /* nothing into a buffer that has nothing: no allocation (a suspended
  ** invocation keeps only the operands its effect has) */
  if (!n && !b->data)
    return;
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

int wfp__end_trap(wfp_invocation *inv, const char *msg, size_t n) {
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

bool wfp__trace_step(wfp_invocation *inv) {
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

bool wfp__trace_performed(wfp_invocation *inv) {
  wfp__buf *b = &inv->line;
  b->len = 0;
  b->oom = false;
  wfp__buf_printf(b, "{\"step\":%llu,\"performed\":", (unsigned long long)inv->steps);
  effect_json(inv, b);
  wfp__buf_adds(b, ",\"resume\":");
  if (wfp__resume_text(inv))
    return false;
  if (inv->resume_some)
    wfp__buf_add(b, inv->resume.data, inv->resume.len);
  else
    wfp__buf_adds(b, "null");
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
  const uint8_t *st = (const uint8_t *)(inv->state.len ? inv->state.data : "");
  /* a resumed step of a program that reads its input only to start needs
  ** none: its arguments are in the state */
  uint32_t in_len = inv->state.len && !inv->m->input_on_resume ? 0 : (uint32_t)inv->input_len;
  if (inv->m->resume_step) {
    /* typed: an i64 crosses as 8 bytes, none as nothing */
    uint32_t kind = !inv->resume_some  ? WFP_RESUME_NONE
                    : inv->resume_typed ? WFP_RESUME_I64
                                        : WFP_RESUME_JSON;
    c->rc = inv->m->resume_step(c->inst, 0, inv->input, in_len, st,
                                (uint32_t)inv->state.len, kind, inv->resume_i64,
                                inv->resume.len ? inv->resume.data : "",
                                (uint32_t)inv->resume.len, &c->out);
  } else {
    /* a module without resume-step: the resume as text (wfp__step_run
    ** wrote it) */
    c->rc = d->run_step(c->inst, 0, inv->input, in_len, st,
                        (uint32_t)inv->state.len, inv->resume_some,
                        inv->resume.len ? inv->resume.data : "",
                        (uint32_t)inv->resume.len, &c->out);
  }
  if (c->rc != 0)
    return;
  c->used = d->fuel_used(c->inst);
  /* a trap of the guest after a grow the host could not make (its "out of
  ** memory") is the host's failure: the step did not happen */
  if (c->out.kind == WFP_STEP_TRAP && wfp__rt_memory_failed())
    c->took = WFP_ENOMEM;
  else
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
    return wfp__end_trap(inv, (const char *)o->text.ptr, o->text.len);
  default:
    wfp__set_bytes(&inv->state, o->state.ptr, o->state.len);
    inv->effect = o->effect;
    wfp__set_bytes(&inv->s0, o->s0.ptr, o->s0.len);
    /* s1 and s2 only where the effect has them */
    wfp__set_bytes(&inv->s1, o->s1.ptr, o->effect == WFP_EFFECT_MSG_SEND ||
                                           o->effect == WFP_EFFECT_SELF_SET ||
                                           o->effect == WFP_EFFECT_DB_QUERY
                                       ? o->s1.len
                                       : 0);
    wfp__set_bytes(&inv->s2, o->s2.ptr, o->has_s2 ? o->s2.len : 0);
    inv->has_s2 = o->has_s2 != 0;
    inv->ival = o->i;
    /* a sleep wakes at a time fixed now: a checkpoint or a restart keeps
    ** it, and the sleep resumes for the time left */
    inv->wake_at = 0;
    if (o->effect == WFP_EFFECT_SLEEP_MS)
      inv->wake_at = wfp__now_ms() + (o->i > 0 && o->i <= WFP_SLEEP_MAX_MS ? o->i : 0);
    if (inv->state.oom || inv->s0.oom || inv->s1.oom || inv->s2.oom)
      return WFP_ENOMEM;
    inv->pending = true;
    return WFP_PENDING;
  }
}

int64_t wfp__now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t wfp__step_budget(const wfp_invocation *inv) {
  const wfp_invocation *t = WFP__TOP(inv);
  uint64_t budget = t->fuel_slice ? t->fuel_slice : DEFAULT_FUEL_SLICE;
  if (t->fuel_max) {
    uint64_t spent = t->fuel_used + t->reserved;
    uint64_t left = spent < t->fuel_max ? t->fuel_max - spent : 0;
    if (left < budget)
      budget = left;
  }
  return budget;
}

const char *wfp__limit_reached(const wfp_invocation *inv, char *buf, size_t n) {
  const wfp_invocation *t = WFP__TOP(inv);
  if (t->max_steps && t->steps + t->row_steps >= t->max_steps)
    snprintf(buf, n, "step limit reached (%llu steps)", (unsigned long long)t->max_steps);
  else if (t->fuel_max && !t->reserved && t->fuel_used >= t->fuel_max)
    snprintf(buf, n, "fuel limit reached (%llu units)", (unsigned long long)t->fuel_max);
  else if (t->time_limit && t->started_at &&
           wfp__now_ms() - t->started_at >= (int64_t)t->time_limit)
    snprintf(buf, n, "time limit reached (%llu ms)", (unsigned long long)t->time_limit);
  else
    return NULL;
  return buf;
}

int wfp__step_run(wfp_invocation *inv, uint64_t budget, uint64_t cap) {
  const char *why = NULL;
  if (!inv->m->resume_step && wfp__resume_text(inv))
    return WFP_ENOMEM; /* no step */
  void *inst = inv->held;
  inv->held = NULL;
  if (!inst)
    inst = wfp__module_take(inv->m, cap, &why);
  inv->last_used = 0;
  if (!inst && !why)
    return WFP_ENOMEM; /* no instance for want of memory: no step */
  inv->steps++;
  if (!inst)
    return wfp__end_trap(inv, why, strlen(why));
  char msg[512];
  if (cap && inv->m->d->memory_bytes(inst) > cap) {
    /* even a new instance is larger than the limit */
    wfp__module_give(inv->m, inst);
    snprintf(msg, sizeof msg, "memory limit reached (%llu bytes)", (unsigned long long)cap);
    return wfp__end_trap(inv, msg, strlen(msg));
  }
  step_call c;
  c.inv = inv;
  c.inst = inst;
  c.rc = 0;
  c.took = WFP_EINTERNAL;
  c.budget = (int64_t)budget;
  c.used = 0;
  bool oom = false;
  wfp__rt_set_memory_cap(cap);
  int trap = wfp__rt_protect(do_step, &c, &oom);
  bool capped = wfp__rt_memory_capped();
  bool failed = wfp__rt_memory_failed();
  wfp__rt_set_memory_cap(0);
  int rc;
  if (trap && !capped && (oom || failed)) {
    /* the runtime could not allocate (host memory), or the guest trapped
    ** after a grow it could not make: the host's failure, and the step did
    ** not happen (its state is as it was) */
    wfp__module_drop(inv->m, inst);
    inv->steps--;
    rc = WFP_ENOMEM;
  } else if (trap) {
    /* a Wasm trap: the instance's own stack pointer is lost with it */
    const char *fatal = "";
    if (trap == WASM_RT_TRAP_UNREACHABLE)
      fatal = inv->m->d->fatal_message(inst);
    if (capped)
      snprintf(msg, sizeof msg, "memory limit reached (%llu bytes)", (unsigned long long)cap);
    else if (oom)
      snprintf(msg, sizeof msg, "out of memory");
    else if (fatal[0])
      snprintf(msg, sizeof msg, "%s", fatal);
    else
      snprintf(msg, sizeof msg, "%s", wasm_rt_strerror((wasm_rt_trap_t)trap));
    wfp__module_drop(inv->m, inst);
    rc = wfp__end_trap(inv, msg, strlen(msg));
  } else if (c.rc != 0) {
    wfp__module_drop(inv->m, inst);
    static const char bad[] = "internal error: the module returned a malformed step result";
    rc = wfp__end_trap(inv, bad, sizeof bad - 1);
  } else if (c.took == WFP_ENOMEM && failed) {
    wfp__module_give(inv->m, inst);
    inv->steps--;
    rc = WFP_ENOMEM;
  } else {
    inv->last_used = c.used > 0 ? c.used : 0;
    inv->fuel_used += (uint64_t)inv->last_used;
    if (inv->hold)
      inv->held = inst;
    else
      wfp__module_give(inv->m, inst);
    rc = c.took;
    /* the guest coped with a refused grow and went on; what it reports
    ** (a trap of its own) stays its word */
  }
  return rc;
}

int wfp_invocation_step(wfp_invocation *inv) {
  if (!inv || inv->status != WFP__RUNNING || inv->pending || inv->loop)
    return WFP_EINVAL;
  /* a spent fuel or time limit ends the invocation before another step;
  ** the step limit is wfp_invocation_run's */
  char msg[96];
  const char *lim = NULL;
  if (!inv->started_at)
    inv->started_at = wfp__now_ms();
  uint64_t budget = wfp__step_budget(inv);
  if (!budget) {
    snprintf(msg, sizeof msg, "fuel limit reached (%llu units)",
             (unsigned long long)inv->fuel_max);
    lim = msg;
  } else if (inv->time_limit &&
             wfp__now_ms() - inv->started_at >= (int64_t)inv->time_limit) {
    snprintf(msg, sizeof msg, "time limit reached (%llu ms)",
             (unsigned long long)inv->time_limit);
    lim = msg;
  }
  if (lim)
    return wfp__end_trap(inv, lim, strlen(lim));
  int rc = wfp__step_run(inv, budget, inv->mem_max);
  /* the step happened; that its trace line is missing is said */
  if (inv->trace && rc >= 0 && !wfp__trace_step(inv))
    rc = WFP_ENOMEM;
  return rc;
}

/* ---- resume values ---- */

void wfp__resume_none(wfp_invocation *inv) {
  inv->resume_some = false;
  inv->resume_typed = false;
  inv->resume.len = 0;
}

void wfp__resume_i64(wfp_invocation *inv, int64_t v) {
  inv->resume_some = true;
  inv->resume_typed = true;
  inv->resume_text = false;
  inv->resume_i64 = v;
  inv->resume.len = 0;
}

int wfp__resume_text(wfp_invocation *inv) {
  if (!inv->resume_typed || inv->resume_text)
    return WFP_OK;
  inv->resume.len = 0;
  inv->resume.oom = false;
  if (inv->resume.cap < 32 && !wfp__buf_reserve(&inv->resume, 32))
    return WFP_ENOMEM;
  char *r = inv->resume.data;
  memcpy(r, "{\"i64\":", 7);
  size_t n = 7 + wfp__fmt_i64(r + 7, inv->resume_i64);
  r[n++] = '}';
  r[n] = 0;
  inv->resume.len = n;
  inv->resume_text = true;
  return WFP_OK;
}

/* The effect failed: the guest turns {"error": ...} into a trap. */
void wfp__resume_error(wfp_invocation *inv, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  inv->resume_typed = false;
  inv->resume.len = 0;
  inv->resume.oom = false;
  wfp__buf_adds(&inv->resume, "{\"error\":");
  wfp__buf_add_jstr(&inv->resume, msg, strlen(msg));
  wfp__buf_addc(&inv->resume, '}');
  inv->resume_some = true;
}

int wfp__resume_json(wfp_invocation *inv, const char *json, size_t n) {
  inv->resume_typed = false;
  wfp__set_bytes(&inv->resume, json, n);
  inv->resume_some = true;
  return inv->resume.oom ? WFP_ENOMEM : WFP_OK;
}

/* ---- messages ---- */

int wfp__inv_msg_add(wfp_invocation *inv, const char *topic, size_t tn, const char *payload,
                     size_t pn) {
  if (inv->nmsgs == inv->msgs_cap) {
    size_t cap = inv->msgs_cap ? inv->msgs_cap * 2 : 4;
    msg_ent *nm = realloc(inv->msgs, cap * sizeof *nm);
    if (!nm)
      return WFP_ENOMEM;
    inv->msgs = nm;
    inv->msgs_cap = cap;
  }
  char *t = dupn(topic, tn), *p = dupn(payload, pn);
  if (!t || !p) {
    free(t);
    free(p);
    return WFP_ENOMEM;
  }
  inv->msgs[inv->nmsgs].topic = t;
  inv->msgs[inv->nmsgs].payload = p;
  inv->nmsgs++;
  return WFP_OK;
}

void wfp__inv_msgs_clear(wfp_invocation *inv) {
  for (size_t i = 0; i < inv->nmsgs; i++) {
    free(inv->msgs[i].topic);
    free(inv->msgs[i].payload);
  }
  free(inv->msgs);
  inv->msgs = NULL;
  inv->nmsgs = inv->msgs_cap = 0;
}

size_t wfp_invocation_message_count(const wfp_invocation *inv) { return inv ? inv->nmsgs : 0; }
const char *wfp_invocation_message_topic(const wfp_invocation *inv, size_t i) {
  return inv && i < inv->nmsgs ? inv->msgs[i].topic : NULL;
}
const char *wfp_invocation_message_payload(const wfp_invocation *inv, size_t i) {
  return inv && i < inv->nmsgs ? inv->msgs[i].payload : NULL;
}

/* ---- limits ---- */

int wfp_invocation_set_max_steps(wfp_invocation *inv, uint64_t max_steps) {
  if (!inv)
    return WFP_EINVAL;
  inv->max_steps = max_steps;
  return WFP_OK;
}

uint64_t wfp_invocation_max_steps(const wfp_invocation *inv) {
  return inv ? inv->max_steps : 0;
}

int wfp_invocation_set_time_limit(wfp_invocation *inv, uint64_t ms) {
  if (!inv || ms > (uint64_t)INT64_MAX / 2)
    return WFP_EINVAL;
  inv->time_limit = ms;
  return WFP_OK;
}

uint64_t wfp_invocation_time_limit(const wfp_invocation *inv) {
  return inv ? inv->time_limit : 0;
}

int wfp_invocation_set_memory_limit(wfp_invocation *inv, uint64_t bytes) {
  if (!inv)
    return WFP_EINVAL;
  inv->mem_max = bytes;
  return WFP_OK;
}

uint64_t wfp_invocation_memory_limit(const wfp_invocation *inv) {
  return inv ? inv->mem_max : 0;
}

/* ---- running without a loop of one's own: a private loop ---- */

typedef struct private_run {
  int status;
  bool ended;
} private_run;

static void private_done(wfp_invocation *inv, int status, void *data) {
  (void)inv;
  private_run *r = data;
  r->status = status;
  r->ended = true;
}

/* Runs inv on the calling thread, without a loop, as long as each of its
** effects finishes at once (what a loop with one worker would do, the
** same way: limits before a step, the trace, the default sink): its end
** status, or WFP_PENDING when an effect needs a loop (a sleep, a query). */
static int run_here_steps(wfp_invocation *inv) {
  char msg[96];
  if (!inv->started_at)
    inv->started_at = wfp__now_ms();
  for (;;) {
    if (inv->status != WFP__RUNNING)
      return inv->status;
    if (inv->pending) {
      int rc = wfp__perform_now(inv);
      if (rc <= 0)
        return rc < 0 ? rc : WFP_PENDING;
      inv->pending = false;
      if (inv->trace && !wfp__trace_performed(inv))
        return WFP_ENOMEM;
    }
    const char *lim = wfp__limit_reached(inv, msg, sizeof msg);
    if (lim)
      return wfp__end_trap(inv, lim, strlen(lim));
    int rc = wfp__step_run(inv, wfp__step_budget(inv), inv->mem_max);
    if (rc < 0)
      return rc;
    if (inv->trace && !wfp__trace_step(inv))
      return WFP_ENOMEM;
  }
}

/* The steps and effects that need no loop, one instance held across them. */
static int run_here(wfp_invocation *inv) {
  inv->hold = true;
  int rc = run_here_steps(inv);
  inv->hold = false;
  wfp__module_give(inv->m, inv->held);
  inv->held = NULL;
  return rc;
}

/* Runs inv in a loop of its own on the calling thread: to its end, or
** (perform_only) until its pending effect completed. */
static int run_private(wfp_invocation *inv, bool perform_only) {
  if (!perform_only) {
    int rc = run_here(inv);
    if (rc != WFP_PENDING)
      return rc;
  }
  wfp_loop_opts o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.workers = 1;
  wfp_loop *l = NULL;
  int rc = wfp_loop_new(&o, inv->e, &l);
  if (rc)
    return rc;
  private_run r = {0, false};
  inv->perform_only = perform_only;
  rc = wfp_loop_start(l, inv, private_done, &r);
  if (!rc)
    wfp_loop_run(l, WFP_RUN_DEFAULT);
  wfp_loop_free(l);
  inv->perform_only = false;
  if (rc)
    return rc;
  return r.ended ? r.status : WFP_EINTERNAL;
}

int wfp_invocation_perform(wfp_invocation *inv) {
  if (!inv || !inv->pending || inv->loop || inv->status != WFP__RUNNING)
    return WFP_EINVAL;
  /* most effects finish at once: no loop, no system call */
  int rc = wfp__perform_now(inv);
  if (rc < 0)
    return rc;
  if (rc) {
    inv->pending = false;
    /* the effect was performed; that its trace line is missing is said */
    if (inv->trace && !wfp__trace_performed(inv))
      return WFP_ENOMEM;
    return WFP_OK;
  }
  rc = run_private(inv, true);
  return rc < 0 ? rc : WFP_OK;
}

int wfp_invocation_run(wfp_invocation *inv, uint64_t max_steps) {
  if (!inv || inv->loop)
    return WFP_EINVAL;
  /* 0 keeps the invocation's own limit: a restored one keeps its
  ** checkpoint's, so a runaway stopped and resumed still ends */
  if (max_steps)
    inv->max_steps = max_steps;
  if (inv->status != WFP__RUNNING)
    return inv->status;
  return run_private(inv, false);
}

/* ---- the request ---- */

int wfp_effect_kind(const wfp_effect_req *req) {
  return req && req->inv ? (int)req->inv->effect : -1;
}

const char *wfp_effect_key(const wfp_effect_req *req, size_t *len) {
  const wfp_invocation *inv = req ? req->inv : NULL;
  if (len)
    *len = inv ? inv->s0.len : 0;
  return inv && inv->s0.len ? inv->s0.data : "";
}

const char *wfp_effect_json(const wfp_effect_req *req, size_t *len) {
  const wfp_invocation *inv = req ? req->inv : NULL;
  if (len)
    *len = inv ? inv->s1.len : 0;
  return inv && inv->s1.len ? inv->s1.data : "";
}

const char *wfp_effect_each(const wfp_effect_req *req, size_t *len) {
  const wfp_invocation *inv = req ? req->inv : NULL;
  if (len)
    *len = inv && inv->has_s2 ? inv->s2.len : 0;
  return inv && inv->has_s2 ? (inv->s2.len ? inv->s2.data : "") : NULL;
}

int64_t wfp_effect_i64(const wfp_effect_req *req) {
  return req && req->inv ? req->inv->ival : 0;
}

int64_t wfp_effect_wake_at(const wfp_effect_req *req) {
  return req && req->inv && req->inv->effect == WFP_EFFECT_SLEEP_MS ? req->inv->wake_at : 0;
}

wfp_invocation *wfp_effect_invocation(const wfp_effect_req *req) {
  return req ? req->inv : NULL;
}

wfp_loop *wfp_effect_loop(const wfp_effect_req *req) { return req ? req->loop : NULL; }

/* A request that may be completed now: WFP_OK, or why not (a cancelled
** one is given back to the loop here). */
static int completable(wfp_effect_req *req) {
  if (!req || req->state != WFP__REQ_WAITING)
    return WFP_EINVAL;
  if (!req->inv) {
    wfp__req_release(req->loop, req);
    return WFP_ECANCELED;
  }
  return WFP_OK;
}

int wfp__req_complete(wfp_effect_req *req) {
  wfp_invocation *inv = req->inv;
  req->state = WFP__REQ_DONE;
  wfp__loop_effect_done(req->loop, inv);
  return WFP_OK;
}

int wfp_effect_complete(wfp_effect_req *req, const char *resume_json, size_t len) {
  int rc = completable(req);
  if (rc)
    return rc;
  wfp_invocation *inv = req->inv;
  if (!resume_json) {
    wfp__resume_none(inv);
    return wfp__req_complete(req);
  }
  if (wfp__json_check(resume_json, len, WFP_JSON_MAX_DEPTH, NULL, NULL) != WFP_OK)
    return WFP_EINVAL;
  if (wfp__resume_json(inv, resume_json, len))
    return WFP_ENOMEM;
  return wfp__req_complete(req);
}

int wfp_effect_complete_i64(wfp_effect_req *req, int64_t v) {
  int rc = completable(req);
  if (rc)
    return rc;
  if (req->inv->effect == WFP_EFFECT_CTX_GET_I64) {
    /* typed: what the guest reads as {"i64": v}, without the text */
    wfp__resume_i64(req->inv, v);
    return wfp__req_complete(req);
  }
  char t[40];
  memcpy(t, "{\"i64\":", 7);
  size_t n = 7 + wfp__fmt_i64(t + 7, v);
  t[n++] = '}';
  if (wfp__resume_json(req->inv, t, n))
    return WFP_ENOMEM;
  return wfp__req_complete(req);
}

int wfp_effect_fail(wfp_effect_req *req, const char *msg) {
  int rc = completable(req);
  if (rc)
    return rc;
  wfp__resume_error(req->inv, "%s", msg ? msg : "the effect failed");
  if (req->inv->resume.oom)
    return WFP_ENOMEM;
  return wfp__req_complete(req);
}

int wfp_effect_builtin(wfp_effect_req *req) {
  if (!req || req->state != WFP__REQ_WAITING || !req->inv)
    return WFP_EINVAL;
  return wfp__builtin(req->loop, req);
}

void *wfp_invocation_data(const wfp_invocation *inv) { return inv ? inv->data : NULL; }
wfp_invocation *wfp_invocation_parent(const wfp_invocation *inv) {
  return inv ? inv->parent : NULL;
}
size_t wfp_invocation_row(const wfp_invocation *inv) { return inv ? inv->row : 0; }
