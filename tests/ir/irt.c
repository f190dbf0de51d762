/*
** irt.c: the helpers of irt.h, for the front-end unit tests. Only the public
** API (wfp/ir.h) and cJSON; failures go through cmocka with the caller's
** file and line. Nothing here is a test.
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

char *irt_q(const char *s) {
  char *r = strdup(s);
  assert_non_null(r);
  for (char *c = r; *c; c++)
    if (*c == '\'')
      *c = '"';
  return r;
}

wfp_program *irt_load_raw(const char *text, size_t len, const wfp_ir_opts *opts,
                          int *rc) {
  wfp_program *p = wfp_program_new(opts);
  assert_non_null(p);
  *rc = wfp_program_load_mem(p, "t.json", text, len);
  return p;
}

wfp_program *irt_load(const char *qtext, const wfp_ir_opts *opts, int *rc) {
  char *t = irt_q(qtext);
  wfp_program *p = irt_load_raw(t, strlen(t), opts, rc);
  free(t);
  return p;
}

void irt_print_diags(const wfp_program *p) {
  for (size_t i = 0; i < wfp_program_diag_count(p); i++) {
    char line[1200];
    wfp_diag_format(wfp_program_diag(p, i), line, sizeof line);
    print_error("  diag %zu: %s\n", i, line);
  }
  if (wfp_program_diag_dropped(p))
    print_error("  (%zu more dropped)\n", wfp_program_diag_dropped(p));
}

const wfp_diag *irt_find_diag(const wfp_program *p, const char *path,
                              const char *msg) {
  for (size_t i = 0; i < wfp_program_diag_count(p); i++) {
    const wfp_diag *d = wfp_program_diag(p, i);
    if (path && strcmp(d->path ? d->path : "", path) != 0)
      continue;
    if (msg && !strstr(d->msg ? d->msg : "", msg))
      continue;
    return d;
  }
  return NULL;
}

wfp_program *irt_ok_at(const char *qtext, const wfp_ir_opts *opts,
                       const char *file, int line) {
  int rc;
  wfp_program *p = irt_load(qtext, opts, &rc);
  if (rc != WFP_OK) {
    print_error("%s:%d: expected the program to load, got %s\n", file, line,
                wfp_err_name(rc));
    irt_print_diags(p);
    wfp_program_free(p);
    _fail(file, line);
  }
  return p;
}

void irt_refused_at(const char *qtext, const wfp_ir_opts *opts, int code,
                    const char *path, const char *msg, const char *file,
                    int line) {
  int rc;
  wfp_program *p = irt_load(qtext, opts, &rc);
  const wfp_diag *d = irt_find_diag(p, path, msg);
  if (rc != code || !d) {
    print_error("%s:%d: expected %s with a diagnostic at '%s' containing "
                "'%s'; got %s\n",
                file, line, wfp_err_name(code), path ? path : "(any)",
                msg ? msg : "(any)", wfp_err_name(rc));
    irt_print_diags(p);
    wfp_program_free(p);
    _fail(file, line);
  }
  /* every diagnostic of a refused program says where and what */
  for (size_t i = 0; i < wfp_program_diag_count(p); i++) {
    const wfp_diag *e = wfp_program_diag(p, i);
    assert_non_null(e->msg);
    assert_true(e->msg[0] != 0);
    assert_string_equal(e->file, "t.json");
  }
  wfp_program_free(p);
}

const char *irt_id(const wfp_program *p, const char *name) {
  for (int i = 0; i < wfp_program_function_count(p); i++)
    if (strcmp(wfp_program_function_name(p, i), name) == 0)
      return wfp_program_function_id(p, i);
  return NULL;
}

char *irt_ir_text(const wfp_program *p) {
  char *s = NULL;
  size_t n = 0;
  assert_int_equal(wfp_program_ir_json(p, 0, &s, &n), WFP_OK);
  assert_non_null(s);
  assert_int_equal(strlen(s), n);
  return s;
}

cJSON *irt_ir(const wfp_program *p) {
  char *s = irt_ir_text(p);
  cJSON *j = cJSON_Parse(s);
  wfp_free(s);
  assert_non_null(j);
  return j;
}

cJSON *irt_ir_func(const cJSON *ir, const char *name) {
  const cJSON *fa = cJSON_GetObjectItemCaseSensitive(ir, "functions");
  const cJSON *f;
  cJSON_ArrayForEach(f, fa) {
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(f, "name");
    if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
      return (cJSON *)f;
  }
  return NULL;
}

char *irt_read(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    fail_msg("cannot open %s", path);
  size_t cap = 4096, n = 0;
  char *b = malloc(cap);
  assert_non_null(b);
  size_t k;
  while ((k = fread(b + n, 1, cap - n - 1, f)) > 0) {
    n += k;
    if (cap - n - 1 == 0) {
      cap *= 2;
      b = realloc(b, cap);
      assert_non_null(b);
    }
  }
  fclose(f);
  b[n] = 0;
  if (len)
    *len = n;
  return b;
}

void irt_known_bug(bool ok, const char *what, const char *file, int line) {
  const char *s = getenv("WFP_TEST_STRICT");
  bool strict = s && *s && strcmp(s, "0") != 0;
  if (strict) {
    if (!ok) {
      print_error("%s:%d: known bug (strict mode): %s\n", file, line, what);
      _fail(file, line);
    }
    return;
  }
  if (ok) {
    print_error("%s:%d: this known bug is fixed now: %s\n"
                "  Replace the KNOWN_BUG check with a plain assertion.\n",
                file, line, what);
    _fail(file, line);
  }
  print_message("KNOWN BUG (%s:%d): %s\n", file, line, what);
}
