/*
** test_check.c: the checker's rules (ir/check.c through wfp/ir.h): scopes,
** types, break/continue, resources and methods, arity, captures, the entry.
** Syntax and field shapes are test_parse.c's; lifting is test_lift.c's.
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
#include "ir_ast.h"

#define ok(q) wfp_program_free(LOAD_OK(q))
#define B0 "$.functions[0].body[0]"
#define B1 "$.functions[0].body[1]"

/* ---- scopes ---- */

static void let_in_loop_body_not_visible_after(void **state) {
  (void)state;
  REFUSED(MAIN(WHILE(I64(1), LET("x", I64(1)) "," BREAK) "," RET(VAR("x"))),
          B1 ".expr", "unknown variable 'x'");
  /* inside the body it is */
  ok(MAIN(WHILE(I64(1), LET("x", I64(1)) "," IF(VAR("x"), BREAK)) "," RET(I64(0))));
}

static void let_in_branch_not_visible_after(void **state) {
  (void)state;
  REFUSED(MAIN(IF(I64(1), LET("x", I64(1))) "," RET(VAR("x"))), B1 ".expr",
          "unknown variable 'x'");
  REFUSED(MAIN(IF_ELSE(I64(1), LET("x", I64(1)), LET("y", I64(2))) "," RET(VAR("y"))),
          B1 ".expr", "unknown variable 'y'");
  /* nor in the other branch */
  REFUSED(MAIN(IF_ELSE(I64(1), LET("x", I64(1)), RET(VAR("x")))),
          B0 ".else[0].expr", "unknown variable 'x'");
}

static void shadowing(void **state) {
  (void)state;
  /* an inner block may shadow, with another type even; the outer x is back
  ** after the block (add needs i64) */
  ok(MAIN(LET("x", I64(1)) "," IF(I64(1), LET("x", STR("s")) "," EXPR(UN("len", VAR("x"))))
          "," RET(BIN("add", VAR("x"), I64(1)))));
  ok(MAIN(LET("x", I64(1)) "," WHILE(I64(1), LET("x", I64(2)) "," BREAK) "," RET(VAR("x"))));
  /* a parameter is shadowed the same way */
  ok(PROG(FUNC("f", "'p'", IF(I64(1), LET("p", STR("s"))) "," RET(VAR("p")))));
  /* the same block twice: refused, pointing at the first */
  REFUSED(MAIN(LET("x", I64(1)) "," LET("x", I64(2))), B1,
          "duplicate variable 'x' in this block (declared at $.functions[0].body[0])");
  REFUSED(MAIN(IF(I64(1), LET("x", I64(1)) "," LET("x", I64(2)))), B0 ".then[1]",
          "duplicate variable 'x' in this block");
  /* params share the body's block */
  REFUSED(PROG(FUNC("f", "'p'", LET("p", I64(1)))), "$.functions[0].body[0]",
          "duplicate variable 'p'");
  REFUSED(PROG(FUNC("f", "'p','p'", RET_VOID)), "$.functions[0].params[1]",
          "duplicate parameter 'p'");
}

static void set_rules(void **state) {
  (void)state;
  ok(MAIN(LET("x", I64(1)) "," SET("x", I64(2)) "," RET(VAR("x"))));
  REFUSED(MAIN(SET("x", I64(2))), B0, "unknown variable 'x'");
  REFUSED(MAIN(LET("x", I64(1)) "," SET("x", STR("s"))), B1 ".expr",
          "type mismatch: 'set' of 'x' needs i64, got str");
}

/* ---- types ---- */

static void arithmetic_needs_i64(void **state) {
  (void)state;
  static const char *const ops[] = {"add", "sub", "mul", "div", "rem", "band", "bor",
                                    "bxor", "shl", "shr", "lt", "le", "gt", "ge",
                                    "and", "or"};
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
    char q[512], msg[64];
    snprintf(q, sizeof q, MAIN(RET("{'op':'%s','a':" I64(1) ",'b':" INPUT "}")), ops[i]);
    snprintf(msg, sizeof msg, "type mismatch: '%s' needs i64, got json", ops[i]);
    irt_refused_at(q, NULL, WFP_EPROGRAM, B0 ".expr.b", msg, __FILE__, __LINE__);
    snprintf(q, sizeof q, MAIN(RET("{'op':'%s','a':" STR("s") ",'b':" I64(1) "}")), ops[i]);
    snprintf(msg, sizeof msg, "type mismatch: '%s' needs i64, got str", ops[i]);
    irt_refused_at(q, NULL, WFP_EPROGRAM, B0 ".expr.a", msg, __FILE__, __LINE__);
    snprintf(q, sizeof q, MAIN(RET("{'op':'%s','a':" I64(1) ",'b':" I64(2) "}")), ops[i]);
    ok(q);
  }
  REFUSED(MAIN(RET(UN("neg", INPUT))), B0 ".expr.a", "'neg' needs i64, got json");
  REFUSED(MAIN(RET(UN("not", STR("s")))), B0 ".expr.a", "'not' needs i64, got str");
  /* the result is i64 */
  REFUSED(MAIN(RET(UN("len", BIN("add", I64(1), I64(2))))), B0 ".expr.a",
          "'len' needs str or json, got i64");
  /* an operand that gives no value */
  REFUSED(MAIN(RET(BIN("add", SLEEP, I64(1)))), B0 ".expr.a", "gives no value");
}

static void eq_ne_on_i64_or_str(void **state) {
  (void)state;
  ok(MAIN(RET(BIN("eq", I64(1), I64(2)))));
  ok(MAIN(RET(BIN("ne", STR("a"), STR("b")))));
  REFUSED(MAIN(RET(BIN("eq", STR("a"), I64(1)))), B0 ".expr",
          "'eq' compares values of one type, got str and i64");
  REFUSED(MAIN(RET(BIN("ne", INPUT, INPUT))), B0 ".expr",
          "compares i64 or str values, got json");
  REFUSED(MAIN(RET(BIN("eq", FNREF("main"), FNREF("main")))), B0 ".expr",
          "compares i64 or str values");
}

static void concat_parts(void **state) {
  (void)state;
  /* i64, str and json parts; the result is a str */
  ok(MAIN(RET(UN("len", "{'op':'concat','parts':[" STR("n=") "," I64(1) "," INPUT "]}"))));
  ok(MAIN(RET("{'op':'concat','parts':[]}")));
  REFUSED(MAIN(RET("{'op':'concat','parts':[" STR("x") "," FNREF("main") "]}")),
          B0 ".expr.parts[1]", "a 'concat' part must be i64, str or json, not a function");
  REFUSED(MAIN(RET("{'op':'concat','parts':[" SLEEP "]}")), B0 ".expr.parts[0]",
          "gives no value (a 'concat' part needs one)");
  REFUSED(MAIN(RET(BIN("add", "{'op':'concat','parts':[]}", I64(1)))), B0 ".expr.a",
          "needs i64, got str");
}

static void len_on_str_or_json(void **state) {
  (void)state;
  ok(MAIN(RET(UN("len", STR("abc")))));
  ok(MAIN(RET(UN("len", INPUT))));
  REFUSED(MAIN(RET(UN("len", I64(3)))), B0 ".expr.a", "'len' needs str or json, got i64");
  REFUSED(MAIN(RET(UN("len", FNREF("main")))), B0 ".expr.a", "'len' needs str or json");
}

static void get_from_json(void **state) {
  (void)state;
  ok(MAIN(LET("a", "{'op':'get_i64','from':" INPUT ",'path':['a',0]}") ","
          LET("s", "{'op':'get_str','from':" INPUT ",'path':['s']}") ","
          LET("j", "{'op':'get_json','from':" INPUT ",'path':[]}") ","
          RET(BIN("add", VAR("a"), BIN("add", UN("len", VAR("s")), UN("len", VAR("j")))))));
  REFUSED(MAIN(RET("{'op':'get_i64','from':" STR("x") ",'path':['a']}")), B0 ".expr.from",
          "'get_i64' from needs json, got str");
  REFUSED(MAIN(RET("{'op':'get_json','from':" I64(1) ",'path':[]}")), B0 ".expr.from",
          "needs json, got i64");
  /* each get gives its own type */
  REFUSED(MAIN(RET(BIN("add", "{'op':'get_str','from':" INPUT ",'path':['a']}", I64(1)))),
          B0 ".expr.a", "'add' needs i64, got str");
  REFUSED(MAIN(RET(BIN("add", "{'op':'get_json','from':" INPUT ",'path':['a']}", I64(1)))),
          B0 ".expr.a", "'add' needs i64, got json");
}

static void json_template_holes(void **state) {
  (void)state;
  ok(MAIN(RET("{'op':'json','value':{'a':[1," STR("s") "],'b':{'c':" INPUT "},'n':" I64(2) "}}")));
  REFUSED(MAIN(RET("{'op':'json','value':{'a':" FNREF("main") "}}")), B0 ".expr.value.a",
          "a 'json' template value must be i64, str or json, not a function");
  REFUSED(MAIN(RET("{'op':'json','value':{'a':[1," SLEEP "]}}")), B0 ".expr.value.a[1]",
          "gives no value");
  REFUSED(MAIN(RET("{'op':'json','value':{'a':[1,{'b':" VAR("zz") "}]}}")),
          B0 ".expr.value.a[1].b", "unknown variable 'zz'");
  /* the result is json */
  REFUSED(MAIN(RET(BIN("add", "{'op':'json','value':1}", I64(1)))), B0 ".expr.a",
          "needs i64, got json");
}

/* A template may be wide: many holes side by side are not deep nesting. */
static void json_template_wide(void **state) {
  (void)state;
  char *q = malloc(300 * 40 + 256);
  assert_non_null(q);
  strcpy(q, "{'version':1,'functions':[{'name':'main','params':[],'body':[{'op':'return',"
            "'expr':{'op':'json','value':[");
  for (int i = 0; i < 300; i++)
    sprintf(q + strlen(q), "%s{'op':'lit_i64','value':%d}", i ? "," : "", i);
  strcat(q, "]}}]}]}");
  int rc;
  wfp_program *p = irt_load(q, NULL, &rc);
  if (rc != WFP_OK)
    irt_print_diags(p);
  assert_int_equal(rc, WFP_OK);
  wfp_program_free(p);
  free(q);
}

static void return_type_agreement(void **state) {
  (void)state;
  REFUSED(MAIN(IF(I64(1), RET(I64(1))) "," RET(STR("x"))), B1 ".expr",
          "this returns str, but 'main' returns i64 elsewhere");
  REFUSED(PROG(FUNC("f", "", RET(STR("x"))) "," FUNC("main", "", RET(BIN("add", CALL("f", ""), I64(1))))),
          "$.functions[1].body[0].expr.a", "'add' needs i64, got str");
  REFUSED(MAIN(RET(SLEEP)), B0 ".expr", "gives no value ('return' needs one)");
}

static void call_argument_types(void **state) {
  (void)state;
#define G FUNC("g", "'a',{'name':'s','type':'str'}", RET(VAR("a")))
  ok(PROG(G "," FUNC("main", "", RET(CALL("g", I64(1) "," STR("x"))))));
  REFUSED(PROG(G "," FUNC("main", "", RET(CALL("g", STR("x") "," STR("x"))))),
          "$.functions[1].body[0].expr.args[0]",
          "type mismatch: argument 'a' of 'g' needs i64, got str");
  REFUSED(PROG(G "," FUNC("main", "", RET(CALL("g", I64(1) "," I64(2))))),
          "$.functions[1].body[0].expr.args[1]", "argument 's' of 'g' needs str, got i64");
  REFUSED(MAIN(RET(CALL("nope", ""))), B0 ".expr", "unknown function 'nope'");
  /* a function that gives no value, used for one */
  REFUSED(PROG(FUNC("v", "", EXPR(SLEEP)) "," FUNC("main", "", RET(BIN("add", CALL("v", ""), I64(1))))),
          "$.functions[1].body[0].expr.a", NULL);
  /* a call by stable id */
  ok(PROG("{'id':'abc123','name':'g','params':['a'],'body':[" RET(VAR("a")) "]},"
          FUNC("main", "", RET(CALL("abc123", I64(1))))));
#undef G
}

static void fn_types_through_call_ref(void **state) {
  (void)state;
#define G FUNC("g", "'a',{'name':'s','type':'str'}", RET(VAR("a")))
  ok(PROG(G "," FUNC("main", "", LET("f", FNREF("g")) "," RET(CALL_REF(VAR("f"), I64(1) "," STR("x"))))));
  /* argument types and the return type travel with the fn value */
  REFUSED(PROG(G "," FUNC("main", "", LET("f", FNREF("g")) "," RET(CALL_REF(VAR("f"), I64(1) "," I64(2))))),
          "$.functions[1].body[1].expr.fn",
          "type mismatch: 'call_ref' needs fn(i64, i64) -> (unknown), got fn(i64, str) -> i64");
  REFUSED(PROG(G "," FUNC("main", "", LET("f", FNREF("g")) "," RET(UN("len", CALL_REF(VAR("f"), I64(1) "," STR("x")))))),
          "$.functions[1].body[1].expr.a", "'len' needs str or json, got i64");
  /* a fn parameter, applied */
  ok(PROG(FUNC("apply", "{'name':'f','type':'fn'},'x'", RET(CALL_REF(VAR("f"), VAR("x")))) ","
          FUNC("inc", "'n'", RET(BIN("add", VAR("n"), I64(1)))) ","
          FUNC("main", "", RET(CALL("apply", FNREF("inc") "," I64(41))))));
  REFUSED(PROG(FUNC("apply", "{'name':'f','type':'fn'},'x'", RET(CALL_REF(VAR("f"), VAR("x")))) ","
               FUNC("main", "", RET(CALL("apply", I64(3) "," I64(41))))),
          "$.functions[1].body[0].expr.args[0]", "argument 'f' of 'apply' needs fn(i64) -> (unknown), got i64");
  /* a lambda's type */
  ok(MAIN(LET("f", LAMBDA("'x'", RET(BIN("mul", VAR("x"), I64(2))))) ","
          RET(CALL_REF(VAR("f"), I64(21)))));
  REFUSED(MAIN(RET(CALL_REF(I64(1), ""))), B0 ".expr.fn",
          "type mismatch: 'call_ref' needs fn() -> (unknown), got i64");
#undef G
}

static void inference_through_recursion(void **state) {
  (void)state;
#define FACT(base)                                                             \
  FUNC("fact", "'n'",                                                          \
       IF(BIN("le", VAR("n"), I64(1)), RET(base)) ","                          \
       RET(BIN("mul", VAR("n"), CALL("fact", BIN("sub", VAR("n"), I64(1))))))
  /* the recursive call's type is fact's return type, fixed by the base case */
  ok(PROG(FACT(I64(1)) "," FUNC("main", "", RET(CALL("fact", I64(5))))));
  /* recursion through a str result, used as a str by the caller */
  ok(PROG(FUNC("rep", "'n'",
               IF(BIN("le", VAR("n"), I64(0)), RET(STR(""))) ","
               RET("{'op':'concat','parts':[" STR("x") "," CALL("rep", BIN("sub", VAR("n"), I64(1))) "]}")) ","
          FUNC("main", "", RET(UN("len", CALL("rep", I64(3)))))));
  /* a base case of another type than the recursive one */
  REFUSED(PROG(FACT(STR("one")) "," FUNC("main", "", RET(CALL("fact", I64(5))))),
          "$.functions[0].body[1].expr.b", "'mul' needs i64, got str");
  /* mutual recursion, typed from the far end */
  ok(PROG(FUNC("even", "'n'", IF(BIN("eq", VAR("n"), I64(0)), RET(I64(1))) ","
                               RET(CALL("odd", BIN("sub", VAR("n"), I64(1))))) ","
          FUNC("odd", "'n'", IF(BIN("eq", VAR("n"), I64(0)), RET(I64(0))) ","
                              RET(CALL("even", BIN("sub", VAR("n"), I64(1))))) ","
          FUNC("main", "", RET(CALL("even", I64(10))))));
  /* nothing fixes the type: the default (see defaults_for_what_nothing_fixes) */
  ok(PROG(FUNC("loop", "", RET(CALL("loop", ""))) "," FUNC("main", "", RET(CALL("loop", "")))));
#undef FACT
}

/* The kind of function name's result type in a loaded program. */
static wfp_tkind ret_kind(const wfp_program *p, const char *name) {
  for (int i = 0; i < p->nfuncs; i++)
    if (p->funcs[i]->name && strcmp(p->funcs[i]->name, name) == 0)
      return wfp__type_find(p->funcs[i]->ret)->kind;
  fail_msg("no function %s", name);
  return WFP_T_ERROR;
}

/* The type of parameter i of function name. */
static wfp_type *param_type(const wfp_program *p, const char *name, int i) {
  for (int k = 0; k < p->nfuncs; k++)
    if (p->funcs[k]->name && strcmp(p->funcs[k]->name, name) == 0)
      return wfp__type_find(p->funcs[k]->params[i]->type);
  fail_msg("no function %s", name);
  return NULL;
}

/* What nothing in the program determines gets a default, never a refusal
** (docs/ir.md, "Types"): i64; str for a value only 'len' takes; an open
** signature for a fn value nothing calls. Run time checks the rest. */
static void defaults_for_what_nothing_fixes(void **state) {
  (void)state;
#define FNP(n) "{'name':'" n "','type':'fn'}"
  /* main() { return main() }: recursion is allowed, its result is i64 */
  wfp_program *p = LOAD_OK(MAIN(RET(CALL("main", ""))));
  assert_int_equal(ret_kind(p, "main"), WFP_T_I64);
  wfp_program_free(p);
  /* a fn parameter of a function nothing calls, its call_ref result used */
  p = LOAD_OK(PROG(FUNC("apply", FNP("f") ",'x'", RET(CALL_REF(VAR("f"), VAR("x"))))));
  assert_int_equal(ret_kind(p, "apply"), WFP_T_I64);
  wfp_type *f = param_type(p, "apply", 0);
  assert_int_equal(f->kind, WFP_T_FN);
  assert_int_equal(f->nparams, 1);
  assert_int_equal(wfp__type_find(f->params[0])->kind, WFP_T_I64);
  assert_int_equal(wfp__type_find(f->ret)->kind, WFP_T_I64);
  wfp_program_free(p);
  /* only len takes it: str */
  p = LOAD_OK(PROG(FUNC("lenOf", FNP("f"), RET(UN("len", CALL_REF(VAR("f"), ""))))));
  assert_int_equal(wfp__type_find(param_type(p, "lenOf", 0)->ret)->kind, WFP_T_STR);
  wfp_program_free(p);
  /* an argument of unknown type: i64 too */
  p = LOAD_OK(PROG(FUNC("g", FNP("f") "," FNP("h"),
                        RET(CALL_REF(VAR("f"), CALL_REF(VAR("h"), ""))))));
  f = param_type(p, "g", 0);
  assert_int_equal(wfp__type_find(f->params[0])->kind, WFP_T_I64);
  assert_int_equal(wfp__type_find(param_type(p, "g", 1)->ret)->kind, WFP_T_I64);
  wfp_program_free(p);
  /* printed or sent: i64 */
  ok(PROG(FUNC("show", FNP("f"),
               RET("{'op':'concat','parts':[" CALL_REF(VAR("f"), "") "]}"))));
  /* a fn value nothing calls: returned as it is, any signature */
  p = LOAD_OK(PROG(FUNC("keep", FNP("f"), EXPR(SLEEP) "," RET(VAR("f")))));
  assert_int_equal(ret_kind(p, "keep"), WFP_T_FN);
  wfp_program_free(p);
  /* what is known still decides: a caller fixes the signature */
  p = LOAD_OK(PROG(FUNC("apply", FNP("f") ",'x'", RET(CALL_REF(VAR("f"), VAR("x")))) ","
                   FUNC("up", "'s'", RET("{'op':'concat','parts':[" VAR("s") "," STR("!") "]}")) ","
                   FUNC("main", "", RET(CALL("apply", FNREF("up") "," I64(1))))));
  assert_int_equal(ret_kind(p, "apply"), WFP_T_STR);
  wfp_program_free(p);
  /* a default never hides a fault: fn values are not compared or measured */
  REFUSED(PROG(FUNC("same", FNP("f") "," FNP("g"), RET(BIN("eq", VAR("f"), VAR("g"))))),
          "$.functions[0].body[0].expr", "type mismatch: 'eq' compares i64 or str values, got fn");
  REFUSED(PROG(FUNC("size", FNP("f"), RET(UN("len", VAR("f"))))),
          "$.functions[0].body[0].expr.a", "type mismatch: 'len' needs str or json, got fn");
#undef FNP
}

/* ---- break and continue ---- */

static void break_continue_placement(void **state) {
  (void)state;
  REFUSED(MAIN(BREAK), B0, "'break' outside a loop");
  REFUSED(MAIN(CONTINUE), B0, "'continue' outside a loop");
  REFUSED(MAIN(IF(I64(1), BREAK)), B0 ".then[0]", "'break' outside a loop");
  ok(MAIN(WHILE(I64(1), IF_ELSE(I64(1), CONTINUE, BREAK))));
  ok(MAIN(WHILE(I64(1), WHILE(I64(1), BREAK) "," BREAK)));
  /* after a loop, the loop is over */
  REFUSED(MAIN(WHILE(I64(0), "") "," BREAK), B1, "'break' outside a loop");
  /* a lambda inside a loop is not in the loop */
  REFUSED(MAIN(WHILE(I64(1), LET("f", LAMBDA("", BREAK)) "," BREAK)),
          B0 ".body[0].expr.body[0]", "'break' outside a loop");
  REFUSED(MAIN(WHILE(I64(1), LET("f", LAMBDA("", CONTINUE)) "," BREAK)),
          B0 ".body[0].expr.body[0]", "'continue' outside a loop");
  /* nor is a function called from a loop */
  REFUSED(PROG(FUNC("g", "", BREAK) "," FUNC("main", "", WHILE(I64(1), EXPR(CALL("g", ""))))),
          "$.functions[0].body[0]", "'break' outside a loop");
  /* a loop inside the lambda is */
  ok(MAIN(WHILE(I64(1), LET("f", LAMBDA("", WHILE(I64(1), BREAK))) "," BREAK)));
}

/* ---- resources and methods ---- */

#define RES(methods, funcs)                                                    \
  "{'version':1,'resources':[{'name':'Counter','properties':[{'name':'value',"  \
  "'type':'i64'},{'name':'label','type':'str'}],'methods':['get'" methods      \
  "]}],'functions':[" funcs "]}"
#define METHOD(name, body)                                                     \
  "{'name':'" name "','resource':'Counter','params':[],'body':[" body "]}"
#define SELF_GET(p) "{'op':'self_get','property':'" p "'}"
#define SELF_SET(p, v) "{'op':'self_set','property':'" p "','value':" v "}"

static void methods_and_self(void **state) {
  (void)state;
  ok(RES("", METHOD("get", EXPR(SELF_SET("label", STR("x"))) "," RET(SELF_GET("value")))));
  /* self_get / self_set only in methods */
  REFUSED(RES("", METHOD("get", RET(I64(1))) "," FUNC("main", "", RET(SELF_GET("value")))),
          "$.functions[1].body[0].expr",
          "'self_get' outside a method (only functions with a 'resource' have self)");
  REFUSED(RES("", METHOD("get", RET(I64(1))) "," FUNC("main", "", EXPR(SELF_SET("value", I64(1))))),
          "$.functions[1].body[0].expr", "'self_set' outside a method");
  /* unknown property */
  REFUSED(RES("", METHOD("get", RET(SELF_GET("nope")))), "$.functions[0].body[0].expr",
          "resource 'Counter' has no property 'nope'");
  REFUSED(RES("", METHOD("get", EXPR(SELF_SET("nope", I64(1))))), "$.functions[0].body[0].expr",
          "resource 'Counter' has no property 'nope'");
  /* property types */
  REFUSED(RES("", METHOD("get", EXPR(SELF_SET("value", STR("x"))))),
          "$.functions[0].body[0].expr.value", "property 'value' needs i64, got str");
  REFUSED(RES("", METHOD("get", RET(BIN("add", SELF_GET("label"), I64(1))))),
          "$.functions[0].body[0].expr.a", "'add' needs i64, got str");
  /* the method list and the functions agree */
  REFUSED(RES(",'ghost'", METHOD("get", RET(I64(1)))), "$.resources[0].methods[1]",
          "lists method 'ghost', but there is no function 'ghost'");
  REFUSED(RES("", METHOD("get", RET(I64(1))) "," METHOD("extra", RET(I64(1)))),
          "$.functions[1].resource", "but 'Counter' does not list it in its methods");
  REFUSED(RES(",'plain'", METHOD("get", RET(I64(1))) "," FUNC("plain", "", RET(I64(1)))),
          "$.resources[0].methods[1]", "function 'plain' is not a method of 'Counter'");
  REFUSED(RES("", METHOD("get", RET(I64(1))) ","
                  "{'name':'x','resource':'Nope','params':[],'body':[]}"),
          "$.functions[1].resource", "unknown resource 'Nope'");
  /* methods are called from methods of their resource only */
  REFUSED(RES("", METHOD("get", RET(I64(1))) "," FUNC("main", "", RET(CALL("get", "")))),
          "$.functions[1].body[0].expr",
          "'get' is a method of 'Counter': only methods of 'Counter' can call it");
  ok(RES(",'twice'", METHOD("get", RET(I64(1))) "," METHOD("twice", RET(BIN("mul", CALL("get", ""), I64(2))))));
}

/* ---- arity ---- */

static void arity(void **state) {
  (void)state;
#define G FUNC("g", "'a','b'", RET(BIN("add", VAR("a"), VAR("b"))))
  REFUSED(PROG(G "," FUNC("main", "", RET(CALL("g", I64(1))))), "$.functions[1].body[0].expr",
          "wrong argument count: 'g' takes 2, got 1");
  REFUSED(PROG(G "," FUNC("main", "", RET(CALL("g", I64(1) "," I64(2) "," I64(3))))),
          "$.functions[1].body[0].expr", "wrong argument count: 'g' takes 2, got 3");
  REFUSED(PROG(G "," FUNC("main", "", LET("f", FNREF("g")) "," RET(CALL_REF(VAR("f"), I64(1))))),
          "$.functions[1].body[1].expr", "wrong argument count: the function takes 2, got 1");
  REFUSED(MAIN(LET("f", LAMBDA("", RET(I64(1)))) "," RET(CALL_REF(VAR("f"), I64(1)))), B1 ".expr",
          "wrong argument count: the function takes 0, got 1");
#undef G
}

/* ---- captures ---- */

static void set_of_captured_variable_refused(void **state) {
  (void)state;
  REFUSED(PROG(FUNC("main", "", LET("base", I64(1)) "," RET(CALL("inner", ""))) ","
               NESTED("inner", "main", "", SET("base", I64(2)) "," RET(VAR("base")))),
          "$.functions[1].body[0]",
          "cannot set 'base': it is captured from 'main' (captures are by value");
  REFUSED(MAIN(LET("base", I64(1)) ","
               LET("f", LAMBDA("", SET("base", I64(2)) "," RET(VAR("base")))) ","
               RET(CALL_REF(VAR("f"), ""))),
          B1 ".expr.body[0]", "cannot set 'base': it is captured from 'main'");
  /* its own variable of the same name it may set */
  ok(MAIN(LET("base", I64(1)) "," LET("f", LAMBDA("", LET("base", I64(5)) "," SET("base", I64(2)) "," RET(VAR("base")))) ","
          RET(CALL_REF(VAR("f"), ""))));
}

static void nested_reads_variable_declared_after_call(void **state) {
  (void)state;
  /* main has something in scope at the call: refused */
  REFUSED(PROG(FUNC("main", "'q'", LET("r", CALL("inner", "")) "," LET("base", I64(1)) "," RET(VAR("r"))) ","
               NESTED("inner", "main", "", RET(VAR("base")))),
          "$.functions[0].body[0].expr",
          "'inner' reads 'base', which is not declared yet here");
  REFUSED(PROG(FUNC("main", "", LET("z", I64(0)) "," LET("r", CALL("inner", "")) ","
                                LET("base", I64(1)) "," RET(VAR("r"))) ","
               NESTED("inner", "main", "", RET(VAR("base")))),
          "$.functions[0].body[1].expr", "'inner' reads 'base', which is not declared yet here");
  /* the same when nothing at all is in scope at the call */
  REFUSED(PROG(FUNC("main", "", LET("r", CALL("inner", "")) "," LET("base", I64(1)) "," RET(VAR("r"))) ","
               NESTED("inner", "main", "", RET(VAR("base")))),
          "$.functions[0].body[0].expr", "'inner' reads 'base', which is not declared yet here");
  /* declared before the call: fine */
  ok(PROG(FUNC("main", "", LET("base", I64(1)) "," RET(CALL("inner", ""))) ","
          NESTED("inner", "main", "", RET(VAR("base")))));
}

static void nested_scope_rules(void **state) {
  (void)state;
  /* a nested function reads top-level variables of its parent, not those of
  ** an inner block */
  REFUSED(PROG(FUNC("main", "", IF(I64(1), LET("base", I64(1)) "," RET(CALL("inner", ""))) "," RET(I64(0))) ","
               NESTED("inner", "main", "", RET(VAR("base")))),
          "$.functions[1].body[0].expr", "unknown variable 'base'");
  /* called from outside its parent */
  REFUSED(PROG(FUNC("main", "", LET("base", I64(1)) "," RET(CALL("inner", ""))) ","
               NESTED("inner", "main", "", RET(VAR("base"))) ","
               FUNC("other", "", RET(CALL("inner", "")))),
          "$.functions[2].body[0].expr", "function 'inner' is nested in 'main' and not visible here");
  REFUSED(PROG(FUNC("main", "", RET(I64(0))) "," NESTED("inner", "main", "", RET(I64(1))) ","
               FUNC("other", "", LET("f", FNREF("inner")) "," RET(CALL_REF(VAR("f"), "")))),
          "$.functions[2].body[0].expr", "not visible here");
  /* its parent's descendants see it */
  ok(PROG(FUNC("main", "", LET("k", I64(1)) "," RET(CALL("a", ""))) ","
          NESTED("a", "main", "", RET(CALL("b", ""))) ","
          NESTED("b", "main", "", RET(VAR("k")))));
  /* parents that do not exist or loop */
  REFUSED(PROG(NESTED("inner", "nope", "", RET(I64(1)))), "$.functions[0].parent",
          "unknown parent function 'nope'");
  REFUSED(PROG(NESTED("a", "b", "", RET(I64(1))) "," NESTED("b", "a", "", RET(I64(1)))),
          "$.functions[0].parent", "nesting cycle");
}

/* ---- names ---- */

static void duplicate_names(void **state) {
  (void)state;
  REFUSED(PROG(FUNC("f", "", RET_VOID) "," FUNC("f", "", RET_VOID)), "$.functions[1].name",
          "duplicate function name 'f' (first at $.functions[0])");
  REFUSED(PROG("{'id':'same','name':'f','params':[],'body':[]},"
               "{'id':'same','name':'g','params':[],'body':[]}"),
          "$.functions[1].id", "duplicate id 'same'");
}

/* ---- the entry ---- */

static void entry_rules(void **state) {
  (void)state;
  wfp_ir_opts o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  /* a named entry must exist */
  o.entry = "start";
  irt_refused_at(MAIN(RET_VOID), &o, WFP_EPROGRAM, "$.functions",
                 "entry function 'start' not found", __FILE__, __LINE__);
  /* and be top level */
  o.entry = "inner";
  irt_refused_at(PROG(FUNC("main", "", RET_VOID) "," NESTED("inner", "main", "", RET_VOID)), &o,
                 WFP_EPROGRAM, "$.functions[1]", "cannot be nested", __FILE__, __LINE__);
  o.entry = "helper";
  wfp_program *p = irt_ok_at(PROG(FUNC("helper", "", RET_VOID)), &o, __FILE__, __LINE__);
  assert_string_equal(wfp_program_entry(p), "helper");
  assert_true(wfp_program_has_entry(p));
  wfp_program_free(p);
  /* without one, "main", which a program need not have */
  p = LOAD_OK(PROG(FUNC("helper", "", RET_VOID)));
  assert_string_equal(wfp_program_entry(p), "main");
  assert_false(wfp_program_has_entry(p));
  wfp_program_free(p);
  p = LOAD_OK(MAIN(RET_VOID));
  assert_true(wfp_program_has_entry(p));
  wfp_program_free(p);
  /* the program's own entry field: it must exist too, and --entry wins */
  REFUSED("{'version':1,'entry':'nope','functions':[" FUNC("main", "", RET_VOID) "]}",
          "$.functions", "entry function 'nope' not found");
  p = LOAD_OK("{'version':1,'entry':'helper','functions':[" FUNC("helper", "", RET_VOID) "]}");
  assert_string_equal(wfp_program_entry(p), "helper");
  assert_true(wfp_program_has_entry(p));
  wfp_program_free(p);
  o.entry = "main";
  p = irt_ok_at("{'version':1,'entry':'helper','functions':[" FUNC("helper", "", RET_VOID) ","
                FUNC("main", "", RET_VOID) "]}",
                &o, __FILE__, __LINE__);
  assert_string_equal(wfp_program_entry(p), "main");
  wfp_program_free(p);
  /* naming main explicitly makes it required */
  o.entry = "main";
  irt_refused_at(PROG(FUNC("helper", "", RET_VOID)), &o, WFP_EPROGRAM, "$.functions",
                 "entry function 'main' not found", __FILE__, __LINE__);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(let_in_loop_body_not_visible_after),
      cmocka_unit_test(let_in_branch_not_visible_after),
      cmocka_unit_test(shadowing),
      cmocka_unit_test(set_rules),
      cmocka_unit_test(arithmetic_needs_i64),
      cmocka_unit_test(eq_ne_on_i64_or_str),
      cmocka_unit_test(concat_parts),
      cmocka_unit_test(len_on_str_or_json),
      cmocka_unit_test(get_from_json),
      cmocka_unit_test(json_template_holes),
      cmocka_unit_test(json_template_wide),
      cmocka_unit_test(return_type_agreement),
      cmocka_unit_test(call_argument_types),
      cmocka_unit_test(fn_types_through_call_ref),
      cmocka_unit_test(inference_through_recursion),
      cmocka_unit_test(defaults_for_what_nothing_fixes),
      cmocka_unit_test(break_continue_placement),
      cmocka_unit_test(methods_and_self),
      cmocka_unit_test(arity),
      cmocka_unit_test(set_of_captured_variable_refused),
      cmocka_unit_test(nested_reads_variable_declared_after_call),
      cmocka_unit_test(nested_scope_rules),
      cmocka_unit_test(duplicate_names),
      cmocka_unit_test(entry_rules),
  };
  return cmocka_run_group_tests_name("ir.check", tests, NULL, NULL);
}
