/*
** test_scale.c: the front end on large programs: wide JSON literals and
** templates, long bodies, many functions, lambdas, nested functions and
** parameters. Each load takes well under a second when the front end is
** linear, and minutes when one of its steps is quadratic (a 200,000-key
** lit_json object took over 8 minutes); nothing here measures time.
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

#define N_KEYS 200000
#define N_STMTS 50000
#define N_FUNCS 20000

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
      assert_non_null(strstr(ir, ",\"k199999\":199999}"));
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(wide_literal),
      cmocka_unit_test(wide_templates),
      cmocka_unit_test(long_body),
      cmocka_unit_test(many_functions),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
