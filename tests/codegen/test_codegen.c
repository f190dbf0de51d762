/*
** test_codegen.c: wfp_codegen's interface: a module for a good program, and
** the one error form (wfp_diag: code, file, JSON path, message, in one
** block freed with wfp_free) when it cannot lower one. What the modules
** do is tested end to end (tests/e2e), through wasm2c, cc and the host.
*/
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "wfp/codegen.h"

static wfp_program *load(const char *name, const char *text) {
  wfp_program *p = wfp_program_new(NULL);
  assert_non_null(p);
  assert_int_equal(wfp_program_load_mem(p, name, text, strlen(text)), WFP_OK);
  return p;
}

static void test_module(void **state) {
  (void)state;
  wfp_program *p = load("ok.json",
                        "{\"version\":1,\"functions\":[{\"name\":\"main\",\"params\":[],"
                        "\"body\":[{\"op\":\"return\",\"expr\":{\"op\":\"lit_i64\",\"value\":7}}]}]}");
  long own = -2;
  wfp_cg_opts o = {sizeof o, 0, &own};
  unsigned char *wasm = NULL;
  size_t len = 0;
  wfp_diag *d = (wfp_diag *)&len; /* set to NULL on success */
  assert_int_equal(wfp_codegen(p, &o, &wasm, &len, &d), WFP_OK);
  assert_null(d);
  assert_true(len > 8);
  assert_memory_equal(wasm, "\0asm", 4);
  wfp_free(wasm);
  /* the runtime's functions come first, then the program's */
  assert_true(own > 0);
  long own0 = own;
  own = -2;
  o.opt_level = 2;
  assert_int_equal(wfp_codegen(p, &o, &wasm, &len, NULL), WFP_OK);
  wfp_free(wasm);
  assert_true(own > 0 && own <= own0);
  o.opt_level = 0;
  o.first_own = NULL;
  /* diag may be NULL */
  assert_int_equal(wfp_codegen(p, &o, &wasm, &len, NULL), WFP_OK);
  wfp_free(wasm);
  wfp_program_free(p);
}

/* A fn value of lifted IR that binds more captures than the function has:
** this version cannot lower it (a diagnostic at the expression). */
static void test_diag(void **state) {
  (void)state;
  wfp_program *p = load(
      "bind.json",
      "{\"version\":1,\"functions\":["
      "{\"name\":\"main\",\"params\":[],\"body\":["
      "{\"op\":\"let\",\"name\":\"f\",\"expr\":{\"op\":\"fn\",\"name\":\"g\",\"captures\":"
      "[{\"op\":\"lit_i64\",\"value\":1},{\"op\":\"lit_i64\",\"value\":2}]}},"
      "{\"op\":\"return\",\"expr\":{\"op\":\"call_ref\",\"fn\":{\"op\":\"var\",\"name\":\"f\"},"
      "\"args\":[]}}]},"
      "{\"name\":\"g\",\"params\":[\"a\",\"x\"],\"nested_in\":\"main\",\"captures\":[\"a\"],"
      "\"body\":[{\"op\":\"return\",\"expr\":{\"op\":\"var\",\"name\":\"x\"}}]}]}");
  unsigned char *wasm = (unsigned char *)"not written";
  size_t len = 1;
  wfp_diag *d = NULL;
  int rc = wfp_codegen(p, NULL, &wasm, &len, &d);
  assert_int_equal(rc, WFP_EUNSUPPORTED);
  assert_null(wasm);
  assert_int_equal(len, 0);
  assert_non_null(d);
  assert_int_equal(d->code, rc);
  assert_string_equal(d->file, "bind.json");
  assert_string_equal(d->path, "$.functions[0].body[0].expr");
  assert_int_equal(d->line, 0);
  assert_non_null(strstr(d->msg, "a fn value binding 2 of the 2 parameters of 'g'"));
  char line[512];
  wfp_diag_format(d, line, sizeof line);
  assert_non_null(strstr(line, "bind.json: $.functions[0].body[0].expr: error: a fn value"));
  wfp_free(d);
  wfp_program_free(p);
}

static void test_invalid(void **state) {
  (void)state;
  wfp_program *p = wfp_program_new(NULL);
  unsigned char *wasm;
  size_t len;
  wfp_diag *d = (wfp_diag *)&len;
  /* not loaded: nothing to lower, no diagnostic */
  assert_int_equal(wfp_codegen(p, NULL, &wasm, &len, &d), WFP_EINVAL);
  assert_null(d);
  assert_int_equal(wfp_codegen(NULL, NULL, &wasm, &len, &d), WFP_EINVAL);
  wfp_program_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_module),
      cmocka_unit_test(test_diag),
      cmocka_unit_test(test_invalid),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
