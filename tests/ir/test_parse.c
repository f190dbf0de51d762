/*
** test_parse.c: the front end's reading of program text (ir/parse.c through
** wfp/ir.h): JSON syntax errors, ops, fields, lit_i64, the diagnostic bound
** and the load API's misuse. Names, scopes and types are test_check.c's.
*/
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir_ast.h"
#include "irt.h"

/* ---- malformed JSON: one diagnostic, with line and column ---- */

typedef struct syntax_case {
  const char *text; /* exact bytes (real JSON quotes) */
  int line, col;
  const char *msg;
} syntax_case;

static void expect_syntax(const syntax_case *c) {
  int rc;
  wfp_program *p = irt_load_raw(c->text, strlen(c->text), NULL, &rc);
  bool ok = rc == WFP_ESYNTAX && wfp_program_diag_count(p) == 1;
  const wfp_diag *d = wfp_program_diag(p, 0);
  ok = ok && d && d->code == WFP_ESYNTAX && d->line == c->line &&
       d->col == c->col && strstr(d->msg, c->msg) &&
       strcmp(d->file, "t.json") == 0;
  if (!ok) {
    print_error("input:\n%s\nexpected ESYNTAX at %d:%d '%s', got %s\n", c->text,
                c->line, c->col, c->msg, wfp_err_name(rc));
    irt_print_diags(p);
    wfp_program_free(p);
    fail();
  }
  /* the formatted form people see: FILE:LINE:COL: error: ... */
  char want[64], got[512];
  snprintf(want, sizeof want, "t.json:%d:%d: error: ", c->line, c->col);
  wfp_diag_format(d, got, sizeof got);
  assert_true(strncmp(got, want, strlen(want)) == 0);
  /* nothing of a program that is not JSON is available */
  assert_string_equal(wfp_program_hash(p), "");
  assert_int_equal(wfp_program_function_count(p), 0);
  wfp_program_free(p);
}

static void syntax_line_and_column(void **state) {
  (void)state;
  static const syntax_case cases[] = {
      /* multi-line: a '}' where the body array needs a value */
      {"{\n"
       "  \"version\": 1,\n"
       "  \"functions\": [\n"
       "    {\"name\": \"main\", \"body\": [}\n"
       "  ]\n"
       "}\n",
       4, 31, "'}'"},
      /* columns count characters: 2-, 3- and 4-byte UTF-8 before the fault */
      {"{\"version\": 1,\n"
       " \"x\": \"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\" 1}",
       2, 13, "'1'"},
      /* same, on the first line */
      {"{\"\xC3\xA9\": 1 2}", 1, 9, "'2'"},
      /* a trailing comma */
      {"{\"version\": 1,}", 1, 15, "'}'"},
      /* a misspelt literal, after CRLF line ends */
      {"{\r\n  \"a\": tru\r\n}", 2, 8, "'t'"},
      /* a byte that starts no JSON token */
      {"{\"a\": \xFF}", 1, 7, "0xff"},
      /* something after the value (only white space may follow) */
      {"{\"version\": 1, \"functions\": []}\n\n  x", 3, 3,
       "after the"},
      {"nope", 1, 1, "'n'"},
      {"", 1, 1, "end of input"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    expect_syntax(&cases[i]);
}

/* Input that ends too early: the fault is the end, after the last byte. */
static void syntax_truncated_input(void **state) {
  (void)state;
  static const char *const texts[] = {"{\"version\": 1,", "   ", "{\"a\": [1, 2"};
  static const int cols[] = {15, 4, 12};
  for (int i = 0; i < 3; i++) {
    int rc;
    wfp_program *p = irt_load_raw(texts[i], strlen(texts[i]), NULL, &rc);
    assert_int_equal(rc, WFP_ESYNTAX);
    const wfp_diag *d = wfp_program_diag(p, 0);
    assert_non_null(d);
    assert_int_equal(d->line, 1);
    assert_int_equal(d->col, cols[i]);
    assert_non_null(strstr(d->msg, "end of input"));
    wfp_program_free(p);
  }
}

/* Where an object key should start: the fault is that byte, not the next. */
static void syntax_key_not_a_string(void **state) {
  (void)state;
  int rc;
  const char *t = "{\"a\": 1,\n  2}";
  wfp_program *p = irt_load_raw(t, strlen(t), NULL, &rc);
  assert_int_equal(rc, WFP_ESYNTAX);
  const wfp_diag *d = wfp_program_diag(p, 0);
  assert_int_equal(d->line, 2);
  assert_int_equal(d->col, 3);
  assert_non_null(strstr(d->msg, "'2'"));
  wfp_program_free(p);
}

/* Text that is not JSON (RFC 8259) but that cJSON alone would accept:
** numbers with leading zeros or a bare '.', control bytes as white space,
** raw control characters in strings. Such numbers would reach the
** canonical IR as written, and it would not be JSON either. */
static void syntax_not_json_accepted(void **state) {
  (void)state;
  static const char *const texts[] = {
      MAIN(RET("{'op':'lit_json','value':[01]}")),
      MAIN(RET("{'op':'lit_json','value':[1.]}")),
      "{\x01'version':1,'functions':[]}",
      MAIN(RET(STR("a\tb"))),
  };
  static const char *const what[] = {
      "a number with a leading zero", "a number ending in '.'",
      "a control byte as white space", "a raw TAB inside a string",
  };
  for (int i = 0; i < 4; i++) {
    int rc;
    wfp_program *p = irt_load(texts[i], NULL, &rc);
    if (rc != WFP_ESYNTAX) {
      irt_print_diags(p);
      fail_msg("not JSON, but %s: %s", wfp_err_name(rc), what[i]);
    }
    wfp_program_free(p);
  }
}

static void bom_is_skipped(void **state) {
  (void)state;
  char *t = irt_q(MAIN(RET(I64(1))));
  size_t n = strlen(t);
  char *b = malloc(n + 3);
  assert_non_null(b);
  memcpy(b, "\xEF\xBB\xBF", 3);
  memcpy(b + 3, t, n);
  int rc;
  wfp_program *p = irt_load_raw(b, n + 3, NULL, &rc);
  assert_int_equal(rc, WFP_OK);
  wfp_program_free(p);
  free(b);
  free(t);
}

/* ---- ops ---- */

static void unknown_op_with_suggestion(void **state) {
  (void)state;
  REFUSED(MAIN("{'op':'retrun','expr':" I64(1) "}"), "$.functions[0].body[0].op",
          "unknown op 'retrun' (did you mean 'return'?)");
  REFUSED(MAIN(RET(BIN("ad", I64(1), I64(2)))), "$.functions[0].body[0].expr.op",
          "unknown op 'ad' (did you mean 'add'?)");
  REFUSED(MAIN(RET("{'op':'get_i46','from':" INPUT ",'path':[]}")),
          "$.functions[0].body[0].expr.op", "did you mean 'get_i64'?");
  REFUSED(MAIN(RET("{'op':'lamda','params':[],'body':[]}")),
          "$.functions[0].body[0].expr.op", "did you mean 'lambda'?");
  /* nothing close: no suggestion */
  int rc;
  wfp_program *p = irt_load(MAIN(RET("{'op':'frobnicate'}")), NULL, &rc);
  assert_int_equal(rc, WFP_EPROGRAM);
  const wfp_diag *d = irt_find_diag(p, "$.functions[0].body[0].expr.op", "unknown op 'frobnicate'");
  assert_non_null(d);
  assert_null(strstr(d->msg, "did you mean"));
  wfp_program_free(p);
  /* a statement where an expression goes, and the reverse */
  REFUSED(MAIN(RET("{'op':'break'}")), "$.functions[0].body[0].expr.op",
          "'break' is a statement, not an expression");
  REFUSED(MAIN(BIN("add", I64(1), I64(2))), "$.functions[0].body[0].op",
          "'add' is an expression, not a statement");
}

/* ---- fields ---- */

static void missing_fields(void **state) {
  (void)state;
  REFUSED(MAIN("{'op':'let','expr':" I64(1) "}"), "$.functions[0].body[0]",
          "missing field 'name' in 'let'");
  REFUSED(MAIN("{'op':'let','name':'x'}"), "$.functions[0].body[0]",
          "missing field 'expr' in 'let'");
  REFUSED(MAIN("{'op':'if','cond':" I64(1) "}"), "$.functions[0].body[0]",
          "missing field 'then' in 'if'");
  REFUSED(MAIN("{'op':'while','body':[]}"), "$.functions[0].body[0]",
          "missing field 'cond' in 'while'");
  REFUSED(MAIN("{'op':'trap'}"), "$.functions[0].body[0]",
          "missing field 'message' in 'trap'");
  REFUSED(MAIN(RET("{'op':'add','a':" I64(1) "}")), "$.functions[0].body[0].expr",
          "missing field 'b' in 'add'");
  REFUSED(MAIN(RET("{'op':'lit_i64'}")), "$.functions[0].body[0].expr",
          "missing field 'value' in 'lit_i64'");
  REFUSED(MAIN(RET("{'value':1}")), "$.functions[0].body[0].expr",
          "missing field 'op'");
  REFUSED(MAIN(RET("{'op':'get_str','from':" INPUT "}")),
          "$.functions[0].body[0].expr", "missing field 'path' in 'get_str'");
  REFUSED(MAIN(RET("{'op':'call','args':[]}")), "$.functions[0].body[0].expr",
          "missing field 'fn' in 'call'");
  REFUSED(PROG("{'name':'main','params':[]}"), "$.functions[0]",
          "missing field 'body' in a function");
  REFUSED(PROG("{'params':[],'body':[]}"), "$.functions[0]",
          "missing field 'name' in a function");
  REFUSED("{'version':1}", "$", "missing field 'functions'");
  REFUSED("{'functions':[]}", "$", "missing field 'version'");
}

static void mistyped_fields(void **state) {
  (void)state;
  REFUSED(MAIN("{'op':'let','name':5,'expr':" I64(1) "}"),
          "$.functions[0].body[0].name", "field 'name' of 'let' must be a string, not a number");
  REFUSED(MAIN("{'op':'if','cond':" I64(1) ",'then':{}}"), "$.functions[0].body[0].then",
          "field 'then' of 'if' must be an array, not an object");
  REFUSED(MAIN(RET("{'op':'concat','parts':'x'}")), "$.functions[0].body[0].expr.parts",
          "must be an array, not a string");
  REFUSED(MAIN(RET("{'op':'lit_str','value':3}")), "$.functions[0].body[0].expr.value",
          "field 'value' of 'lit_str' must be a string, not a number");
  REFUSED(MAIN(RET("{'op':'get_i64','from':" INPUT ",'path':[true]}")),
          "$.functions[0].body[0].expr.path[0]", "not a boolean");
  REFUSED(MAIN(RET("{'op':'get_i64','from':" INPUT ",'path':[-1]}")),
          "$.functions[0].body[0].expr.path[0]", "path index must be an integer");
  REFUSED(MAIN(RET("{'op':5}")), "$.functions[0].body[0].expr.op",
          "field 'op' must be a string, not a number");
  REFUSED(MAIN(RET("5")), "$.functions[0].body[0].expr",
          "expected an expression (an object with an 'op'), got a number");
  REFUSED(MAIN("[]"), "$.functions[0].body[0]", "expected a statement");
  REFUSED("{'version':1,'functions':{}}", "$.functions",
          "field 'functions' of the program must be an array, not an object");
  REFUSED(PROG("{'name':'main','params':'x','body':[]}"), "$.functions[0].params",
          "must be an array, not a string");
  REFUSED(PROG("{'name':'main','params':[{'name':'a','type':'float'}],'body':[]}"),
          "$.functions[0].params[0].type", "unknown type 'float'");
  REFUSED(PROG("{'name':'main','params':[7],'body':[]}"), "$.functions[0].params[0]",
          "a parameter is a name or");
  REFUSED(PROG("{'name':'1main','params':[],'body':[]}"), "$.functions[0].name",
          "is not a valid name");
  REFUSED(PROG("{'name':'main','parent':3,'params':[],'body':[]}"),
          "$.functions[0].parent", "must be null or a function name");
  /* unknown and duplicate fields */
  REFUSED(MAIN(RET("{'op':'neg','a':" I64(1) ",'b':" I64(2) "}")),
          "$.functions[0].body[0].expr.b", "unknown field 'b' in 'neg'");
  REFUSED("{'version':1,'functions':[],'resource':[]}", "$.resource",
          "unknown field 'resource' in the program (did you mean 'resources'?)");
  REFUSED(MAIN(RET("{'op':'lit_i64','value':1,'value':2}")),
          "$.functions[0].body[0].expr.value", "duplicate field 'value'");
  /* the suggestion for a misspelt field should be the closest one */
  int rc;
  wfp_program *p = irt_load(MAIN(RET("{'op':'neg','aa':" I64(1) "}")), NULL, &rc);
  assert_int_equal(rc, WFP_EPROGRAM);
  const wfp_diag *d = irt_find_diag(p, "$.functions[0].body[0].expr.aa", "unknown field 'aa'");
  assert_non_null(d);
  assert_non_null(strstr(d->msg, "did you mean 'a'?"));
  wfp_program_free(p);
  /* strings must be UTF-8 and free of U+0000 (either is refused as not
  ** JSON, with line and column, or as a fault of the program, with a path) */
  static const char *const bad_strings[] = {
      MAIN(RET("{'op':'lit_str','value':'\xC0\xAF'}")),
      MAIN(RET("{'op':'lit_str','value':'\xED\xA0\x80'}")),
      MAIN(RET("{'op':'lit_json','value':{'\xFF':1}}")),
      MAIN(RET("{'op':'lit_str','value':'a\\u0000b'}")),
      MAIN(RET("{'op':'lit_json','value':['\\u0000']}")),
  };
  for (int i = 0; i < 5; i++) {
    p = irt_load(bad_strings[i], NULL, &rc);
    if ((rc != WFP_ESYNTAX && rc != WFP_EPROGRAM) ||
        (!irt_find_diag(p, NULL, "UTF-8") && !irt_find_diag(p, NULL, "U+0000"))) {
      irt_print_diags(p);
      fail_msg("string #%d: not refused as invalid UTF-8 or U+0000 (%s)", i, wfp_err_name(rc));
    }
    wfp_program_free(p);
  }
}

/* ---- lit_i64 ---- */

/* The value of the first statement's expression of main (the AST: exact). */
static int64_t first_value(wfp_program *p) {
  assert_true(p->nfuncs >= 1);
  assert_true(p->funcs[0]->body.n >= 1);
  wfp_expr *e = p->funcs[0]->body.v[0]->e;
  assert_non_null(e);
  assert_int_equal(e->op, WFP_OP_LIT_I64);
  return e->ival;
}

static void expect_i64(const char *value_json, int64_t want, const char *digits) {
  char q[256];
  snprintf(q, sizeof q, MAIN("{'op':'return','expr':{'op':'lit_i64','value':%s}}"), value_json);
  wfp_program *p = LOAD_OK(q);
  if (first_value(p) != want)
    fail_msg("lit_i64 %s read as %lld", value_json, (long long)first_value(p));
  /* the canonical IR keeps every digit (as a number or a decimal string) */
  char *ir = irt_ir_text(p);
  if (!strstr(ir, digits))
    fail_msg("canonical IR lost %s: %s", digits, ir);
  wfp_free(ir);
  wfp_program_free(p);
}

static void expect_i64_refused(const char *value_json, const char *msg) {
  char q[256];
  snprintf(q, sizeof q, MAIN("{'op':'return','expr':{'op':'lit_i64','value':%s}}"), value_json);
  irt_refused_at(q, NULL, WFP_EPROGRAM, "$.functions[0].body[0].expr.value", msg,
                 __FILE__, __LINE__);
}

static void lit_i64_whole_range(void **state) {
  (void)state;
  expect_i64("9223372036854775807", INT64_MAX, "9223372036854775807");
  expect_i64("-9223372036854775808", INT64_MIN, "-9223372036854775808");
  expect_i64("'9223372036854775807'", INT64_MAX, "9223372036854775807");
  expect_i64("'-9223372036854775808'", INT64_MIN, "-9223372036854775808");
  /* 2^53 + 1 and 2^63 - 2: a double cannot hold them */
  expect_i64("9007199254740993", 9007199254740993LL, "9007199254740993");
  expect_i64("9223372036854775806", INT64_MAX - 1, "9223372036854775806");
  expect_i64("'-9007199254740993'", -9007199254740993LL, "-9007199254740993");
  expect_i64("0", 0, "\"value\":0");
  expect_i64("-1", -1, "\"value\":-1");
  /* -0 is 0, as a JSON number and as a decimal string alike */
  expect_i64("-0", 0, "\"value\":0");
  expect_i64("'-0'", 0, "\"value\":0");
}

static void lit_i64_refused(void **state) {
  (void)state;
  expect_i64_refused("9223372036854775808", "out of the i64 range");
  expect_i64_refused("-9223372036854775809", "out of the i64 range");
  expect_i64_refused("'9223372036854775808'", "out of the i64 range");
  expect_i64_refused("'-9223372036854775809'", "out of the i64 range");
  expect_i64_refused("18446744073709551616", "out of the i64 range");
  expect_i64_refused("1.5", "not an integer");
  expect_i64_refused("1e3", "not an integer");
  expect_i64_refused("1E3", "not an integer");
  expect_i64_refused("1.0", "not an integer");
  expect_i64_refused("'1.5'", "not a decimal integer");
  expect_i64_refused("'1e3'", "not a decimal integer");
  expect_i64_refused("'+1'", "not a decimal integer");
  expect_i64_refused("' 1'", "not a decimal integer");
  expect_i64_refused("'1 '", "not a decimal integer");
  expect_i64_refused("''", "not a decimal integer");
  expect_i64_refused("'abc'", "not a decimal integer");
  expect_i64_refused("'0x10'", "not a decimal integer");
  expect_i64_refused("true", "must be an integer or a decimal string");
  expect_i64_refused("null", "must be an integer or a decimal string");
  expect_i64_refused("[1]", "must be an integer or a decimal string");
  expect_i64_refused("'007'", "leading zeros");
  expect_i64_refused("'-01'", "leading zeros");
}

/* ---- the program object ---- */

static void program_not_an_object(void **state) {
  (void)state;
  static const char *const texts[] = {"[1]", "'x'", "1", "null", "true", "[]"};
  static const char *const what[] = {"an array", "a string", "a number",
                                     "null",     "a boolean", "an array"};
  for (int i = 0; i < 6; i++) {
    char msg[96];
    snprintf(msg, sizeof msg, "a program is a JSON object, not %s", what[i]);
    irt_refused_at(texts[i], NULL, WFP_EPROGRAM, "$", msg, __FILE__, __LINE__);
  }
}

static void version_not_1(void **state) {
  (void)state;
  REFUSED("{'version':2,'functions':[]}", "$.version", "unsupported IR version");
  REFUSED("{'version':0,'functions':[]}", "$.version", "unsupported IR version");
  REFUSED("{'version':'1','functions':[]}", "$.version", "unsupported IR version");
  REFUSED("{'version':1.5,'functions':[]}", "$.version", "unsupported IR version");
  REFUSED("{'version':null,'functions':[]}", "$.version", "unsupported IR version");
  wfp_program *p = LOAD_OK("{'version':1,'functions':[]}");
  wfp_program_free(p);
}

/* ---- the diagnostic bound ---- */

/* A program of n faults: n functions, each adding a str to an i64 (kind
** 0), or one body of n unknown variables (1), or of n unknown ops (2). */
static char *faulty_program(int kind, int n) {
  wfp__buf b;
  wfp__buf_init(&b);
  wfp__buf_adds(&b, "{'version':1,'functions':[");
  if (kind == 0) {
    for (int i = 0; i < n; i++)
      wfp__buf_printf(&b, "%s" FUNC("f%d", "", RET(BIN("add", STR("x"), I64(1)))),
                      i ? "," : "", i);
  } else {
    wfp__buf_adds(&b, "{'name':'main','params':[],'body':[");
    for (int i = 0; i < n; i++)
      wfp__buf_printf(&b, kind == 1 ? "%s" EXPR(VAR("u%d")) : "%s{'op':'bogus%d'}",
                      i ? "," : "", i);
    wfp__buf_adds(&b, "]}");
  }
  wfp__buf_adds(&b, "]}");
  assert_false(b.oom);
  return wfp__buf_take(&b, NULL);
}

static wfp_program *load_faulty(int kind, int n, unsigned max) {
  char *q = faulty_program(kind, n);
  wfp_ir_opts o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.max_diags = max;
  int rc;
  wfp_program *p = irt_load(q, &o, &rc);
  free(q);
  assert_int_equal(rc, WFP_EPROGRAM);
  return p;
}

static void diag_bound_reports_first_faults(void **state) {
  (void)state;
  /* max_diags 10: the first ten faults, in document order */
  wfp_program *p = load_faulty(0, 50, 10);
  assert_int_equal(wfp_program_diag_count(p), 10);
  for (int i = 0; i < 10; i++) {
    char path[64];
    snprintf(path, sizeof path, "$.functions[%d].body[0].expr.a", i);
    assert_string_equal(wfp_program_diag(p, (size_t)i)->path, path);
    assert_non_null(strstr(wfp_program_diag(p, (size_t)i)->msg, "type mismatch"));
  }
  assert_null(wfp_program_diag(p, 10));
  assert_int_equal(wfp_program_diag_dropped(p), 40);
  wfp_program_free(p);
  /* the default bound is 20 */
  p = load_faulty(0, 50, 0);
  assert_int_equal(wfp_program_diag_count(p), 20);
  assert_int_equal(wfp_program_diag_dropped(p), 30);
  wfp_program_free(p);
  /* a bound above the count: all fifty, none dropped */
  p = load_faulty(0, 50, 100);
  assert_int_equal(wfp_program_diag_count(p), 50);
  assert_int_equal(wfp_program_diag_dropped(p), 0);
  wfp_program_free(p);
}

/* Fifty faults inside one function body: the bound holds, and the faults not
** reported should still be counted. */
static void diag_bound_counts_dropped_in_one_body(void **state) {
  (void)state;
  for (int kind = 1; kind <= 2; kind++) {
    wfp_program *p = load_faulty(kind, 50, 100);
    assert_int_equal(wfp_program_diag_count(p), 50); /* there are fifty */
    wfp_program_free(p);
    p = load_faulty(kind, 50, 10);
    assert_int_equal(wfp_program_diag_count(p), 10);
    assert_string_equal(wfp_program_diag(p, 9)->path,
                        kind == 1 ? "$.functions[0].body[9].expr"
                                  : "$.functions[0].body[9].op");
    /* the bound limits the report, not the check: the rest are counted */
    assert_int_equal(wfp_program_diag_dropped(p), 40);
    wfp_program_free(p);
  }
}

/* ---- the load API ---- */

/* A program returning JSON whose value (lit_json or a json template) is
** text: the code between "value": and the closing braces. */
static int load_value(const char *op, const char *value, wfp_program **out) {
  size_t n = strlen(value) + 200;
  char *t = malloc(n);
  assert_non_null(t);
  snprintf(t, n,
           "{\"version\":1,\"functions\":[{\"name\":\"main\",\"body\":["
           "{\"op\":\"return\",\"expr\":{\"op\":\"%s\",\"value\":%s}}]}]}",
           op, value);
  int rc;
  wfp_program *p = irt_load_raw(t, strlen(t), NULL, &rc);
  free(t);
  *out = p;
  return rc;
}

/* depth arrays around inner: "[[...inner...]]" (caller frees) */
static char *nest(int depth, const char *inner) {
  size_t n = strlen(inner) + 2 * (size_t)depth + 1;
  char *s = malloc(n);
  assert_non_null(s);
  memset(s, '[', (size_t)depth);
  strcpy(s + depth, inner);
  memset(s + depth + strlen(inner), ']', (size_t)depth);
  s[n - 1] = 0;
  return s;
}

/* One JSON depth rule (WFP_JSON_MAX_DEPTH, 256 levels of arrays and
** objects) for lit_json values and the literal structure of templates;
** a hole is not a level. The file itself may nest 1000 levels. */
static void json_depth_limit(void **state) {
  (void)state;
  static const char *const ops[] = {"lit_json", "json"};
  for (int k = 0; k < 2; k++) {
    wfp_program *p;
    char *v = nest(256, "1");
    assert_int_equal(load_value(ops[k], v, &p), WFP_OK);
    /* the value is kept whole */
    char *ir = irt_ir_text(p);
    assert_non_null(strstr(ir, v));
    wfp_free(ir);
    wfp_program_free(p);
    free(v);
    v = nest(257, "1");
    assert_int_equal(load_value(ops[k], v, &p), WFP_EPROGRAM);
    const wfp_diag *d = irt_find_diag(p, NULL, "deeper than the limit of 256 levels");
    assert_non_null(d);
    /* at the array that is one level too deep */
    assert_int_equal(strlen(d->path), strlen("$.functions[0].body[0].expr.value") + 3 * 256);
    wfp_program_free(p);
    free(v);
  }
  /* a hole 256 levels down, and structure with holes too deep */
  wfp_program *p;
  char *v = nest(256, "{\"op\":\"lit_i64\",\"value\":1}");
  assert_int_equal(load_value("json", v, &p), WFP_OK);
  wfp_program_free(p);
  free(v);
  v = nest(257, "{\"op\":\"lit_i64\",\"value\":1}");
  assert_int_equal(load_value("json", v, &p), WFP_EPROGRAM);
  assert_non_null(irt_find_diag(p, NULL, "(WFP_JSON_MAX_DEPTH)"));
  /* said once, not once per level below */
  assert_int_equal(wfp_program_diag_count(p), 1);
  wfp_program_free(p);
  free(v);
}

static void load_api_misuse(void **state) {
  (void)state;
  char *good = irt_q(MAIN(RET(I64(1))));
  size_t n = strlen(good);
  /* NULL program */
  assert_int_equal(wfp_program_load_mem(NULL, "x", good, n), WFP_EINVAL);
  assert_int_equal(wfp_program_load_file(NULL, "x.json"), WFP_EINVAL);
  wfp_program_free(NULL);
  /* not loaded yet: nothing to read */
  wfp_program *p = wfp_program_new(NULL);
  assert_non_null(p);
  char *out = (char *)1;
  assert_int_equal(wfp_program_ir_json(p, 0, &out, NULL), WFP_EINVAL);
  assert_string_equal(wfp_program_hash(p), "");
  assert_int_equal(wfp_program_function_count(p), 0);
  assert_null(wfp_program_function_name(p, 0));
  assert_false(wfp_program_has_entry(p));
  assert_int_equal(wfp_program_diag_count(p), 0);
  assert_null(wfp_program_diag(p, 0));
  /* NULL path, NULL text with a length */
  assert_int_equal(wfp_program_load_file(p, NULL), WFP_EINVAL);
  assert_int_equal(wfp_program_load_mem(p, "x", NULL, 5), WFP_EINVAL);
  /* a good load, then a second one of either kind */
  assert_int_equal(wfp_program_load_mem(p, NULL, good, n), WFP_OK);
  assert_int_equal(wfp_program_load_mem(p, "again", good, n), WFP_EINVAL);
  assert_int_equal(wfp_program_load_file(p, "again.json"), WFP_EINVAL);
  assert_int_equal(wfp_program_function_count(p), 1); /* still the first */
  assert_int_equal(strlen(wfp_program_hash(p)), 16);
  assert_int_equal(wfp_program_ir_json(p, 0, NULL, NULL), WFP_EINVAL);
  wfp_program_free(p);
  /* a failed load cannot be retried on the same handle either */
  p = wfp_program_new(NULL);
  assert_int_equal(wfp_program_load_mem(p, NULL, "{", 1), WFP_ESYNTAX);
  assert_string_equal(wfp_program_diag(p, 0)->file, "<memory>");
  assert_int_equal(wfp_program_load_mem(p, NULL, good, n), WFP_EINVAL);
  wfp_program_free(p);
  /* a file that is not there */
  p = wfp_program_new(NULL);
  assert_int_equal(wfp_program_load_file(p, "no/such/dir/program.json"), WFP_EIO);
  assert_int_equal(wfp_program_diag_count(p), 1);
  assert_int_equal(wfp_program_diag(p, 0)->code, WFP_EIO);
  assert_string_equal(wfp_program_diag(p, 0)->file, "no/such/dir/program.json");
  wfp_program_free(p);
  free(good);
}

static void load_mem_not_nul_terminated(void **state) {
  (void)state;
  char *good = irt_q(MAIN(RET(I64(1))));
  size_t n = strlen(good);
  /* the length ends the text; what follows is not read */
  char *b = malloc(n + 8);
  assert_non_null(b);
  memcpy(b, good, n);
  memcpy(b + n, "garbage!", 8);
  int rc;
  wfp_program *p = irt_load_raw(b, n, NULL, &rc);
  assert_int_equal(rc, WFP_OK);
  wfp_program_free(p);
  /* one byte short is not JSON */
  p = irt_load_raw(b, n - 1, NULL, &rc);
  assert_int_equal(rc, WFP_ESYNTAX);
  wfp_program_free(p);
  free(b);
  free(good);
}

static void opts_size_is_respected(void **state) {
  (void)state;
  /* fields beyond size are not read: an entry there is ignored */
  wfp_ir_opts o;
  memset(&o, 0, sizeof o);
  o.size = offsetof(wfp_ir_opts, entry);
  o.entry = "nosuchfunction";
  wfp_program *p = irt_ok_at(MAIN(RET(I64(1))), &o, __FILE__, __LINE__);
  assert_string_equal(wfp_program_entry(p), "main");
  wfp_program_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(syntax_line_and_column),
      cmocka_unit_test(syntax_truncated_input),
      cmocka_unit_test(syntax_key_not_a_string),
      cmocka_unit_test(syntax_not_json_accepted),
      cmocka_unit_test(bom_is_skipped),
      cmocka_unit_test(unknown_op_with_suggestion),
      cmocka_unit_test(missing_fields),
      cmocka_unit_test(mistyped_fields),
      cmocka_unit_test(lit_i64_whole_range),
      cmocka_unit_test(lit_i64_refused),
      cmocka_unit_test(program_not_an_object),
      cmocka_unit_test(version_not_1),
      cmocka_unit_test(diag_bound_reports_first_faults),
      cmocka_unit_test(diag_bound_counts_dropped_in_one_body),
      cmocka_unit_test(json_depth_limit),
      cmocka_unit_test(load_api_misuse),
      cmocka_unit_test(load_mem_not_nul_terminated),
      cmocka_unit_test(opts_size_is_respected),
  };
  return cmocka_run_group_tests_name("ir.parse", tests, NULL, NULL);
}
