/*
** test_db.c: db_query's host side on real SQLite: parameters bound exactly
** from the guest's JSON array, rows written as JSON with every column type,
** one statement per query, and the faults a program sees as messages.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "host_int.h"

typedef struct fx {
  wfp_env *e;
  wfp__buf rows, offs;
  size_t n;
  char err[512];
} fx;

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  f->e = wfp_env_new();
  wfp__buf_init(&f->rows);
  wfp__buf_init(&f->offs);
  *state = f;
  return f->e ? 0 : -1;
}

static int teardown(void **state) {
  fx *f = *state;
  wfp__buf_free(&f->rows);
  wfp__buf_free(&f->offs);
  wfp_env_free(f->e);
  free(f);
  return 0;
}

/* runs sql with params (JSON text, or NULL); returns the code */
static int q(fx *f, const char *sql, const char *params) {
  f->err[0] = 0;
  return wfp__db_query(f->e, sql, strlen(sql), params, params ? strlen(params) : 0,
                       &f->rows, &f->offs, &f->n, f->err, sizeof f->err);
}

static void rows_are(fx *f, const char *want) {
  assert_int_equal(f->rows.len, strlen(want));
  assert_memory_equal(f->rows.data, want, f->rows.len);
}

static void params_bind_exactly(void **state) {
  fx *f = *state;
  /* i64 extremes survive: they are read from the text, not via a double */
  assert_int_equal(q(f, "select ? as a, ? as b, ? as c",
                     "[9223372036854775807,-9223372036854775808,9007199254740993]"), 0);
  rows_are(f, "[{\"a\":9223372036854775807,\"b\":-9223372036854775808,\"c\":9007199254740993}]");
  assert_int_equal(q(f, "select typeof(?) as t, ? * 2 as d, ? as e", "[1.5, 1e1, 0.1]"), 0);
  /* reals print as the shortest text that reads back the same */
  rows_are(f, "[{\"t\":\"real\",\"d\":20,\"e\":0.1}]");
  /* strings with escapes and non-ASCII, null, booleans, JSON as its text */
  assert_int_equal(q(f, "select ? as s, ? as n, ? as t, ? as u, ? as j",
                     "[\"a\\\"b\\n\\u00e9\", null, true, false, {\"k\": [1, 2]}]"), 0);
  rows_are(f, "[{\"s\":\"a\\\"b\\n\xc3\xa9\",\"n\":null,\"t\":1,\"u\":0,\"j\":\"{\\\"k\\\": [1, 2]}\"}]");
  /* no parameters: an empty array, or none at all */
  assert_int_equal(q(f, "select 1 as one", "[]"), 0);
  rows_are(f, "[{\"one\":1}]");
  assert_int_equal(q(f, "select 1 as one", NULL), 0);
  assert_int_equal(f->n, 1);
}

static void every_column_type(void **state) {
  fx *f = *state;
  assert_int_equal(q(f, "create table t(i integer, r real, s text, b blob, n)", "[]"), 0);
  rows_are(f, "[]");
  assert_int_equal(f->n, 0);
  assert_int_equal(q(f, "insert into t values (?, ?, ?, x'00ff10', null)", "[-7, 0.25, \"x\"]"), 0);
  assert_int_equal(q(f, "insert into t values (1, 1e999, '', x'', null)", "[]"), 0);
  assert_int_equal(q(f, "select * from t order by i", "[]"), 0);
  /* blobs are base64; an infinite real is null (JSON has none) */
  rows_are(f, "[{\"i\":-7,\"r\":0.25,\"s\":\"x\",\"b\":\"AP8Q\",\"n\":null},"
              "{\"i\":1,\"r\":null,\"s\":\"\",\"b\":\"\",\"n\":null}]");
  assert_int_equal(f->n, 2);
  /* the offsets delimit each row's object */
  size_t se[4];
  assert_int_equal(f->offs.len, sizeof se);
  memcpy(se, f->offs.data, sizeof se);
  assert_int_equal(se[0], 1);
  assert_int_equal(f->rows.data[se[1] - 1], '}');
  assert_int_equal(f->rows.data[se[1]], ',');
  assert_int_equal(se[2], se[1] + 1);
  assert_int_equal(se[3], f->rows.len - 1);
}

static void faults_are_messages(void **state) {
  fx *f = *state;
  assert_int_equal(q(f, "select * from nope", "[]"), WFP_EINVAL);
  assert_string_equal(f->err, "no such table: nope");
  assert_int_equal(q(f, "select 1; select 2", "[]"), WFP_EINVAL);
  assert_string_equal(f->err, "the SQL text holds more than one statement");
  /* what follows the statement may be blank or a comment */
  assert_int_equal(q(f, "select 1 as x;  -- done\n", "[]"), 0);
  rows_are(f, "[{\"x\":1}]");
  assert_int_equal(q(f, "  -- nothing\n", "[]"), WFP_EINVAL);
  assert_string_equal(f->err, "the SQL text holds no statement");
  assert_int_equal(q(f, "select ?, ?", "[1]"), WFP_EINVAL);
  assert_string_equal(f->err, "1 parameters given, the statement has 2");
  assert_int_equal(q(f, "select ?", "[1, 2]"), WFP_EINVAL);
  assert_string_equal(f->err, "2 parameters given, the statement has 1");
  assert_int_equal(q(f, "select ?", NULL), WFP_EINVAL);
  assert_string_equal(f->err, "no parameters given, the statement has 1");
  assert_int_equal(q(f, "select ?", "{\"a\":1}"), WFP_EINVAL);
  assert_string_equal(f->err, "the parameters are not a JSON array");
  /* text that is not UTF-8 cannot become a JSON string */
  assert_int_equal(q(f, "select cast(x'ff' as text) as bad", "[]"), WFP_EINVAL);
  assert_string_equal(f->err, "column 'bad' holds text that is not valid UTF-8");
  /* a fault at run time, after rows: the query fails as a whole */
  assert_int_equal(q(f, "create table u(a unique)", "[]"), 0);
  assert_int_equal(q(f, "insert into u values (1)", "[]"), 0);
  assert_int_equal(q(f, "insert into u values (1)", "[]"), WFP_EINVAL);
  assert_non_null(strstr(f->err, "UNIQUE constraint failed"));
}

static void files_and_opening(void **state) {
  fx *f = *state;
  char err[256];
  assert_int_equal(wfp_env_open_db(f->e, "/nonexistent-dir/x/y.db", err, sizeof err), WFP_EIO);
  assert_non_null(strstr(err, "cannot open the database '/nonexistent-dir/x/y.db'"));
  /* the env keeps working on its previous database after a failed open */
  assert_int_equal(q(f, "select 2 as two", "[]"), 0);
  rows_are(f, "[{\"two\":2}]");
  char path[] = "/tmp/wfp-test-db-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(wfp_env_open_db(f->e, path, err, sizeof err), 0);
  assert_int_equal(q(f, "create table k(v)", "[]"), 0);
  assert_int_equal(q(f, "insert into k values (?)", "[42]"), 0);
  /* another environment opening the same file sees the row */
  wfp_env *e2 = wfp_env_new();
  assert_int_equal(wfp_env_open_db(e2, path, err, sizeof err), 0);
  wfp__buf rows;
  wfp__buf_init(&rows);
  size_t n;
  assert_int_equal(wfp__db_query(e2, "select v from k", 15, "[]", 2, &rows, NULL, &n, err,
                                 sizeof err), 0);
  assert_int_equal(n, 1);
  assert_memory_equal(rows.data, "[{\"v\":42}]", rows.len);
  wfp__buf_free(&rows);
  wfp_env_free(e2);
  unlink(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(params_bind_exactly, setup, teardown),
      cmocka_unit_test_setup_teardown(every_column_type, setup, teardown),
      cmocka_unit_test_setup_teardown(faults_are_messages, setup, teardown),
      cmocka_unit_test_setup_teardown(files_and_opening, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
