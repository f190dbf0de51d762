/*
** test_lift.c: lambda lifting as seen in the canonical IR (wfp_program_ir_json
** read back with cJSON): nested functions and lambdas made top level, their
** captures, the call sites, and the lifted IR loading again. Not codegen.
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

/* ---- reading the IR ---- */

static const cJSON *field(const cJSON *o, const char *k) {
  return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *str_of(const cJSON *o, const char *k) {
  const cJSON *v = field(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *func_or_fail(const cJSON *ir, const char *name) {
  const cJSON *f = irt_ir_func(ir, name);
  if (!f) {
    char *s = cJSON_PrintUnformatted(ir);
    print_error("no function '%s' in the lifted IR:\n%s\n", name, s);
    free(s);
    fail();
  }
  return f;
}

/* The names of f's params, joined with ','. */
static void param_names(const cJSON *f, char *out, size_t n) {
  out[0] = 0;
  const cJSON *p;
  cJSON_ArrayForEach(p, field(f, "params")) {
    if (out[0])
      strncat(out, ",", n - strlen(out) - 1);
    strncat(out, str_of(p, "name") ? str_of(p, "name") : "?", n - strlen(out) - 1);
  }
}

static void string_list(const cJSON *a, char *out, size_t n) {
  out[0] = 0;
  const cJSON *s;
  cJSON_ArrayForEach(s, a) {
    if (out[0])
      strncat(out, ",", n - strlen(out) - 1);
    strncat(out, cJSON_IsString(s) ? s->valuestring : "?", n - strlen(out) - 1);
  }
}

/* The first object under j (depth first, document order) whose "op" is op
** and, when key is not NULL, whose key is the string val. */
static const cJSON *find_op(const cJSON *j, const char *op, const char *key,
                            const char *val) {
  if (cJSON_IsObject(j)) {
    const char *o = str_of(j, "op");
    if (o && !strcmp(o, op) && (!key || (str_of(j, key) && !strcmp(str_of(j, key), val))))
      return j;
  }
  for (const cJSON *c = j->child; c; c = c->next) {
    const cJSON *r = find_op(c, op, key, val);
    if (r)
      return r;
  }
  return NULL;
}

/* A {"op":"var","name":name}, exactly. */
static bool is_var(const cJSON *e, const char *name) {
  return cJSON_IsObject(e) && cJSON_GetArraySize(e) == 2 && str_of(e, "op") &&
         !strcmp(str_of(e, "op"), "var") && str_of(e, "name") &&
         !strcmp(str_of(e, "name"), name);
}

/* The i-th argument of a call, or of captures of a fn. */
static const cJSON *item(const cJSON *o, const char *k, int i) {
  const cJSON *a = field(o, k);
  assert_true(cJSON_IsArray(a));
  return cJSON_GetArrayItem(a, i);
}

/* ---- the nested example ---- */

static void nested_example_is_lifted(void **state) {
  (void)state;
  wfp_program *p = wfp_program_new(NULL);
  assert_non_null(p);
  int rc = wfp_program_load_file(p, WFP_EXAMPLES_DIR "/program.nested.json");
  if (rc != WFP_OK)
    irt_print_diags(p);
  assert_int_equal(rc, WFP_OK);
  cJSON *ir = irt_ir(p);

  /* both functions are top level, in order: each function, then what it nests */
  const cJSON *fa = field(ir, "functions");
  assert_int_equal(cJSON_GetArraySize(fa), 2);
  assert_string_equal(str_of(cJSON_GetArrayItem(fa, 0), "name"), "main");
  assert_string_equal(str_of(cJSON_GetArrayItem(fa, 1), "name"), "addBase");

  const cJSON *nested = func_or_fail(ir, "addBase");
  assert_true(cJSON_IsNull(field(nested, "parent")));
  assert_string_equal(str_of(nested, "nested_in"), "main");
  char buf[256];
  string_list(field(nested, "captures"), buf, sizeof buf);
  assert_string_equal(buf, "base");
  /* the captured variable is the first parameter, then the declared one */
  param_names(nested, buf, sizeof buf);
  assert_string_equal(buf, "base,x");
  assert_string_equal(str_of(cJSON_GetArrayItem(field(nested, "params"), 0), "type"), "i64");
  /* its body reads the parameter under the same name */
  assert_non_null(find_op(field(nested, "body"), "var", "name", "base"));

  /* main passes the captured variable first */
  const cJSON *main_fn = func_or_fail(ir, "main");
  assert_null(field(main_fn, "nested_in"));
  assert_null(field(main_fn, "captures"));
  const cJSON *call = find_op(field(main_fn, "body"), "call", "fn", "addBase");
  assert_non_null(call);
  assert_int_equal(cJSON_GetArraySize(field(call, "args")), 2);
  assert_true(is_var(item(call, "args", 0), "base"));
  const cJSON *lit = item(call, "args", 1);
  assert_string_equal(str_of(lit, "op"), "lit_i64");
  assert_int_equal(field(lit, "value")->valueint, 32);
  cJSON_Delete(ir);
  wfp_program_free(p);
}

/* ---- lambdas ---- */

/* main: a, b and c are in scope; the lambda reads b and a (not c) */
#define TWO_CAPTURES                                                           \
  MAIN(LET("a", I64(1)) "," LET("b", I64(2)) "," LET("c", I64(3)) ","         \
       LET("f", LAMBDA("'x'", RET(BIN("add", VAR("b"), BIN("add", VAR("a"), VAR("x")))))) "," \
       RET(CALL_REF(VAR("f"), I64(3))))

static void lambda_with_two_captures(void **state) {
  (void)state;
  wfp_program *p = LOAD_OK(TWO_CAPTURES);
  assert_int_equal(wfp_program_function_count(p), 2);
  assert_string_equal(wfp_program_function_name(p, 1), "main$lambda0");
  cJSON *ir = irt_ir(p);
  const cJSON *lam = func_or_fail(ir, "main$lambda0");
  assert_string_equal(str_of(lam, "nested_in"), "main");
  assert_true(cJSON_IsNull(field(lam, "parent")));

  /* exactly a and b are captured, and they lead the params in that order */
  const cJSON *caps = field(lam, "captures");
  assert_int_equal(cJSON_GetArraySize(caps), 2);
  const char *c0 = cJSON_GetArrayItem(caps, 0)->valuestring;
  const char *c1 = cJSON_GetArrayItem(caps, 1)->valuestring;
  assert_true((!strcmp(c0, "a") && !strcmp(c1, "b")) || (!strcmp(c0, "b") && !strcmp(c1, "a")));
  char want[64], buf[256];
  snprintf(want, sizeof want, "%s,%s,x", c0, c1);
  param_names(lam, buf, sizeof buf);
  assert_string_equal(buf, want);

  /* the lambda site became a reference with the captured values, in order */
  const cJSON *main_fn = func_or_fail(ir, "main");
  assert_null(find_op(ir, "lambda", NULL, NULL));
  const cJSON *site = find_op(field(main_fn, "body"), "fn", NULL, NULL);
  assert_non_null(site);
  assert_int_equal(cJSON_GetArraySize(site), 3); /* op, name, captures */
  assert_string_equal(str_of(site, "name"), "main$lambda0");
  assert_int_equal(cJSON_GetArraySize(field(site, "captures")), 2);
  assert_true(is_var(item(site, "captures", 0), c0));
  assert_true(is_var(item(site, "captures", 1), c1));

  /* the order is stable: again, and with another layout of the same text */
  char *first = irt_ir_text(p);
  wfp_program *again = LOAD_OK(TWO_CAPTURES);
  char *second = irt_ir_text(again);
  assert_string_equal(first, second);
  char *src = irt_q(TWO_CAPTURES);
  cJSON *j = cJSON_Parse(src);
  char *laid_out = cJSON_Print(j); /* tabs and newlines */
  cJSON_Delete(j);
  free(src);
  int rc;
  wfp_program *other = irt_load_raw(laid_out, strlen(laid_out), NULL, &rc);
  assert_int_equal(rc, WFP_OK);
  char *third = irt_ir_text(other);
  assert_string_equal(first, third);
  wfp_free(third);
  wfp_program_free(other);
  free(laid_out);
  wfp_free(first);
  wfp_free(second);
  wfp_program_free(again);
  cJSON_Delete(ir);
  wfp_program_free(p);
}

static void lambda_names_and_capture_types(void **state) {
  (void)state;
  wfp_program *p = LOAD_OK(PROG(
      FUNC("main", "",
           LET("s", STR("text")) "," LET("j", INPUT) ","
           LET("f", LAMBDA("", RET(BIN("add", UN("len", VAR("s")), UN("len", VAR("j")))))) ","
           LET("g", LAMBDA("", RET(I64(7)))) ","
           RET(BIN("add", CALL_REF(VAR("f"), ""), CALL_REF(VAR("g"), "")))) ","
      FUNC("helper", "", LET("h", LAMBDA("'y'", RET(VAR("y")))) "," RET(CALL_REF(VAR("h"), I64(1))))));
  cJSON *ir = irt_ir(p);
  /* numbered per enclosing named function, in document order */
  const cJSON *f = func_or_fail(ir, "main$lambda0");
  const cJSON *g = func_or_fail(ir, "main$lambda1");
  const cJSON *h = func_or_fail(ir, "helper$lambda0");
  assert_string_equal(str_of(h, "nested_in"), "helper");
  /* captured parameters carry their variable's type */
  const cJSON *prm;
  cJSON_ArrayForEach(prm, field(f, "params")) {
    const char *n = str_of(prm, "name");
    assert_string_equal(str_of(prm, "type"), !strcmp(n, "s") ? "str" : "json");
  }
  assert_int_equal(cJSON_GetArraySize(field(f, "params")), 2);
  /* no captures: no captures field, at the function or at the site */
  assert_null(field(g, "captures"));
  assert_int_equal(cJSON_GetArraySize(field(g, "params")), 0);
  const cJSON *site = find_op(field(func_or_fail(ir, "main"), "body"), "fn", "name", "main$lambda1");
  assert_non_null(site);
  assert_null(field(site, "captures"));
  cJSON_Delete(ir);
  wfp_program_free(p);
}

/* ---- nesting to depth 3 ---- */

#define DEPTH3                                                                 \
  PROG(FUNC("main", "", LET("k", I64(7)) "," RET(CALL("mid", I64(1)))) ","     \
       NESTED("mid", "main", "'a'", RET(CALL("leaf", VAR("a")))) ","           \
       NESTED("leaf", "mid", "'b'", RET(BIN("add", VAR("k"), VAR("b")))))

static void nested_depth_3(void **state) {
  (void)state;
  wfp_program *p = LOAD_OK(DEPTH3);
  cJSON *ir = irt_ir(p);
  char buf[256];
  /* leaf reads main's k: mid captures it too, to pass it down */
  const cJSON *leaf = func_or_fail(ir, "leaf");
  const cJSON *mid = func_or_fail(ir, "mid");
  assert_string_equal(str_of(leaf, "nested_in"), "mid");
  assert_string_equal(str_of(mid, "nested_in"), "main");
  string_list(field(leaf, "captures"), buf, sizeof buf);
  assert_string_equal(buf, "k");
  param_names(leaf, buf, sizeof buf);
  assert_string_equal(buf, "k,b");
  string_list(field(mid, "captures"), buf, sizeof buf);
  assert_string_equal(buf, "k");
  param_names(mid, buf, sizeof buf);
  assert_string_equal(buf, "k,a");
  /* each call passes it first */
  const cJSON *c = find_op(field(mid, "body"), "call", "fn", "leaf");
  assert_non_null(c);
  assert_true(is_var(item(c, "args", 0), "k"));
  assert_true(is_var(item(c, "args", 1), "a"));
  c = find_op(field(func_or_fail(ir, "main"), "body"), "call", "fn", "mid");
  assert_non_null(c);
  assert_int_equal(cJSON_GetArraySize(field(c, "args")), 2);
  assert_true(is_var(item(c, "args", 0), "k"));
  cJSON_Delete(ir);
  wfp_program_free(p);
}

#define LAMBDA_DEPTH3                                                          \
  MAIN(LET("a", I64(1)) ","                                                    \
       LET("f", LAMBDA("'x'", LET("g", LAMBDA("'y'", RET(BIN("add", VAR("a"), VAR("y"))))) "," \
                              RET(CALL_REF(VAR("g"), VAR("x"))))) ","          \
       RET(CALL_REF(VAR("f"), I64(2))))

static void lambda_in_lambda(void **state) {
  (void)state;
  wfp_program *p = LOAD_OK(LAMBDA_DEPTH3);
  cJSON *ir = irt_ir(p);
  char buf[256];
  const cJSON *outer = func_or_fail(ir, "main$lambda0");
  const cJSON *inner = func_or_fail(ir, "main$lambda1");
  assert_string_equal(str_of(inner, "nested_in"), "main$lambda0");
  /* the outer lambda captures a only to hand it to the inner one */
  param_names(outer, buf, sizeof buf);
  assert_string_equal(buf, "a,x");
  param_names(inner, buf, sizeof buf);
  assert_string_equal(buf, "a,y");
  const cJSON *site = find_op(field(outer, "body"), "fn", "name", "main$lambda1");
  assert_non_null(site);
  assert_true(is_var(item(site, "captures", 0), "a"));
  site = find_op(field(func_or_fail(ir, "main"), "body"), "fn", "name", "main$lambda0");
  assert_non_null(site);
  assert_true(is_var(item(site, "captures", 0), "a"));
  cJSON_Delete(ir);
  wfp_program_free(p);
}

/* A captured variable whose name the function also uses for a variable of
** its own gets another name; the IR stays unambiguous. */
static void capture_renamed_when_shadowed(void **state) {
  (void)state;
  wfp_program *p = LOAD_OK(PROG(
      FUNC("main", "", LET("n", I64(1)) "," RET(CALL("inner", ""))) ","
      NESTED("inner", "main", "",
             LET("r", VAR("n")) "," IF(I64(1), LET("n", I64(5)) "," SET("r", BIN("add", VAR("r"), VAR("n")))) ","
             RET(VAR("r")))));
  cJSON *ir = irt_ir(p);
  const cJSON *inner = func_or_fail(ir, "inner");
  const char *cap = cJSON_GetArrayItem(field(inner, "captures"), 0)->valuestring;
  assert_string_not_equal(cap, "n");
  char buf[256];
  param_names(inner, buf, sizeof buf);
  assert_string_equal(buf, cap);
  /* the first read is of the capture, the one in the block of the local */
  const cJSON *let_r = cJSON_GetArrayItem(field(inner, "body"), 0);
  assert_true(is_var(field(let_r, "expr"), cap));
  cJSON_Delete(ir);
  wfp_program_free(p);
}

/* ---- the lifted IR loads again ---- */

typedef enum { RELOAD_SAME, RELOAD_DIFFERENT, RELOAD_REFUSED } reload_result;

/* Loads text, then its canonical IR. The second load, when it succeeds,
** must give the same functions with the same IDs; the result says whether
** its canonical IR is also the same text. */
static reload_result reload(const char *text, size_t len, const char *what) {
  int rc;
  wfp_program *a = irt_load_raw(text, len, NULL, &rc);
  if (rc != WFP_OK) {
    irt_print_diags(a);
    wfp_program_free(a);
    fail_msg("%s does not load", what);
  }
  char *t1 = irt_ir_text(a);
  wfp_program *b = irt_load_raw(t1, strlen(t1), NULL, &rc);
  if (rc != WFP_OK) {
    print_message("the canonical IR of %s does not load again:\n", what);
    for (size_t i = 0; i < wfp_program_diag_count(b); i++)
      print_message("  %s: %s\n", wfp_program_diag(b, i)->path, wfp_program_diag(b, i)->msg);
    wfp_program_free(a);
    wfp_program_free(b);
    wfp_free(t1);
    return RELOAD_REFUSED;
  }
  /* the same functions, in the same order, with the same IDs */
  assert_int_equal(wfp_program_function_count(a), wfp_program_function_count(b));
  for (int i = 0; i < wfp_program_function_count(a); i++) {
    assert_string_equal(wfp_program_function_name(a, i), wfp_program_function_name(b, i));
    assert_string_equal(wfp_program_function_id(a, i), wfp_program_function_id(b, i));
  }
  assert_string_equal(wfp_program_entry(a), wfp_program_entry(b));
  char *t2 = irt_ir_text(b);
  bool same = strcmp(t1, t2) == 0 && !strcmp(wfp_program_hash(a), wfp_program_hash(b));
  if (!same) {
    /* where the two texts part, with some context */
    size_t k = 0;
    while (t1[k] && t1[k] == t2[k])
      k++;
    size_t from = k > 40 ? k - 40 : 0;
    print_message("%s: the IR of its IR differs at byte %zu:\n  first:  ...%.80s\n"
                  "  second: ...%.80s\n",
                  what, k, t1 + from, t2 + from);
  }
  wfp_free(t1);
  wfp_free(t2);
  wfp_program_free(a);
  wfp_program_free(b);
  return same ? RELOAD_SAME : RELOAD_DIFFERENT;
}

static reload_result reload_q(const char *q, const char *what) {
  char *t = irt_q(q);
  reload_result r = reload(t, strlen(t), what);
  free(t);
  return r;
}

static reload_result reload_example(const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", WFP_EXAMPLES_DIR, name);
  size_t n;
  char *text = irt_read(path, &n);
  reload_result r = reload(text, n, name);
  free(text);
  return r;
}

static void reload_without_nesting_is_identical(void **state) {
  (void)state;
  static const char *const with_main[] = {
      "program.accumulator.json", "program.converter.json", "program.simple.json",
  };
  for (size_t i = 0; i < sizeof with_main / sizeof *with_main; i++)
    if (reload_example(with_main[i]) != RELOAD_SAME)
      fail_msg("%s: the canonical IR of its canonical IR differs", with_main[i]);
  assert_int_equal(reload_q(PROG(FUNC("f", "'a'", RET(VAR("a"))) "," FUNC("main", "", RET(CALL("f", I64(1))))),
                            "two functions"),
                   RELOAD_SAME);
  /* programs of resource methods have no main, hence no entry to write */
  static const char *const without_main[] = {
      "program.bank-account.json", "program.resource.json", "program.state-machine.json",
  };
  for (size_t i = 0; i < sizeof without_main / sizeof *without_main; i++)
    if (reload_example(without_main[i]) != RELOAD_SAME)
      fail_msg("%s: the canonical IR of its canonical IR differs", without_main[i]);
}

static void reload_of_lifted_ir_is_identical(void **state) {
  (void)state;
  reload_result r[5];
  r[0] = reload_example("program.nested.json");
  r[1] = reload_q(TWO_CAPTURES, "a lambda with two captures");
  r[2] = reload_q(DEPTH3, "nesting to depth 3");
  r[3] = reload_q(LAMBDA_DEPTH3, "a lambda in a lambda");
  r[4] = reload_q(MAIN(LET("g", LAMBDA("", RET(I64(7)))) "," RET(CALL_REF(VAR("g"), ""))),
                  "a lambda without captures");
  /* nested_in and captures survive, so the text and the hash are the same */
  static const char *const what[] = {"program.nested.json", "two captures", "depth 3",
                                     "lambda in lambda", "no captures"};
  for (int i = 0; i < 5; i++)
    if (r[i] != RELOAD_SAME)
      fail_msg("%s: the canonical IR of its canonical IR %s", what[i],
               r[i] == RELOAD_REFUSED ? "is refused" : "differs");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(nested_example_is_lifted),
      cmocka_unit_test(lambda_with_two_captures),
      cmocka_unit_test(lambda_names_and_capture_types),
      cmocka_unit_test(nested_depth_3),
      cmocka_unit_test(lambda_in_lambda),
      cmocka_unit_test(capture_renamed_when_shadowed),
      cmocka_unit_test(reload_without_nesting_is_identical),
      cmocka_unit_test(reload_of_lifted_ir_is_identical),
  };
  return cmocka_run_group_tests_name("ir.lift", tests, NULL, NULL);
}
