/*
** test_text.c: unit tests of the text library (wfp/text.h): positions of
** IR paths, several syntax errors in one run, checker faults placed in the
** text, the formatter's comments, and IR orders that need the flat forms.
*/
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wfp/text.h"

static wfp_text *parse(const char *src, int want) {
  wfp_text *t = wfp_text_new(0);
  assert_non_null(t);
  assert_int_equal(wfp_text_parse(t, "t.wfp", src, strlen(src)), want);
  return t;
}

static void at(const wfp_text *t, const char *path, int line, int col) {
  int l = 0, c = 0;
  assert_int_equal(wfp_text_locate(t, path, &l, &c), 1);
  if (l != line || c != col)
    fail_msg("%s: %d:%d, want %d:%d", path, l, c, line, col);
}

static void test_positions(void **state) {
  (void)state;
  wfp_text *t = parse("fn main() {\n"
                      "  let n = ctx.get(\"n\")\n"
                      "  return n + \"x\"\n"
                      "}\n",
                      0);
  at(t, "$.functions[0]", 1, 4);
  at(t, "$.functions[0].body[0]", 2, 3);
  at(t, "$.functions[0].body[0].expr.key", 2, 19);
  at(t, "$.functions[0].body[1].expr", 3, 12);   /* the operator */
  at(t, "$.functions[0].body[1].expr.b", 3, 14);
  /* a path the parse did not make: its nearest node */
  at(t, "$.functions[0].body[1].expr.b.value", 3, 14);
  /* the checker's fault, placed in the text */
  size_t len;
  const char *ir = wfp_text_ir(t, &len);
  assert_non_null(ir);
  wfp_program *p = wfp_program_new(NULL);
  assert_int_equal(wfp_program_load_mem(p, "t.wfp", ir, len), WFP_EPROGRAM);
  wfp_diag d;
  wfp_text_map_diag(t, wfp_program_diag(p, 0), &d);
  char line[512];
  wfp_diag_format(&d, line, sizeof line);
  assert_string_equal(line, "t.wfp:3:14: error: type mismatch: 'add' needs i64, got str");
  wfp_program_free(p);
  wfp_text_free(t);
}

static void test_several_errors(void **state) {
  (void)state;
  wfp_text *t = parse("fn main() {\n"
                      "  let = 1\n"
                      "  let y = 2 +\n"
                      "  return y ? 1\n"
                      "}\n"
                      "fn (x) {}\n",
                      WFP_ESYNTAX);
  assert_true(wfp_text_diag_count(t) >= 3);
  assert_int_equal(wfp_text_diag(t, 0)->line, 2);
  assert_int_equal(wfp_text_diag(t, 0)->col, 7);
  assert_string_equal(wfp_text_diag(t, 0)->msg, "expected a variable name after 'let', found '='");
  assert_int_equal(wfp_text_diag(t, 1)->line, 4);
  assert_null(wfp_text_ir(t, NULL));
  char *out = NULL;
  assert_int_equal(wfp_text_format(t, &out, NULL), WFP_EINVAL);
  wfp_text_free(t);
}

static void test_format_keeps_comments(void **state) {
  (void)state;
  wfp_text *t = parse("// head\n\nfn main(){ let x=1 // one\n\n\n  /* two */ return x }\n// tail\n", 0);
  char *out = NULL;
  assert_int_equal(wfp_text_format(t, &out, NULL), 0);
  assert_string_equal(out, "// head\n\nfn main() {\n  let x = 1 // one\n\n  /* two */\n  return x\n}\n\n// tail\n");
  wfp_free(out);
  wfp_text_free(t);
}

/* IR -> text -> IR: the same canonical IR */
static void same_ir(const char *json, const char *want_text) {
  wfp_program *a = wfp_program_new(NULL);
  if (wfp_program_load_mem(a, "a.json", json, strlen(json)))
    fail_msg("a: %s", wfp_program_diag(a, 0)->msg);
  char *text = NULL, *ia = NULL, *ib = NULL;
  assert_int_equal(wfp_program_to_text(a, &text, NULL), 0);
  if (want_text)
    assert_string_equal(text, want_text);
  wfp_text *t = parse(text, 0);
  size_t len;
  const char *ir = wfp_text_ir(t, &len);
  wfp_program *b = wfp_program_new(NULL);
  if (wfp_program_load_mem(b, "b.wfp", ir, len))
    fail_msg("b: %s\n%s", wfp_program_diag(b, 0)->msg, text);
  assert_int_equal(wfp_program_ir_json(a, 0, &ia, NULL), 0);
  assert_int_equal(wfp_program_ir_json(b, 0, &ib, NULL), 0);
  assert_string_equal(ia, ib);
  wfp_free(ia);
  wfp_free(ib);
  wfp_free(text);
  wfp_text_free(t);
  wfp_program_free(a);
  wfp_program_free(b);
}

static void test_orders_and_names(void **state) {
  (void)state;
  /* a nested function before its parent, methods out of their order, a
  ** given id, names that are keywords or built-ins */
  same_ir("{\"version\":1,\"entry\":\"main\",\"functions\":["
          "{\"name\":\"g\",\"parent\":\"main\",\"params\":[\"x\"],\"body\":[{\"op\":\"return\",\"expr\":{\"op\":\"var\",\"name\":\"x\"}}]},"
          "{\"name\":\"b\",\"resource\":\"R\",\"body\":[{\"op\":\"return\",\"expr\":{\"op\":\"self_get\",\"property\":\"fn\"}}]},"
          "{\"id\":\"my-id\",\"name\":\"main\",\"body\":["
          "{\"op\":\"let\",\"name\":\"if\",\"expr\":{\"op\":\"call\",\"fn\":\"len\",\"args\":[]}},"
          "{\"op\":\"return\",\"expr\":{\"op\":\"call\",\"fn\":\"g\",\"args\":[{\"op\":\"var\",\"name\":\"if\"}]}}]},"
          "{\"name\":\"a\",\"resource\":\"R\",\"body\":[]},"
          "{\"name\":\"len\",\"body\":[{\"op\":\"return\",\"expr\":{\"op\":\"neg\",\"a\":{\"op\":\"lit_i64\",\"value\":\"-9223372036854775808\"}}}]}],"
          "\"resources\":[{\"name\":\"R\",\"properties\":[{\"name\":\"fn\",\"type\":\"str\"}],\"methods\":[\"a\",\"b\"]}]}",
          "resource R {\n  #fn: str\n\n  methods a, b\n}\n\n"
          "fn g(x) in main {\n  return x\n}\n\n"
          "fn R.b() {\n  return self.fn\n}\n\n"
          "@id(\"my-id\")\nfn main() {\n  let #if = #len()\n  return g(#if)\n}\n\n"
          "fn R.a() {}\n\n"
          "fn len() {\n  return -(-9223372036854775808)\n}\n");
  /* literals: strings with escapes, JSON data and templates */
  same_ir("{\"version\":1,\"functions\":[{\"name\":\"main\",\"body\":["
          "{\"op\":\"let\",\"name\":\"s\",\"expr\":{\"op\":\"lit_str\",\"value\":\"a\\\"b\\\\c\\n\\u0001\xc3\xa9`${x}\"}},"
          "{\"op\":\"let\",\"name\":\"c\",\"expr\":{\"op\":\"concat\",\"parts\":[{\"op\":\"lit_str\",\"value\":\"a\"},{\"op\":\"lit_str\",\"value\":\"b\"},{\"op\":\"lit_str\",\"value\":\"\"},{\"op\":\"var\",\"name\":\"s\"}]}},"
          "{\"op\":\"let\",\"name\":\"j\",\"expr\":{\"op\":\"lit_json\",\"value\":{\"op\":[1,2.50,-0,1e400],\"\":null}}},"
          "{\"op\":\"return\",\"expr\":{\"op\":\"json\",\"value\":{\"a\":5,\"b\":{\"op\":\"lit_i64\",\"value\":5},\"c\":{\"op\":\"json\",\"value\":{\"d\":[]}},\"e\":\"x\",\"f\":{\"op\":\"lit_str\",\"value\":\"x\"},\"g\":12345678901234567890}}}]}]}",
          NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_positions),
      cmocka_unit_test(test_several_errors),
      cmocka_unit_test(test_format_keeps_comments),
      cmocka_unit_test(test_orders_and_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
