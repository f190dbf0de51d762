/*
** test_scale.c: the front end on large programs: wide JSON literals and
** templates, long bodies, many functions, lambdas, nested functions and
** parameters, deep nesting. Each load takes well under a second when the
** front end is linear, and minutes when one of its steps is quadratic (a
** 200,000-key lit_json object took over 8 minutes); nothing here measures
** time.
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

/* A json template of 200,000 literal members and one hole, and an array
** template of 50,000 holes. */
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
  wfp__buf_init(&b);
  add(&b, "{\"version\":1,\"functions\":[{\"name\":\"main\",\"body\":["
          "{\"op\":\"return\",\"expr\":{\"op\":\"json\",\"value\":[");
  for (int i = 0; i < N_STMTS; i++)
    add(&b, "%s{\"op\":\"lit_i64\",\"value\":%d}", i ? "," : "", i);
  add(&b, "]}}]}]}");
  wfp_program_free(load(&b, WFP_OK));
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

/* 20,000 functions called by main; as many nested in main reading its
** variable; as many lambdas capturing it; a function of 20,000 params. */
static void many_functions(void **state) {
  (void)state;
  wfp__buf b;
  wfp__buf_init(&b);
  add(&b, "{\"version\":1,\"functions\":[");
  for (int i = 0; i < N_FUNCS; i++)
    add(&b, "{\"name\":\"f%d\",\"params\":[\"x\"],\"body\":[{\"op\":\"return\","
            "\"expr\":{\"op\":\"var\",\"name\":\"x\"}}]},", i);
  for (int i = 0; i < N_FUNCS; i++)
    add(&b, "{\"name\":\"g%d\",\"parent\":\"main\",\"body\":[{\"op\":\"return\","
            "\"expr\":{\"op\":\"var\",\"name\":\"b\"}}]},", i);
  add(&b, "{\"name\":\"many\",\"params\":[");
  for (int i = 0; i < N_FUNCS; i++)
    add(&b, "%s\"p%d\"", i ? "," : "", i);
  add(&b, "],\"body\":[{\"op\":\"return\",\"expr\":{\"op\":\"var\",\"name\":\"p0\"}}]},");
  add(&b, "{\"name\":\"main\",\"body\":[{\"op\":\"let\",\"name\":\"b\","
          "\"expr\":{\"op\":\"lit_i64\",\"value\":1}}");
  for (int i = 0; i < N_FUNCS; i++)
    add(&b, ",{\"op\":\"expr\",\"expr\":{\"op\":\"call\",\"fn\":\"f%d\",\"args\":["
            "{\"op\":\"call\",\"fn\":\"g%d\",\"args\":[]}]}}", i, i);
  for (int i = 0; i < N_FUNCS; i++)
    add(&b, ",{\"op\":\"let\",\"name\":\"l%d\",\"expr\":{\"op\":\"lambda\",\"body\":["
            "{\"op\":\"return\",\"expr\":{\"op\":\"var\",\"name\":\"b\"}}]}}", i);
  add(&b, ",{\"op\":\"return\",\"expr\":{\"op\":\"call\",\"fn\":\"many\",\"args\":[");
  for (int i = 0; i < N_FUNCS; i++)
    add(&b, "%s{\"op\":\"var\",\"name\":\"b\"}", i ? "," : "");
  add(&b, "]}}]}]}");
  wfp_program *p = load(&b, WFP_OK);
  assert_int_equal(wfp_program_function_count(p), 3 * N_FUNCS + 2);
  /* the last lambda is lifted with its capture */
  cJSON *ir = irt_ir(p);
  char name[32];
  snprintf(name, sizeof name, "main$lambda%d", N_FUNCS - 1);
  cJSON *f = irt_ir_func(ir, name);
  assert_non_null(f);
  assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(f, "captures"), 0)->valuestring, "b");
  cJSON_Delete(ir);
  wfp_program_free(p);
}

/* 30,000 functions each nested in the one before, the innermost reading a
** variable of main: every one captures it (nesting as deep as the program
** is long takes a loop, not recursion). */
static void deep_nesting(void **state) {
  (void)state;
  wfp__buf b;
  wfp__buf_init(&b);
  add(&b, "{\"version\":1,\"functions\":[{\"name\":\"main\",\"body\":["
          "{\"op\":\"let\",\"name\":\"b\",\"expr\":{\"op\":\"lit_i64\",\"value\":1}},"
          "{\"op\":\"return\",\"expr\":{\"op\":\"call\",\"fn\":\"f0\",\"args\":[]}}]}");
  for (int i = 0; i < N_CHAIN; i++) {
    char parent[32], callee[32];
    snprintf(parent, sizeof parent, i ? "f%d" : "main", i - 1);
    snprintf(callee, sizeof callee, "f%d", i + 1);
    if (i + 1 < N_CHAIN)
      add(&b, ",{\"name\":\"f%d\",\"parent\":\"%s\",\"body\":[{\"op\":\"return\","
              "\"expr\":{\"op\":\"call\",\"fn\":\"%s\",\"args\":[]}}]}", i, parent, callee);
    else
      add(&b, ",{\"name\":\"f%d\",\"parent\":\"%s\",\"body\":[{\"op\":\"return\","
              "\"expr\":{\"op\":\"var\",\"name\":\"b\"}}]}", i, parent);
  }
  add(&b, "]}");
  wfp_program *p = load(&b, WFP_OK);
  cJSON *ir = irt_ir(p);
  char name[32];
  snprintf(name, sizeof name, "f%d", N_CHAIN - 1);
  cJSON *f = irt_ir_func(ir, name);
  assert_non_null(f);
  assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(f, "captures"), 0)->valuestring, "b");
  cJSON_Delete(ir);
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
