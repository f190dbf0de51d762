/*
** guest_json.c: the JSON depth rule (WFP_JSON_MAX_DEPTH) in every guest
** path that reads JSON, driven through a real .so's descriptor with bytes
** a host would refuse to send: over-deep inputs and resume values, and
** state whose json value was made over-deep (re-checksummed, as a forger
** could: the state check refuses it before len or get_* could read it).
** Each must end in a trap naming the limit, never an answer. And state the
** instance wrote, changed or forged, is refused by that very instance (it
** validates only what it did not write itself).
** Usage: guest_json json_depth.so
*/
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wasm-rt.h>

#include "wfp/abi.h"

static int failures;
static const wfp_module_desc *D;
static void *I;

#define CHECK(c, ...)                                                          \
  do {                                                                         \
    if (!(c)) {                                                                \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                     \
      fprintf(stderr, __VA_ARGS__);                                            \
      fprintf(stderr, "\n");                                                   \
      failures++;                                                              \
    }                                                                          \
  } while (0)

/* One step's result, copied out of the instance. */
typedef struct res {
  unsigned kind, effect;
  char text[512];
  uint8_t *state;
  uint32_t slen;
} res;

static res step(const char *input, const uint8_t *state, uint32_t slen, const char *resume) {
  res r;
  memset(&r, 0, sizeof r);
  wfp_abi_step out;
  if (D->run_step(I, 0, input, (uint32_t)strlen(input), state, slen, resume != NULL,
                  resume ? resume : "", resume ? (uint32_t)strlen(resume) : 0, &out)) {
    fprintf(stderr, "run_step failed\n");
    exit(2);
  }
  r.kind = out.kind;
  r.effect = out.effect;
  if (out.kind != WFP_STEP_PENDING)
    snprintf(r.text, sizeof r.text, "%.*s", (int)out.text.len, (const char *)out.text.ptr);
  else {
    r.slen = out.state.len;
    r.state = malloc(r.slen);
    memcpy(r.state, out.state.ptr, r.slen);
  }
  D->post_return(I);
  return r;
}

/* "[[...[1]...]]": depth levels of arrays (text is static, reused) */
static const char *nested(int depth) {
  static char buf[8][2048];
  static int k;
  char *b = buf[k++ % 8], *p = b;
  for (int i = 0; i < depth; i++)
    *p++ = '[';
  *p++ = '1';
  for (int i = 0; i < depth; i++)
    *p++ = ']';
  *p = 0;
  return b;
}

/* The state checksum (wfp_state_sum of wfp/abi.h): not a MAC. */
#define state_sum wfp_state_sum

/* Runs fn on ["xx...x", 7, 8] to its sleep, replaces the string in the
** state by arrays nested depth deep (the same length), re-checksums it
** and resumes. */
static res tampered(const char *fn, int depth) {
  char input[1024], x[604];
  memset(x, 'x', 600);
  x[600] = 0;
  snprintf(input, sizeof input, "{\"fn\":\"%s\",\"args\":{\"j\":[\"%s\",7,8]}}", fn, x);
  res r = step(input, NULL, 0, NULL);
  if (r.kind != WFP_STEP_PENDING) {
    fprintf(stderr, "%s: expected a pending step, got %u %s\n", fn, r.kind, r.text);
    exit(2);
  }
  if (depth) {
    uint8_t *at = NULL;
    for (uint32_t i = 0; i + 602 <= r.slen && !at; i++)
      if (r.state[i] == '"' && memcmp(r.state + i + 1, x, 600) == 0)
        at = r.state + i;
    if (!at) {
      fprintf(stderr, "%s: the value is not in the state\n", fn);
      exit(2);
    }
    memset(at, '[', 301);
    memset(at + 301, ']', 301);
    uint64_t sum = state_sum(r.state, r.slen);
    memcpy(r.state + 16, &sum, 8);
  }
  res f = step(input, r.state, r.slen, NULL);
  free(r.state);
  return f;
}

static int has(const res *r, unsigned kind, const char *text) {
  return r->kind == kind && strstr(r->text, text) != NULL;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: guest_json json_depth.so\n");
    return 2;
  }
  wasm_rt_init(); /* links the host's runtime in, for the module */
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  wfp_module_desc_fn get = h ? (wfp_module_desc_fn)dlsym(h, WFP_MODULE_SYMBOL) : NULL;
  if (!get) {
    fprintf(stderr, "cannot load %s: %s\n", argv[1], dlerror());
    return 2;
  }
  D = get();
  I = D->instantiate();
  if (!I)
    return 2;
  static const char deep[] = ": JSON nested deeper than the limit of 256 levels";
  char in[4096];
  res r;

  /* inputs: the whole input counts ({"fn", "args": {"j": ...}} is two) */
  snprintf(in, sizeof in, "{\"fn\":\"lenOf\",\"args\":{\"j\":%s}}", nested(255));
  r = step(in, NULL, 0, NULL);
  CHECK(has(&r, WFP_STEP_TRAP, "the invocation's input: JSON nested deeper than the limit of 256 levels"),
        "input 257 deep: %u %s", r.kind, r.text);
  snprintf(in, sizeof in, "{\"fn\":\"lenOf\",\"args\":{\"j\":%s}}", nested(254));
  r = step(in, NULL, 0, NULL);
  CHECK(r.kind == WFP_STEP_PENDING, "input 256 deep: %u %s", r.kind, r.text);
  if (r.kind == WFP_STEP_PENDING) {
    res d = step(in, r.state, r.slen, NULL);
    CHECK(has(&d, WFP_STEP_DONE, "{\"result\":1}"), "input 256 deep: %s", d.text);
    free(r.state);
  }

  /* len, get_i64, get_json on a value made too deep in the state: the
  ** state is refused before the step (every json value of a state is
  ** checked), naming the limit */
  r = tampered("lenOf", 0);
  CHECK(has(&r, WFP_STEP_DONE, "{\"result\":3}"), "lenOf untouched: %s", r.text);
  r = tampered("lenOf", 301);
  CHECK(has(&r, WFP_STEP_TRAP, "invalid state: JSON nested deeper than the limit of 256 levels"),
        "len of [<301 deep>, 7, 8]: %u %s", r.kind, r.text);
  r = tampered("getAt", 0);
  CHECK(has(&r, WFP_STEP_DONE, "{\"result\":7}"), "getAt untouched: %s", r.text);
  r = tampered("getAt", 301);
  CHECK(has(&r, WFP_STEP_TRAP, "invalid state: JSON nested deeper than the limit of 256 levels"),
        "get_i64 [1] after a 301 deep element: %u %s", r.kind, r.text);
  r = tampered("getFirst", 301);
  CHECK(has(&r, WFP_STEP_TRAP, "invalid state: JSON nested deeper than the limit of 256 levels"),
        "get_json [0] of a 301 deep element: %u %s", r.kind, r.text);

  /* resume values: the envelope ({"rows": V}) does not count, V does */
  r = step("{\"fn\":\"rows\"}", NULL, 0, NULL);
  CHECK(r.kind == WFP_STEP_PENDING && r.effect == WFP_EFFECT_DB_QUERY, "rows: %u", r.kind);
  if (r.kind == WFP_STEP_PENDING) {
    snprintf(in, sizeof in, "{\"rows\":[%s]}", nested(256));
    res d = step("{\"fn\":\"rows\"}", r.state, r.slen, in);
    CHECK(has(&d, WFP_STEP_TRAP, "invalid resume value for db_query"), "rows 257 deep: %s", d.text);
    CHECK(strstr(d.text, deep) != NULL, "rows 257 deep: %s", d.text);
    snprintf(in, sizeof in, "{\"rows\":[%s]}", nested(255));
    d = step("{\"fn\":\"rows\"}", r.state, r.slen, in);
    CHECK(d.kind == WFP_STEP_DONE && strncmp(d.text, "[[[[", 4) == 0, "rows 256 deep: %s", d.text);
    free(r.state);
  }
  r = step("{\"fn\":\"ctx\"}", NULL, 0, NULL);
  CHECK(r.kind == WFP_STEP_PENDING && r.effect == WFP_EFFECT_CTX_GET_I64, "ctx: %u", r.kind);
  if (r.kind == WFP_STEP_PENDING) {
    snprintf(in, sizeof in, "{\"i64\":5,\"x\":%s}", nested(257));
    res d = step("{\"fn\":\"ctx\"}", r.state, r.slen, in);
    CHECK(has(&d, WFP_STEP_TRAP, "invalid resume value for ctx_get_i64"), "ctx 257 deep: %s", d.text);
    CHECK(strstr(d.text, deep) != NULL, "ctx 257 deep: %s", d.text);
    snprintf(in, sizeof in, "{\"i64\":5,\"x\":%s}", nested(256));
    d = step("{\"fn\":\"ctx\"}", r.state, r.slen, in);
    CHECK(has(&d, WFP_STEP_DONE, "{\"result\":5}"), "ctx 256 deep: %s", d.text);
    free(r.state);
  }

  /* The instance skips validating state it wrote itself and gets back
  ** unchanged (a comparison with its copy): a byte changed after it was
  ** written, or a forged state with a checksum that matches, is still
  ** validated whole, on the very instance that wrote the original. */
  {
    const char *in1 = "{\"fn\":\"lenOf\",\"args\":{\"j\":[1,7,8]}}";
    res w = step(in1, NULL, 0, NULL);
    CHECK(w.kind == WFP_STEP_PENDING && w.slen > 40 && w.slen <= 512,
          "lenOf [1,7,8]: a small state expected: %u %u", w.kind, w.slen);
    if (w.kind == WFP_STEP_PENDING && w.slen > 40) {
      uint8_t *bad = malloc(w.slen);
      memcpy(bad, w.state, w.slen);
      bad[w.slen - 20] ^= 1; /* inside the frame */
      res d = step(in1, bad, w.slen, NULL);
      CHECK(has(&d, WFP_STEP_TRAP, "invalid state: checksum mismatch"),
            "one byte changed, same instance: %u %s", d.kind, d.text);
      /* a forger's state: the entry function out of range, re-checksummed */
      memcpy(bad, w.state, w.slen);
      bad[24] = 0xff;
      uint64_t sum = state_sum(bad, w.slen);
      memcpy(bad + 16, &sum, 8);
      d = step(in1, bad, w.slen, NULL);
      CHECK(has(&d, WFP_STEP_TRAP, "invalid state: unknown entry function"),
            "forged entry, same instance: %u %s", d.kind, d.text);
      free(bad);
      /* the state as written, after all that: resumes */
      res again = step(in1, NULL, 0, NULL);
      d = step(in1, again.state, again.slen, NULL);
      CHECK(has(&d, WFP_STEP_DONE, "{\"result\":3}"), "unchanged state: %u %s", d.kind,
            d.text);
      free(again.state);
    }
    free(w.state);
  }
  D->free_instance(I);
  dlclose(h);
  if (failures)
    fprintf(stderr, "%d check(s) failed\n", failures);
  else
    printf("all checks passed\n");
  return failures ? 1 : 0;
}
