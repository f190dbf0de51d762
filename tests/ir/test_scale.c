/*
** test_scale.c: the front end on large programs: wide JSON literals and
** templates, long bodies, many functions, lambdas, nested functions and
** parameters, deep nesting. Each load takes well under a second when the
** front end is linear, and minutes when one of its steps is quadratic (a
** 200,000-key lit_json object took over 8 minutes); nothing here measures
** time. Programs past the limits of docs/ir.md section 22 are checked in
** full before the limits are: they are refused, by the limit, as fast.
*/
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "irt.h"
#include "util.h"

static void add(wfp__buf *b, const char *fmt, ...) WFP__PRINTF(2, 3);
static void add(wfp__buf *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  assert_true(n > 0 && (size_t)n < sizeof tmp);
  wfp__buf_add(b, tmp, (size_t)n);
}

/* Loads b's program; returns it loaded (rc must be want). */
static wfp_program *load(wfp__buf *b, int want) {
  assert_false(b->oom);
  wfp_program *p = wfp_program_new(NULL);
  assert_non_null(p);
  int rc = wfp_program_load_mem(p, "big.json", b->data, b->len);
  if (rc != want) {
    irt_print_diags(p);
    fail_msg("expected %s, got %s", wfp_err_name(want), wfp_err_name(rc));
  }
  wfp__buf_free(b);
  return p;
}

/* The sanitizer build checks the same code for faults, not for time: a
** quarter of the sizes keeps it fast there (the plain build has them all). */
#if defined(__SANITIZE_ADDRESS__)
#define SCALE 4
#else
#define SCALE 1
#endif
#define N_KEYS (200000 / SCALE)
#define N_STMTS (50000 / SCALE)
#define N_FUNCS (20000 / SCALE)
#define N_CHAIN (30000 / SCALE)

/* the limits of docs/ir.md section 22 */
#define LIMIT_FUNCTIONS 10000
#define LIMIT_PARAMS 1000
#define LIMIT_NESTING 256
#define LIMIT_HOLES 10000
#define LIMIT_SITES 2000

/* Asserts that p has exactly one diagnostic at path containing text. */
static void refused_once(const wfp_program *p, const char *path, const char *text) {
  int n = 0;
  for (size_t i = 0; i < wfp_program_diag_count(p); i++) {
    const wfp_diag *d = wfp_program_diag(p, i);
    if (strstr(d->msg, text))
      n++;
  }
  if (!irt_find_diag(p, path, text) || n != 1) {
    irt_print_diags(p);
    fail_msg("expected one '%s' at %s, found %d", text, path, n);
  }
}

/* A lit_json object of 200,000 keys (duplicate keys are looked for), and
** the same with a duplicate as its last key. */
static void wide_literal(void **state) {
  (void)state;
  for (int dup = 0; dup < 2; dup++) {
    wfp__buf b;
    wfp__buf_init(&b);
    add(&b, "{\"version\":1,\"functions\":[{\"name\":\"main\",\"body\":["
            "{\"op\":\"return\",\"expr\":{\"op\":\"lit_json\",\"value\":{");
    for (int i = 0; i < N_KEYS; i++)
      add(&b, "%s\"k%d\":%d", i ? "," : "", i, i);
    if (dup)
      add(&b, ",\"k%d\":0", N_KEYS / 2);
    add(&b, "}}}]}]}");
    wfp_program *p = load(&b, dup ? WFP_EPROGRAM : WFP_OK);
    if (dup) {
      char path[96];
      snprintf(path, sizeof path, "$.functions[0].body[0].expr.value.k%d", N_KEYS / 2);
      assert_non_null(irt_find_diag(p, path, "duplicate key"));
    } else {
      char *ir = irt_ir_text(p);
      assert_non_null(strstr(ir, "{\"k0\":0,\"k1\":1,"));
      char last[64];
      snprintf(last, sizeof last, ",\"k%d\":%d}", N_KEYS - 1, N_KEYS - 1);
      assert_non_null(strstr(ir, last));
      wfp_free(ir);
    }
    wfp_program_free(p);
  }
}

/* A json template of 200,000 literal members and one hole; an array
** template of as many holes as allowed, and one of 50,000 (refused). */
static void wide_templates(void **state) {
  (void)state;
  wfp__buf b;
  wfp__buf_init(&b);
  add(&b, "{\"version\":1,\"functions\":[{\"name\":\"main\",\"body\":["
          "{\"op\":\"return\",\"expr\":{\"op\":\"json\",\"value\":{");
  for (int i = 0; i < N_KEYS; i++)
    add(&b, "\"k%d\":[%d,{\"x\":null}],", i, i);
  add(&b, "\"h\":{\"op\":\"lit_i64\",\"value\":1}}}}]}]}");
  wfp_program_free(load(&b, WFP_OK));
  const int holes[] = {LIMIT_HOLES, N_STMTS};
  for (int k = 0; k < 2; k++) {
    wfp__buf_init(&b);
    add(&b, "{\"version\":1,\"functions\":[{\"name\":\"main\",\"body\":["
            "{\"op\":\"return\",\"expr\":{\"op\":\"json\",\"value\":[");
    for (int i = 0; i < holes[k]; i++)
      add(&b, "%s{\"op\":\"lit_i64\",\"value\":%d}", i ? "," : "", i);
    add(&b, "]}}]}]}");
    wfp_program *p = load(&b, k ? WFP_EPROGRAM : WFP_OK);
    if (k) {
      char msg[64];
      snprintf(msg, sizeof msg, "a json template of %d holes: at most %d", N_STMTS,
               LIMIT_HOLES);
      refused_once(p, "$.functions[0].body[0].expr", msg);
    }
    wfp_program_free(p);
  }
}

/* 50,000 lets in one body, each reading the first, and as many sets. */
static void long_body(void **state) {
  (void)state;
  wfp__buf b;
  wfp__buf_init(&b);
  add(&b, "{\"version\":1,\"functions\":[{\"name\":\"main\",\"body\":["
          "{\"op\":\"let\",\"name\":\"v\",\"expr\":{\"op\":\"lit_i64\",\"value\":1}}");
  for (int i = 0; i < N_STMTS; i++)
    add(&b, ",{\"op\":\"let\",\"name\":\"v%d\",\"expr\":{\"op\":\"var\",\"name\":\"v\"}}", i);
  for (int i = 0; i < N_STMTS; i++)
    add(&b, ",{\"op\":\"set\",\"name\":\"v\",\"expr\":{\"op\":\"var\",\"name\":\"v%d\"}}", i);
  add(&b, ",{\"op\":\"return\",\"expr\":{\"op\":\"var\",\"name\":\"v\"}}]}]}");
  wfp_program_free(load(&b, WFP_OK));
}

/* n functions f (each returns its parameter), n nested in main, each
** calling an f with main's variable, n lambdas in main capturing it, and a
** function of np params that main calls; main calls the first nc nested
** functions. */
static wfp__buf many_program(int n, int np, int nc) {
  wfp__buf b;
  wfp__buf_init(&b);
  add(&b, "{\"version\":1,\"functions\":[");
  for (int i = 0; i < n; i++)
    add(&b, "{\"name\":\"f%d\",\"params\":[\"x\"],\"body\":[{\"op\":\"return\","
            "\"expr\":{\"op\":\"var\",\"name\":\"x\"}}]},", i);
  for (int i = 0; i < n; i++)
    add(&b, "{\"name\":\"g%d\",\"parent\":\"main\",\"body\":[{\"op\":\"return\","
            "\"expr\":{\"op\":\"call\",\"fn\":\"f%d\",\"args\":["
            "{\"op\":\"var\",\"name\":\"b\"}]}}]},", i, i);
  add(&b, "{\"name\":\"many\",\"params\":[");
  for (int i = 0; i < np; i++)
    add(&b, "%s\"p%d\"", i ? "," : "", i);
  add(&b, "],\"body\":[{\"op\":\"return\",\"expr\":{\"op\":\"var\",\"name\":\"p0\"}}]},");
  add(&b, "{\"name\":\"main\",\"body\":[{\"op\":\"let\",\"name\":\"b\","
          "\"expr\":{\"op\":\"lit_i64\",\"value\":1}}");
  /* nc call sites, over the n nested functions (the sanitized build has
  ** fewer functions than sites) */
  for (int i = 0; i < nc; i++)
    add(&b, ",{\"op\":\"expr\",\"expr\":{\"op\":\"call\",\"fn\":\"g%d\",\"args\":[]}}",
        i % n);
  for (int i = 0; i < n; i++)
    add(&b, ",{\"op\":\"let\",\"name\":\"l%d\",\"expr\":{\"op\":\"lambda\",\"body\":["
            "{\"op\":\"return\",\"expr\":{\"op\":\"var\",\"name\":\"b\"}}]}}", i);
  add(&b, ",{\"op\":\"return\",\"expr\":{\"op\":\"call\",\"fn\":\"many\",\"args\":[");
  for (int i = 0; i < np; i++)
    add(&b, "%s{\"op\":\"var\",\"name\":\"b\"}", i ? "," : "");
  add(&b, "]}}]}]}");
  return b;
}

/* As many functions as allowed (a third each called, nested in main and
** lambdas capturing its variable) and a function of as many params; then
** 20,000 of each, a function of 20,000 params and main calling 20,000
** functions: checked in full, refused by each limit once. */
static void many_functions(void **state) {
  (void)state;
  int n = (LIMIT_FUNCTIONS - 2) / 3 / SCALE;
  wfp__buf b = many_program(n, LIMIT_PARAMS, LIMIT_SITES - 1);
  wfp_program *p = load(&b, WFP_OK);
  assert_int_equal(wfp_program_function_count(p), 3 * n + 2);
  /* the last lambda is lifted with its capture, and so is the last nested
  ** function */
  cJSON *ir = irt_ir(p);
  char name[32];
  snprintf(name, sizeof name, "main$lambda%d", n - 1);
  cJSON *f = irt_ir_func(ir, name);
  assert_non_null(f);
  assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(f, "captures"), 0)->valuestring, "b");
  snprintf(name, sizeof name, "g%d", n - 1);
  f = irt_ir_func(ir, name);
  assert_non_null(f);
  assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(f, "captures"), 0)->valuestring, "b");
  cJSON_Delete(ir);
  wfp_program_free(p);

  b = many_program(N_FUNCS, N_FUNCS, N_FUNCS);
  p = load(&b, WFP_EPROGRAM);
  char msg[96];
  snprintf(msg, sizeof msg, "the program has %d functions (lambdas included): at most %d",
           3 * N_FUNCS + 2, LIMIT_FUNCTIONS);
  refused_once(p, "$.functions", msg);
  snprintf(msg, sizeof msg, "'many' has %d parameters: at most %d", N_FUNCS, LIMIT_PARAMS);
  char path[64];
  snprintf(path, sizeof path, "$.functions[%d].params", 2 * N_FUNCS);
  refused_once(p, path, msg);
  snprintf(msg, sizeof msg, "'main' has %d effects, calls and loops", N_FUNCS + 1);
  snprintf(path, sizeof path, "$.functions[%d]", 2 * N_FUNCS + 1);
  refused_once(p, path, msg);
  assert_int_equal(wfp_program_diag_count(p), 3);
  wfp_program_free(p);
}

/* A chain of n functions each nested in the one before, the innermost
** reading a variable of main: every one captures it (nesting as deep as
** the program is long takes a loop, not recursion). */
static wfp__buf chain_program(int n) {
  wfp__buf b;
  wfp__buf_init(&b);
  add(&b, "{\"version\":1,\"functions\":[{\"name\":\"main\",\"body\":["
          "{\"op\":\"let\",\"name\":\"b\",\"expr\":{\"op\":\"lit_i64\",\"value\":1}},"
          "{\"op\":\"return\",\"expr\":{\"op\":\"call\",\"fn\":\"f0\",\"args\":[]}}]}");
  for (int i = 0; i < n; i++) {
    char parent[32], callee[32];
    snprintf(parent, sizeof parent, i ? "f%d" : "main", i - 1);
    snprintf(callee, sizeof callee, "f%d", i + 1);
    if (i + 1 < n)
      add(&b, ",{\"name\":\"f%d\",\"parent\":\"%s\",\"body\":[{\"op\":\"return\","
              "\"expr\":{\"op\":\"call\",\"fn\":\"%s\",\"args\":[]}}]}", i, parent, callee);
    else
      add(&b, ",{\"name\":\"f%d\",\"parent\":\"%s\",\"body\":[{\"op\":\"return\","
              "\"expr\":{\"op\":\"var\",\"name\":\"b\"}}]}", i, parent);
  }
  add(&b, "]}");
  return b;
}

/* Functions nested as deep as allowed, every one capturing main's
** variable; then a chain of 30,000: checked in full (the captures of every
** level), refused once, at the first function past the nesting limit. */
static void deep_nesting(void **state) {
  (void)state;
  wfp__buf b = chain_program(LIMIT_NESTING);
  wfp_program *p = load(&b, WFP_OK);
  cJSON *ir = irt_ir(p);
  char name[32];
  snprintf(name, sizeof name, "f%d", LIMIT_NESTING - 1);
  cJSON *f = irt_ir_func(ir, name);
  assert_non_null(f);
  assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(f, "captures"), 0)->valuestring, "b");
  cJSON_Delete(ir);
  wfp_program_free(p);

  b = chain_program(N_CHAIN);
  p = load(&b, WFP_EPROGRAM);
  char path[32], msg[64];
  snprintf(path, sizeof path, "$.functions[%d]", LIMIT_NESTING + 1);
  snprintf(msg, sizeof msg, "'f%d' is nested in more than %d functions", LIMIT_NESTING,
           LIMIT_NESTING);
  refused_once(p, path, msg);
  /* and, past 10,000 functions, by their count */
  size_t more = N_CHAIN + 1 > LIMIT_FUNCTIONS;
  if (more)
    refused_once(p, "$.functions", "functions (lambdas included): at most");
  assert_int_equal(wfp_program_diag_count(p), 1 + more);
  wfp_program_free(p);
}

int main(int argc, char **argv) {
  /* test_ir_scale NAME: only the tests NAME matches (a cmocka pattern) */
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(wide_literal),
      cmocka_unit_test(wide_templates),
      cmocka_unit_test(long_body),
      cmocka_unit_test(many_functions),
      cmocka_unit_test(deep_nesting),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
