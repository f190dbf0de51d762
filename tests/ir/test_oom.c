/*
** test_oom.c: the front end under allocation failure. Every allocation of a
** load (and of the IR text it writes) is made to fail in turn, the SQLite
** way; each failure must give WFP_ENOMEM, never a crash or another answer,
** and nothing may stay allocated after wfp_program_free.
*/
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "irt.h"

/*
** The front end's own calls (libwfp_ir, libwfp_common) reach these through
** the linker's --wrap; cJSON's through its hooks. While armed, attempt
** number fail_at fails, and live counts the blocks not yet freed.
*/
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

static bool armed;
static long attempts, fail_at = -1, live;
static bool injected;

static bool fail_now(void) {
  if (!armed)
    return false;
  if (attempts++ == fail_at) {
    injected = true;
    return true;
  }
  return false;
}

void *__wrap_malloc(size_t n) {
  if (fail_now())
    return NULL;
  void *p = __real_malloc(n);
  if (p && armed)
    live++;
  return p;
}

void *__wrap_calloc(size_t n, size_t m) {
  if (fail_now())
    return NULL;
  void *p = __real_calloc(n, m);
  if (p && armed)
    live++;
  return p;
}

void *__wrap_realloc(void *p, size_t n) {
  if (fail_now())
    return NULL;
  void *r = __real_realloc(p, n);
  if (r && !p && armed)
    live++;
  return r;
}

void __wrap_free(void *p) {
  if (p && armed)
    live--;
  __real_free(p);
}

/* Loads text once per allocation, failing that allocation; the answer of
** the load without failures is want. pretty: also write the indented IR. */
static void each_failure(const char *name, const char *text, int want) {
  long total = -1;
  for (long k = 0;; k++) {
    armed = true;
    attempts = 0;
    fail_at = k;
    injected = false;
    live = 0;
    wfp_program *p = wfp_program_new(NULL);
    int rc = WFP_ENOMEM;
    char *ir = NULL;
    if (p) {
      rc = wfp_program_load_mem(p, "t.json", text, strlen(text));
      /* a refused load always explains itself, out of memory included */
      if (rc != WFP_OK && wfp_program_diag_count(p) == 0) {
        armed = false;
        fail_msg("%s: failing allocation %ld: %s without a diagnostic", name,
                 k, wfp_err_name(rc));
      }
      if (rc == WFP_OK) {
        rc = wfp_program_ir_json(p, 1, &ir, NULL);
        wfp_free(ir);
      }
    }
    wfp_program_free(p);
    armed = false;
    if (live != 0)
      fail_msg("%s: failing allocation %ld: %ld block(s) leaked", name, k,
               live);
    if (!injected) {
      if (rc != want)
        fail_msg("%s: without a failure the load gives %s, expected %s", name,
                 wfp_err_name(rc), wfp_err_name(want));
      total = k;
      break;
    }
    if (rc != WFP_ENOMEM)
      fail_msg("%s: failing allocation %ld gives %s, expected ENOMEM", name, k,
               wfp_err_name(rc));
  }
  print_message("%s: %ld allocations, each failed in turn\n", name, total);
}

static void each_failure_q(const char *name, const char *qtext, int want) {
  char *t = irt_q(qtext);
  each_failure(name, t, want);
  free(t);
}

static void each_failure_file(const char *name, int want) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", WFP_EXAMPLES_DIR, name);
  char *t = irt_read(path, NULL);
  each_failure(name, t, want);
  free(t);
}

static void examples(void **state) {
  (void)state;
  each_failure_file("program.simple.json", WFP_OK);
  each_failure_file("program.nested.json", WFP_OK);
  each_failure_file("program.resource.json", WFP_OK);
  each_failure_file("program.accumulator.json", WFP_OK);
}

/* closures: lambdas in lambdas, nested functions called from lambdas, fn
** values through parameters, captures resolved at sites */
static void closures(void **state) {
  (void)state;
  each_failure_q(
      "closures",
      PROG(FUNC("main", "",
                LET("k", I64(3)) ","
                LET("outer", LAMBDA("'x'",
                    LET("inner", LAMBDA("'y'",
                        RET(BIN("add", VAR("x"), BIN("mul", VAR("y"), VAR("k")))))) ","
                    RET(CALL_REF(VAR("inner"), CALL("g", I64(2)))))) ","
                RET(CALL("twice", VAR("outer") "," I64(1)))) ","
           NESTED("g", "main", "'v'", RET(BIN("add", VAR("v"), VAR("k")))) ","
           FUNC("twice", "{'name':'f','type':'fn'},'v'",
                RET(CALL_REF(VAR("f"), CALL_REF(VAR("f"), VAR("v")))))),
      WFP_OK);
}

/* JSON data: literals, templates, paths, effects */
static void json_data(void **state) {
  (void)state;
  each_failure_q(
      "json",
      MAIN(LET("d", "{'op':'lit_json','value':{'a':[1,2.50,{'b':null}],'c':'x'}}") ","
           LET("t", "{'op':'json','value':{'k':[true," VAR("d") ",{'n':" I64(1) "}],'s':'lit'}}") ","
           EXPR("{'op':'msg_send','topic':'t','payload':" VAR("t") "}") ","
           RET("{'op':'concat','parts':[" STR("n=")
               ",{'op':'get_i64','from':" VAR("d") ",'path':['a',0]}]}")),
      WFP_OK);
}

/* refused programs: the diagnostics' own allocations fail too */
static void faults(void **state) {
  (void)state;
  each_failure_q("faults",
                 PROG(FUNC("main", "",
                           LET("s", BIN("add", VAR("n"), STR("1"))) ","
                           RET(CALL("nope", "")) ",{'op':'brek'}") ","
                      FUNC("main", "'a','a'", RET(I64(1)))),
                 WFP_EPROGRAM);
  each_failure("syntax", "{\"version\": 1, \"functions\": [,]}", WFP_ESYNTAX);
}

int main(void) {
  cJSON_Hooks hooks = {__wrap_malloc, __wrap_free};
  cJSON_InitHooks(&hooks);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(examples),
      cmocka_unit_test(closures),
      cmocka_unit_test(json_data),
      cmocka_unit_test(faults),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
