/*
** test_ids.c: stable content-hash IDs (ir/ids.c through wfp/ir.h): the same
** across layout and key order, different for different content, user IDs
** kept, and the examples' IDs pinned in golden_ids.txt. Not the hash format.
*/
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "irt.h"
#include "util.h"

static bool is_id(const char *s) {
  if (!s || strlen(s) != 16)
    return false;
  for (const char *c = s; *c; c++)
    if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
      return false;
  return true;
}

/* ---- variants of one program ---- */

/* Reverses the member order of one object (cJSON keeps the last item in
** child->prev). */
static void reverse_members(cJSON *j) {
  if (!j->child)
    return;
  cJSON *items[256];
  int n = 0;
  for (cJSON *c = j->child; c; c = c->next) {
    assert_true(n < 256);
    items[n++] = c;
  }
  for (int i = 0; i < n; i++) {
    cJSON *c = items[n - 1 - i];
    c->next = i + 1 < n ? items[n - 2 - i] : NULL;
    c->prev = i > 0 ? items[n - i] : items[0];
  }
  j->child = items[n - 1];
}

static void reverse_keys(cJSON *j);

/* A json template: its objects without "op" are data, whose key order the
** output keeps, so they stay as they are; its holes are IR again. */
static void reverse_template(cJSON *j) {
  if (cJSON_IsObject(j) && cJSON_GetObjectItemCaseSensitive(j, "op")) {
    reverse_keys(j);
    return;
  }
  for (cJSON *c = j->child; c; c = c->next)
    reverse_template(c);
}

/* Reverses the key order of every object of the IR's own syntax,
** recursively; JSON data (lit_json values, template structure) is left as
** written. */
static void reverse_keys(cJSON *j) {
  const cJSON *op = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "op") : NULL;
  bool lit = cJSON_IsString(op) && !strcmp(op->valuestring, "lit_json");
  bool tpl = cJSON_IsString(op) && !strcmp(op->valuestring, "json");
  for (cJSON *c = j->child; c; c = c->next) {
    bool value = c->string && !strcmp(c->string, "value");
    if (value && lit)
      continue;
    if (value && tpl)
      reverse_template(c);
    else
      reverse_keys(c);
  }
  if (cJSON_IsObject(j))
    reverse_members(j);
}

typedef struct loaded {
  wfp_program *p;
  char *ir;
} loaded;

static loaded load_text(const char *text, const char *what) {
  int rc;
  loaded l;
  l.p = irt_load_raw(text, strlen(text), NULL, &rc);
  if (rc != WFP_OK) {
    print_error("%s does not load:\n%s\n", what, text);
    irt_print_diags(l.p);
    fail();
  }
  l.ir = irt_ir_text(l.p);
  return l;
}

static void unload(loaded *l) {
  wfp_free(l->ir);
  wfp_program_free(l->p);
}

/* Loads text as is, compact, and formatted with the keys of every object
** of the IR reversed; all three must give the same IDs, hash and canonical
** IR. */
static void expect_layout_independent(const char *text, const char *name) {
  cJSON *j = cJSON_Parse(text);
  if (!j)
    fail_msg("%s: not JSON", name);
  char *compact = cJSON_PrintUnformatted(j);
  reverse_keys(j);
  char *reversed = cJSON_Print(j);
  cJSON_Delete(j);
  assert_non_null(compact);
  assert_non_null(reversed);
  /* the variants really differ from the original text */
  assert_string_not_equal(compact, reversed);
  assert_string_not_equal(text, reversed);

  loaded a = load_text(text, name);
  const char *const variants[] = {compact, reversed};
  for (int v = 0; v < 2; v++) {
    loaded b = load_text(variants[v], name);
    assert_int_equal(wfp_program_function_count(a.p), wfp_program_function_count(b.p));
    for (int i = 0; i < wfp_program_function_count(a.p); i++) {
      const char *fname = wfp_program_function_name(a.p, i);
      const char *id = wfp_program_function_id(a.p, i);
      assert_true(is_id(id));
      const char *id2 = irt_id(b.p, fname);
      if (!id2 || strcmp(id, id2) != 0)
        fail_msg("%s: function %s has id %s, but %s once %s", name, fname, id,
                 id2 ? id2 : "(missing)", v ? "keys are reversed" : "compacted");
    }
    assert_string_equal(wfp_program_hash(a.p), wfp_program_hash(b.p));
    assert_string_equal(a.ir, b.ir);
    unload(&b);
  }
  unload(&a);
  free(compact);
  free(reversed);
}

static const char *const example_names[] = {
    "program.accumulator.json", "program.bank-account.json",
    "program.converter.json",   "program.nested.json",
    "program.resource.json",    "program.simple.json",
    "program.state-machine.json",
};

static char *example_path(const char *name) {
  size_t n = strlen(WFP_EXAMPLES_DIR) + strlen(name) + 2;
  char *p = malloc(n);
  assert_non_null(p);
  snprintf(p, n, "%s/%s", WFP_EXAMPLES_DIR, name);
  return p;
}

static void ids_ignore_layout_and_key_order_examples(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof example_names / sizeof *example_names; i++) {
    char *path = example_path(example_names[i]);
    char *text = irt_read(path, NULL);
    expect_layout_independent(text, example_names[i]);
    free(text);
    free(path);
  }
}

/* Lambdas, nested functions, json templates and lit_json objects too. */
static void ids_ignore_layout_and_key_order_inline(void **state) {
  (void)state;
  char *t = irt_q(PROG(
      FUNC("main", "'n'",
           LET("base", I64(10)) ","
           LET("f", LAMBDA("{'name':'x','type':'i64'}", RET(BIN("add", VAR("x"), VAR("base"))))) ","
           LET("j", "{'op':'json','value':{'z':1,'a':[" VAR("n") ",{'q':" STR("s") ",'b':true}]}}") ","
           LET("k", "{'op':'lit_json','value':{'y':{'d':1,'c':[2,3]},'x':null}}") ","
           EXPR("{'op':'msg_send','topic':'t','payload':" VAR("j") "}") ","
           EXPR("{'op':'msg_send','topic':'t','payload':" VAR("k") "}") ","
           RET(BIN("add", CALL("inner", VAR("n")), CALL_REF(VAR("f"), I64(1))))) ","
      NESTED("inner", "main", "'m'", RET(BIN("mul", VAR("m"), VAR("base"))))));
  expect_layout_independent(t, "inline program");
  free(t);
}

/* ---- different content, different ID: for that function only ---- */

#define BASE_G(tmp, op) FUNC("g", "'a'", LET(tmp, BIN(op, VAR("a"), I64(2))) "," RET(BIN("add", VAR(tmp), I64(1))))
#define BASE_MAIN(lit) FUNC("main", "", LET("x", CALL("g", I64(1))) "," LET("y", I64(lit)) "," RET(BIN("add", VAR("x"), VAR("y"))))
#define BASE_H RET(STR("h"))

static void expect_only_changed(const char *base_q, const char *variant_q,
                                const char *changed, const char *what) {
  wfp_program *a = LOAD_OK(base_q);
  wfp_program *b = LOAD_OK(variant_q);
  assert_int_equal(wfp_program_function_count(a), wfp_program_function_count(b));
  for (int i = 0; i < wfp_program_function_count(a); i++) {
    const char *name = wfp_program_function_name(a, i);
    const char *ida = wfp_program_function_id(a, i);
    const char *idb = irt_id(b, name);
    assert_non_null(idb);
    bool same = strcmp(ida, idb) == 0;
    if (strcmp(name, changed) == 0 && same)
      fail_msg("%s: the ID of '%s' did not change (%s)", what, name, ida);
    if (strcmp(name, changed) != 0 && !same)
      fail_msg("%s: the ID of '%s' changed too (%s -> %s)", what, name, ida, idb);
  }
  assert_string_not_equal(wfp_program_hash(a), wfp_program_hash(b));
  wfp_program_free(a);
  wfp_program_free(b);
}

static void ids_follow_content(void **state) {
  (void)state;
  const char *base = PROG(BASE_MAIN(5) "," BASE_G("t", "mul") "," FUNC("h", "", BASE_H));
  expect_only_changed(base, PROG(BASE_MAIN(5) "," BASE_G("u", "mul") "," FUNC("h", "", BASE_H)),
                      "g", "renaming a variable");
  expect_only_changed(base, PROG(BASE_MAIN(6) "," BASE_G("t", "mul") "," FUNC("h", "", BASE_H)),
                      "main", "changing a literal");
  expect_only_changed(base, PROG(BASE_MAIN(5) "," BASE_G("t", "sub") "," FUNC("h", "", BASE_H)),
                      "g", "changing an op");
  expect_only_changed(base,
                      PROG(BASE_MAIN(5) "," BASE_G("t", "mul") "," FUNC("h", "", LET("z", I64(1)) "," BASE_H)),
                      "h", "adding a statement");
  expect_only_changed(base,
                      PROG(BASE_MAIN(5) "," FUNC("g", "'b'", LET("t", BIN("mul", VAR("b"), I64(2))) "," RET(BIN("add", VAR("t"), I64(1)))) "," FUNC("h", "", BASE_H)),
                      "g", "renaming a parameter");
  expect_only_changed(base, PROG(BASE_MAIN(5) "," BASE_G("t", "mul") "," FUNC("h", "", RET(STR("H")))),
                      "h", "changing a string");
  /* the order of functions in the file is not content */
  wfp_program *a = LOAD_OK(base);
  wfp_program *b = LOAD_OK(PROG(FUNC("h", "", BASE_H) "," BASE_G("t", "mul") "," BASE_MAIN(5)));
  for (int i = 0; i < wfp_program_function_count(a); i++)
    assert_string_equal(wfp_program_function_id(a, i), irt_id(b, wfp_program_function_name(a, i)));
  wfp_program_free(a);
  wfp_program_free(b);
}

/* ---- user IDs ---- */

static void user_id_is_kept(void **state) {
  (void)state;
  const char *base = PROG(BASE_MAIN(5) "," BASE_G("t", "mul"));
  wfp_program *a = LOAD_OK(base);
  wfp_program *b = LOAD_OK(PROG(BASE_MAIN(5) ","
                                "{'id':'My-g_1','name':'g','params':['a'],'body':[" RET(VAR("a")) "]}"));
  assert_string_equal(irt_id(b, "g"), "My-g_1");
  /* the other function's ID is untouched */
  assert_string_equal(irt_id(a, "main"), irt_id(b, "main"));
  /* the canonical IR carries it */
  cJSON *ir = irt_ir(b);
  cJSON *g = irt_ir_func(ir, "g");
  assert_non_null(g);
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(g, "id")->valuestring, "My-g_1");
  cJSON_Delete(ir);
  wfp_program_free(a);
  wfp_program_free(b);
  /* empty means assign one */
  b = LOAD_OK(PROG(BASE_MAIN(5) "," "{'id':'','name':'g','params':['a'],'body':[" RET(VAR("a")) "]}"));
  assert_true(is_id(irt_id(b, "g")));
  wfp_program_free(b);
  /* what is not an ID */
  REFUSED(PROG("{'id':'has space','name':'f','params':[],'body':[]}"), "$.functions[0].id",
          "is not valid");
  REFUSED(PROG("{'id':'abcdefghijklmnopq','name':'f','params':[],'body':[]}"), "$.functions[0].id",
          "is not valid");
  REFUSED(PROG("{'id':7,'name':'f','params':[],'body':[]}"), "$.functions[0].id",
          "must be a string");
  /* nor one shared with another function, or another function's name */
  REFUSED(PROG("{'id':'x1','name':'f','params':[],'body':[]},{'id':'x1','name':'g','params':[],'body':[]}"),
          "$.functions[1].id", "duplicate id 'x1'");
  REFUSED(PROG("{'id':'g','name':'f','params':[],'body':[]}," FUNC("g", "", RET_VOID)),
          "$.functions[0].id", "id 'g' is also the name of function 'g'");
}

/* ---- the ID and hash scheme, as documented (docs/ir.md 17, 18) ---- */

static void first64_hex(const char *text, size_t n, char out[17]) {
  uint8_t h[32];
  wfp__sha256_buf(text, n, h);
  wfp__hex(h, 8, out);
}

static void documented_ids_and_hash(void **state) {
  (void)state;
  /* an ID is the first 64 bits of SHA-256 of the function's canonical form */
  static const char addbase_form[] =
      "{\"body\":[{\"expr\":{\"a\":{\"name\":\"base\",\"op\":\"var\"},\"b\":{\"name\":"
      "\"x\",\"op\":\"var\"},\"op\":\"add\"},\"op\":\"return\"}],\"name\":\"addBase\","
      "\"params\":[{\"name\":\"x\",\"type\":\"i64\"}],\"parent\":\"main\"}";
  char want[17];
  first64_hex(addbase_form, sizeof addbase_form - 1, want);
  assert_string_equal(want, "b08e996bfd2ba4dc");
  wfp_program *p = wfp_program_new(NULL);
  assert_int_equal(wfp_program_load_file(p, WFP_EXAMPLES_DIR "/program.nested.json"), WFP_OK);
  assert_string_equal(irt_id(p, "addBase"), want);
  /* the program hash: the same over the compact canonical IR */
  assert_string_equal(wfp_program_hash(p), "5f5f16f4a389b97c");
  char *ir = irt_ir_text(p);
  first64_hex(ir, strlen(ir), want);
  assert_string_equal(wfp_program_hash(p), want);
  wfp_free(ir);
  wfp_program_free(p);
  /* a lambda's ID, from its enclosing function's ID and its rank */
  p = LOAD_OK(MAIN(LET("k", I64(3)) "," LET("f", LAMBDA("'x'", RET(BIN("mul", VAR("x"), VAR("k"))))) ","
                   RET(CALL_REF(VAR("f"), I64(14)))));
  assert_string_equal(irt_id(p, "main"), "3a7da4dc1a659dad");
  assert_string_equal(irt_id(p, "main$lambda0"), "5244e3266279bc47");
  wfp_program_free(p);
}

/* JSON data (a lit_json value, the objects of a json template) keeps its
** key order in the output, so that order is content and gives another ID;
** the order of the fields of IR objects is not. */
static void json_data_key_order_is_content(void **state) {
  (void)state;
  static const char *const pairs[][2] = {
      {MAIN(RET("{'op':'json','value':{'a':1,'b':2}}")),
       MAIN(RET("{'op':'json','value':{'b':2,'a':1}}"))},
      {MAIN(RET("{'op':'json','value':{'a':" INPUT ",'b':2}}")),
       MAIN(RET("{'op':'json','value':{'b':2,'a':" INPUT "}}"))},
      {MAIN(RET("{'op':'lit_json','value':{'a':1,'b':{'d':1,'c':2}}}")),
       MAIN(RET("{'op':'lit_json','value':{'a':1,'b':{'c':2,'d':1}}}"))},
  };
  for (int i = 0; i < 3; i++) {
    wfp_program *a = LOAD_OK(pairs[i][0]);
    wfp_program *b = LOAD_OK(pairs[i][1]);
    if (!strcmp(irt_id(a, "main"), irt_id(b, "main")))
      fail_msg("pair %d: reordering JSON data kept the ID %s", i, irt_id(a, "main"));
    wfp_program_free(a);
    wfp_program_free(b);
  }
  /* the fields of the json and lit_json expressions themselves */
  wfp_program *a = LOAD_OK(MAIN(RET("{'op':'lit_json','value':{'a':1,'b':2}}")));
  wfp_program *b = LOAD_OK(MAIN(RET("{'value':{'a':1,'b':2},'op':'lit_json'}")));
  assert_string_equal(irt_id(a, "main"), irt_id(b, "main"));
  wfp_program_free(a);
  wfp_program_free(b);
  /* a template's holes are IR objects again */
  a = LOAD_OK(PROG(FUNC("main", "'n'", RET("{'op':'json','value':{'k':{'op':'var','name':'n'}}}"))));
  b = LOAD_OK(PROG(FUNC("main", "'n'", RET("{'op':'json','value':{'k':{'name':'n','op':'var'}}}"))));
  assert_string_equal(irt_id(a, "main"), irt_id(b, "main"));
  wfp_program_free(a);
  wfp_program_free(b);
}

/* ---- golden IDs of the examples ---- */

typedef struct golden {
  char file[64], func[64], id[32];
  bool seen;
} golden;

static int read_golden(golden *g, int max) {
  char *text = irt_read(WFP_GOLDEN_IDS, NULL);
  int n = 0;
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    if (line[0] == '#' || line[0] == 0)
      continue;
    assert_true(n < max);
    char extra[8];
    if (sscanf(line, "%63s %63s %31s %7s", g[n].file, g[n].func, g[n].id, extra) != 3)
      fail_msg("golden_ids.txt: bad line '%s' (want: file function id)", line);
    g[n].seen = false;
    n++;
  }
  free(text);
  return n;
}

static void golden_ids_of_examples(void **state) {
  (void)state;
  golden g[128];
  int n = read_golden(g, 128);
  /* the file itself: well-formed IDs, no duplicates */
  for (int i = 0; i < n; i++) {
    if (!is_id(g[i].id))
      fail_msg("golden_ids.txt: '%s' is not 16 lowercase hex digits", g[i].id);
    for (int j = 0; j < i; j++) {
      if (!strcmp(g[i].id, g[j].id))
        fail_msg("golden_ids.txt: id %s twice", g[i].id);
      if (!strcmp(g[i].file, g[j].file) && !strcmp(g[i].func, g[j].func))
        fail_msg("golden_ids.txt: %s %s twice", g[i].file, g[i].func);
    }
  }
  /* every example in the directory is covered, with each of its functions */
  int nex = 0;
  DIR *d = opendir(WFP_EXAMPLES_DIR);
  assert_non_null(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    if (strncmp(e->d_name, "program.", 8) != 0 || len < 5 ||
        strcmp(e->d_name + len - 5, ".json") != 0)
      continue;
    nex++;
    char *path = example_path(e->d_name);
    wfp_program *p = wfp_program_new(NULL);
    assert_non_null(p);
    int rc = wfp_program_load_file(p, path);
    if (rc != WFP_OK) {
      irt_print_diags(p);
      fail_msg("example %s does not load (%s)", e->d_name, wfp_err_name(rc));
    }
    for (int i = 0; i < wfp_program_function_count(p); i++) {
      const char *fname = wfp_program_function_name(p, i);
      const char *id = wfp_program_function_id(p, i);
      int k = 0;
      while (k < n && (strcmp(g[k].file, e->d_name) || strcmp(g[k].func, fname)))
        k++;
      if (k == n)
        fail_msg("%s: function %s (id %s) is not in tests/ir/golden_ids.txt; "
                 "add it once its ID is final",
                 e->d_name, fname, id);
      if (strcmp(g[k].id, id) != 0)
        fail_msg("%s: function %s now has id %s, golden_ids.txt says %s.\n"
                 "Function IDs are part of the contract (CONTRACT.md section 2): "
                 "the same function content must give the same ID on every "
                 "machine and in every version, since deployed state and "
                 "callers name functions by ID. Do not update the golden file "
                 "to make this pass unless the ID scheme is changed on purpose "
                 "(and documented as an incompatible change).",
                 e->d_name, fname, id, g[k].id);
      g[k].seen = true;
    }
    wfp_program_free(p);
    free(path);
  }
  closedir(d);
  assert_int_equal(nex, 8); /* every example (examples/README.md) */
  for (int i = 0; i < n; i++)
    if (!g[i].seen)
      fail_msg("golden_ids.txt lists %s %s, which no example has (any more)",
               g[i].file, g[i].func);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ids_ignore_layout_and_key_order_examples),
      cmocka_unit_test(ids_ignore_layout_and_key_order_inline),
      cmocka_unit_test(ids_follow_content),
      cmocka_unit_test(user_id_is_kept),
      cmocka_unit_test(documented_ids_and_hash),
      cmocka_unit_test(json_data_key_order_is_content),
      cmocka_unit_test(golden_ids_of_examples),
  };
  return cmocka_run_group_tests_name("ir.ids", tests, NULL, NULL);
}
