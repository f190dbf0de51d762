/*
** fuzz_state.c: a compiled module's run-step on arbitrary state and resume
** bytes (CONTRACT section 3: truncated, tampered or foreign state gives a
** trap, never a crash). The module is built from state.program.json by
** wfp-aot at build time and loaded with the host library's loader; each
** step runs inside the host's trap boundary, on an instance of the
** module's pool, as hostlib/invocation.c runs it.
**
** Input: byte 0 flags, bytes 1-2 the state's length (little-endian, cut
** to what follows), the state, then the resume value (the rest).
**   flags bit 0     a resume value is given (has_resume)
**   flags bits 1-3  which input selects the function (inputs[] below)
**   flags bit 4     a fuel budget of 2 units, else 1,000 (loops and calls
**                   yield; a forged loop counter must not make a step of
**                   the host's default million units, which a loop that
**                   grows a string turns into minutes)
**   flags bit 5     re-sign: recompute the state's checksum first, so that
**                   the mutated frames, not the checksum, are what is read
**   flags bits 6-7  further steps (0-3): each resumes the state the last
**                   pending step wrote, with the same resume value; the
**                   module must accept a state it wrote, whatever the resume
** An input of odd length runs its steps through resume-step, the resume
** typed (none without a resume value; an i64 when the value is exactly 8
** bytes, read little-endian; JSON text otherwise), an even one through
** run-step, the resume as text.
** A step that ends must end well: an output that is JSON, a trap with a
** message, never a failed internal check of the guest ("a wfp bug").
*/
#include <string.h>

#include <cjson/cJSON.h>

#include "wfp/wasm-rt.h"

#include "fuzz.h"
#include "host_int.h"
#include "wfp/host.h"

static wfp_module *mod;

/* The functions of state.program.json, one input each. */
static const char *const inputs[8] = {
    "{}",
    "{\"fn\":\"nest\"}",
    "{\"fn\":\"rec\",\"args\":{\"d\":3}}",
    "{\"fn\":\"bump\",\"self\":1}",
    "{\"fn\":\"query\"}",
    "{\"fn\":\"spin\"}",
    "{\"fn\":\"greet\",\"args\":{\"who\":\"w\",\"opts\":{\"x\":[1]}}}",
    "{\"fn\":\"rec\",\"args\":[2]}",
};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  const char *path = getenv("WFP_FUZZ_MODULE");
  if (!path || !*path)
    path = WFP_FUZZ_MODULE;
  wfp_host_diag hd;
  int rc = wfp_module_load(path, &mod, &hd);
  if (rc) {
    fprintf(stderr, "fuzz_state: %s: %s\n", path, hd.d.msg);
    exit(1);
  }
  return 0;
}

typedef struct step {
  void *inst;
  const char *input;
  const uint8_t *state;
  uint32_t state_len;
  int has_resume;
  const char *resume;
  uint32_t resume_len;
  int64_t budget;
  int typed; /* through resume_step */
  int own;   /* the state is one the module wrote itself */
  int rc;
  wfp_abi_step out;
  /* what the step returned, copied out of the instance */
  char *text;
  uint8_t *next;
  uint32_t next_len;
} step;

static void *dup(const void *p, size_t n) {
  char *q = malloc(n + 1);
  if (q) {
    if (n)
      memcpy(q, p, n);
    q[n] = 0;
  }
  return q;
}

static void do_step(void *arg) {
  step *s = arg;
  const wfp_module_desc *d = wfp_module_descriptor_of(mod);
  d->set_fuel(s->inst, s->budget);
  if (s->typed) {
    uint32_t kind = !s->has_resume         ? WFP_RESUME_NONE
                    : s->resume_len == 8u ? WFP_RESUME_I64
                                          : WFP_RESUME_JSON;
    int64_t v = 0;
    if (kind == WFP_RESUME_I64)
      memcpy(&v, s->resume, 8);
    s->rc = d->resume_step(s->inst, 0, s->input, (uint32_t)strlen(s->input), s->state,
                           s->state_len, kind, v, s->resume, s->resume_len, &s->out);
  } else {
    s->rc = d->run_step(s->inst, 0, s->input, (uint32_t)strlen(s->input), s->state,
                        s->state_len, s->has_resume, s->resume, s->resume_len, &s->out);
  }
  if (s->rc != 0)
    return;
  if (s->out.kind == WFP_STEP_PENDING) {
    s->next = dup(s->out.state.ptr, s->out.state.len);
    s->next_len = s->out.state.len;
  } else {
    s->text = dup(s->out.text.ptr, s->out.text.len);
  }
  d->post_return(s->inst);
}

/* Runs one step; returns the state a pending step wrote (malloc) or NULL. */
static uint8_t *run(step *s) {
  const wfp_module_desc *d = wfp_module_descriptor_of(mod);
  const char *why = NULL;
  s->inst = wfp__module_take(mod, 0, &why);
  if (!s->inst)
    return NULL;
  bool oom = false;
  int trap = wfp__rt_protect(do_step, s, &oom);
  if (trap) {
    const char *fatal = trap == WASM_RT_TRAP_UNREACHABLE ? d->fatal_message(s->inst) : "";
    FUZZ_CHECK(!strstr(fatal, "wfp bug"), "an internal check of the guest failed: %s",
               fatal);
    wfp__module_drop(mod, s->inst);
    free(s->text);
    free(s->next);
    return NULL;
  }
  FUZZ_CHECK(s->rc == 0, "the module returned a malformed step result");
  wfp__module_give(mod, s->inst);
  uint8_t *next = NULL;
  switch (s->out.kind) {
  case WFP_STEP_DONE: {
    cJSON *j = cJSON_ParseWithLength(s->text, s->out.text.len);
    FUZZ_CHECK(j, "the output is not JSON: %s", s->text);
    cJSON_Delete(j);
    break;
  }
  case WFP_STEP_TRAP:
    FUZZ_CHECK(s->out.text.len > 0, "a trap without a message");
    FUZZ_CHECK(!strstr(s->text, "wfp bug"), "an internal check of the guest failed: %s",
               s->text);
    /* the module reads back every state it writes, whatever the resume */
    FUZZ_CHECK(!s->own || strncmp(s->text, "invalid state", 13) != 0,
               "the module refused a state it wrote: %s", s->text);
    break;
  default:
    FUZZ_CHECK(s->out.effect < WFP_EFFECT_COUNT, "effect %u", s->out.effect);
    FUZZ_CHECK(s->next_len >= 32, "pending with %u state bytes", s->next_len);
    next = s->next;
    break;
  }
  free(s->text);
  return next;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3)
    return -1;
  unsigned flags = data[0];
  size_t slen = (size_t)data[1] | (size_t)data[2] << 8;
  if (slen > size - 3)
    slen = size - 3;
  uint8_t *state = dup(data + 3, slen);
  if (!state)
    return 0;
  if (flags & 0x20 && slen >= 32)
    fuzz_state_resign(state, (uint32_t)slen);
  char *resume = dup(data + 3 + slen, size - 3 - slen);
  if (!resume) {
    free(state);
    return 0;
  }
  step s;
  memset(&s, 0, sizeof s);
  s.input = inputs[(flags >> 1) & 7];
  s.state = state;
  s.state_len = (uint32_t)slen;
  s.has_resume = flags & 1;
  s.resume = resume;
  s.resume_len = (uint32_t)(size - 3 - slen);
  s.budget = flags & 0x10 ? 2 : 1000;
  s.typed = (size & 1) && WFP_DESC_HAS(wfp_module_descriptor_of(mod), resume_step);
  uint8_t *next = run(&s);
  for (unsigned k = 0; next && k < flags >> 6; k++) {
    free(state);
    state = next;
    memset(&s.out, 0, sizeof s.out);
    s.text = NULL;
    s.state = state;
    s.state_len = s.next_len;
    s.next = NULL;
    s.own = 1;
    next = run(&s);
  }
  free(next);
  free(state);
  free(resume);
  return 0;
}
