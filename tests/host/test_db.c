/*
** test_db.c: db_query's host side on real SQLite: parameters bound exactly
** from the guest's JSON array, rows written as JSON with every column type,
** one statement per query, the faults a program sees as messages, the
** authorizer (the program's own database, nothing else), and the limits
** (fuel, result bytes).
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
  uint64_t fuel, used; /* what the next query may use, and what it used */
  char err[512];
} fx;

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  f->e = wfp_env_new();
  wfp__buf_init(&f->rows);
  wfp__buf_init(&f->offs);
  f->fuel = WFP_DB_QUERY_FUEL_MAX;
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
                       f->fuel, &f->used, &f->rows, &f->offs, &f->n, f->err, sizeof f->err);
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
  uint64_t used;
  assert_int_equal(wfp__db_query(e2, "select v from k", 15, "[]", 2, 100, &used, &rows, NULL,
                                 &n, err, sizeof err), 0);
  assert_int_equal(n, 1);
  assert_memory_equal(rows.data, "[{\"v\":42}]", rows.len);
  wfp__buf_free(&rows);
  wfp_env_free(e2);
  unlink(path);
}

/* sql is refused by the authorizer with a message containing why */
static void refused_p(fx *f, const char *sql, const char *params, const char *why) {
  assert_int_equal(q(f, sql, params), WFP_EINVAL);
  if (!strstr(f->err, why))
    fail_msg("%s: got '%s', expected '%s'", sql, f->err, why);
}

static void refused(fx *f, const char *sql, const char *why) { refused_p(f, sql, NULL, why); }

static bool exists(const char *path) { return access(path, F_OK) == 0; }

static void only_its_own_database(void **state) {
  fx *f = *state;
  char dir[] = "/tmp/wfp-test-auth-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char file[sizeof dir + 16], sql[sizeof dir + 64];
  snprintf(file, sizeof file, "%s/out.db", dir);
  assert_int_equal(q(f, "create table t(a integer, b text)", NULL), 0);
  assert_int_equal(q(f, "insert into t values (1, 'x')", NULL), 0);
  /* files of the host: neither attached nor written */
  snprintf(sql, sizeof sql, "attach '%s' as other", file);
  refused(f, sql, "ATTACH is not allowed");
  snprintf(sql, sizeof sql, "vacuum into '%s'", file);
  refused(f, sql, "VACUUM INTO is not allowed");
  /* a bound name changes nothing */
  char params[sizeof file + 8];
  snprintf(params, sizeof params, "[\"%s\"]", file);
  refused_p(f, "vacuum into ?", params, "VACUUM INTO is not allowed");
  assert_false(exists(file));
  refused(f, "detach main", "DETACH is not allowed");
  refused(f, "select load_extension('/lib/x.so')", "load_extension() is not allowed");
  /* a transaction cannot span a suspension */
  refused(f, "begin", "BEGIN is not allowed");
  refused(f, "commit", "COMMIT is not allowed");
  refused(f, "savepoint s", "SAVEPOINT is not allowed");
  /* pragmas: settings and files stay as they are; harmless reads pass */
  refused(f, "pragma writable_schema = 1", "PRAGMA writable_schema is not allowed");
  refused(f, "pragma temp_store_directory = '/tmp'", "PRAGMA temp_store_directory is not allowed");
  refused(f, "pragma journal_mode = off", "PRAGMA journal_mode is not allowed: a program may read it");
  refused(f, "pragma user_version = 7", "PRAGMA user_version is not allowed: a program may read it");
  refused(f, "pragma main.synchronous = 0", "PRAGMA synchronous is not allowed");
  refused(f, "create virtual table d using dbstat", "module 'dbstat' are not allowed");
  /* a refused statement after the first is still more than one */
  assert_int_equal(q(f, "select 1; attach 'x' as y", NULL), WFP_EINVAL);
  assert_string_equal(f->err, "the SQL text holds more than one statement");
  assert_int_equal(q(f, "pragma user_version", NULL), 0);
  rows_are(f, "[{\"user_version\":0}]");
  assert_int_equal(q(f, "pragma table_info(t)", NULL), 0);
  assert_int_equal(f->n, 2);
  assert_int_equal(q(f, "select name from pragma_table_info('t') order by cid", NULL), 0);
  rows_are(f, "[{\"name\":\"a\"},{\"name\":\"b\"}]");
  /* what a program does to its own database passes */
  assert_int_equal(q(f, "create index ti on t(b)", NULL), 0);
  assert_int_equal(q(f, "create view v as select a * 2 as d from t", NULL), 0);
  assert_int_equal(q(f, "create trigger tr after insert on t begin update t set b = upper(b) "
                        "where a = new.a; end", NULL), 0);
  assert_int_equal(q(f, "alter table t add column c", NULL), 0);
  assert_int_equal(q(f, "insert into t(a, b) values (2, 'y')", NULL), 0);
  assert_int_equal(q(f, "select b from t where a = 2", NULL), 0);
  rows_are(f, "[{\"b\":\"Y\"}]");
  assert_int_equal(q(f, "with recursive c(x) as (select 1 union all select x + 1 from c "
                        "where x < 5) select sum(x) as s from c", NULL), 0);
  rows_are(f, "[{\"s\":15}]");
  assert_int_equal(q(f, "select json_extract('{\"k\":[1,2]}', '$.k[1]') as j", NULL), 0);
  rows_are(f, "[{\"j\":2}]");
  assert_int_equal(q(f, "create virtual table doc using fts5(body)", NULL), 0);
  assert_int_equal(q(f, "insert into doc values ('the quick fox'), ('a lazy dog')", NULL), 0);
  assert_int_equal(q(f, "select body from doc where doc match 'fox'", NULL), 0);
  rows_are(f, "[{\"body\":\"the quick fox\"}]");
  assert_int_equal(q(f, "drop table doc", NULL), 0);
  assert_int_equal(q(f, "analyze", NULL), 0);
  assert_int_equal(q(f, "reindex", NULL), 0);
  assert_int_equal(q(f, "drop view v", NULL), 0);
  /* VACUUM of its own database works (SQLite's scratch copy is no file of
  ** the program's choosing), on a file too */
  assert_int_equal(q(f, "vacuum", NULL), 0);
  snprintf(file, sizeof file, "%s/own.db", dir);
  char err[256];
  assert_int_equal(wfp_env_open_db(f->e, file, err, sizeof err), 0);
  assert_int_equal(q(f, "create table k(v)", NULL), 0);
  assert_int_equal(q(f, "vacuum", NULL), 0);
  snprintf(sql, sizeof sql, "vacuum into '%s/copy.db'", dir);
  refused(f, sql, "VACUUM INTO is not allowed");
  snprintf(file, sizeof file, "%s/copy.db", dir);
  assert_false(exists(file));
  wfp__env_close_db(f->e);
  snprintf(file, sizeof file, "%s/own.db", dir);
  unlink(file);
  rmdir(dir);
}

static const char forever[] =
    "with recursive c(x) as (select 1 union all select x + 1 from c) select count(*) from c";

static void queries_run_on_fuel(void **state) {
  fx *f = *state;
  /* a runaway query stops when its fuel is spent */
  f->fuel = 50;
  assert_int_equal(q(f, forever, NULL), WFP_ELIMIT);
  assert_string_equal(f->err, "the query ran out of fuel: it may use 50 units (one per 1000 "
                              "SQLite instructions)");
  assert_int_equal(f->used, 51);
  /* with the default budget too */
  f->fuel = WFP_DB_QUERY_FUEL_MAX;
  assert_int_equal(q(f, forever, NULL), WFP_ELIMIT);
  assert_int_equal(f->used, WFP_DB_QUERY_FUEL_MAX + 1);
  /* the connection works on afterwards; a small query costs less than a
  ** unit, so it runs on no fuel at all */
  f->fuel = 0;
  assert_int_equal(q(f, "select 6 * 7 as x", NULL), 0);
  rows_are(f, "[{\"x\":42}]");
  assert_int_equal(f->used, 0);
  /* the fuel counts what SQLite did: more work, more units */
  f->fuel = 1000;
  assert_int_equal(q(f, "with recursive c(x) as (select 1 union all select x + 1 from c "
                        "where x < 20000) select count(*) as n from c", NULL), 0);
  rows_are(f, "[{\"n\":20000}]");
  assert_true(f->used > 10 && f->used < 1000);
}

static void results_are_bounded(void **state) {
  fx *f = *state;
  /* an endless result set of 100 kB rows: stopped at the limit, not at the
  ** end of the host's memory */
  assert_int_equal(q(f, "with recursive c(x) as (select 1 union all select x + 1 from c) "
                        "select x, printf('%.*c', 100000, 'y') as pad from c", NULL),
                   WFP_ELIMIT);
  assert_string_equal(f->err, "the result is larger than 16777216 bytes, the most one query "
                              "may return");
  assert_true(f->rows.len <= WFP_DB_RESULT_MAX + 200000);
  /* one value cannot be larger than a whole result */
  assert_int_equal(q(f, "select length(zeroblob(16777217)) as n", NULL), WFP_EINVAL);
  assert_string_equal(f->err, "string or blob too big");
  assert_int_equal(q(f, "select length(zeroblob(1000)) as n", NULL), 0);
  rows_are(f, "[{\"n\":1000}]");
}

static void text_with_nul(void **state) {
  fx *f = *state;
  /* a string parameter is bound whole, U+0000 and what follows included */
  assert_int_equal(q(f, "select ? as s, hex(?) as h", "[\"a\\u0000b\", \"a\\u0000b\"]"), 0);
  rows_are(f, "[{\"s\":\"a\\u0000b\",\"h\":\"610062\"}]");
  assert_int_equal(q(f, "create table s(v text)", NULL), 0);
  assert_int_equal(q(f, "insert into s values (?)", "[\"\\u0000\\u0000x\"]"), 0);
  assert_int_equal(q(f, "select hex(v) as h from s", NULL), 0);
  rows_are(f, "[{\"h\":\"000078\"}]");
  /* escapes beyond the basic plane decode exactly */
  assert_int_equal(q(f, "select hex(?) as h", "[\"\\ud83d\\ude00\\u00e9\"]"), 0);
  rows_are(f, "[{\"h\":\"F09F9880C3A9\"}]");
  /* SQL text with a NUL would be cut there: refused */
  assert_int_equal(wfp__db_query(f->e, "select 1\0; drop table s", 23, NULL, 0, 100, &f->used,
                                 &f->rows, NULL, &f->n, f->err, sizeof f->err), WFP_EINVAL);
  assert_string_equal(f->err, "the SQL text contains a NUL character");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(params_bind_exactly, setup, teardown),
      cmocka_unit_test_setup_teardown(every_column_type, setup, teardown),
      cmocka_unit_test_setup_teardown(faults_are_messages, setup, teardown),
      cmocka_unit_test_setup_teardown(files_and_opening, setup, teardown),
      cmocka_unit_test_setup_teardown(only_its_own_database, setup, teardown),
      cmocka_unit_test_setup_teardown(queries_run_on_fuel, setup, teardown),
      cmocka_unit_test_setup_teardown(results_are_bounded, setup, teardown),
      cmocka_unit_test_setup_teardown(text_with_nul, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
