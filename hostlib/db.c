/*
** db.c: the db_query effect on SQLite. The guest sends the SQL text and its
** parameters as a JSON array; the host binds them (i64 exactly: they are
** read from the text, not through a double), runs the one statement and
** answers with the rows as JSON objects, column name to value.
*/
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlfcn.h>
#include <pthread.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "host_int.h"

/* ---- SQLite, loaded at the first database use ----
** Most invocations never query: linking libsqlite3 would make every host
** process map and relocate it at start (a third of wfp-host's start time),
** so it is opened with dlopen when the first database is. */

#define SQLITE_SONAME "libsqlite3.so.0" /* SQLite 3's ABI, stable since 2004 */

#define SQLITE_FNS(X) \
  X(bind_double) \
  X(bind_int64) \
  X(bind_null) \
  X(bind_parameter_count) \
  X(bind_text) \
  X(busy_timeout) \
  X(close) \
  X(column_blob) \
  X(column_bytes) \
  X(column_count) \
  X(column_double) \
  X(column_int64) \
  X(column_name) \
  X(column_text) \
  X(column_type) \
  X(errmsg) \
  X(errstr) \
  X(finalize) \
  X(open_v2) \
  X(prepare_v2) \
  X(step)

static struct {
#define X(n) __typeof__(sqlite3_##n) *n;
  SQLITE_FNS(X)
#undef X
} S;
static pthread_once_t S_once = PTHREAD_ONCE_INIT;
static char S_error[256]; /* why loading failed, or "" */

/* WFP_SQLITE may name another build of the library (a path or a soname) */
static void S_load(void) {
  const char *lib = getenv("WFP_SQLITE");
  if (!lib || !*lib)
    lib = SQLITE_SONAME;
  void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *e = dlerror();
    snprintf(S_error, sizeof S_error, "%s", e ? e : "the library was not found");
    return;
  }
#define X(n)                                                                   \
  if (!(S.n = (__typeof__(S.n))dlsym(h, "sqlite3_" #n))) {                    \
    snprintf(S_error, sizeof S_error, "%s has no sqlite3_%s", lib, #n);       \
    return;                                                                    \
  }
  SQLITE_FNS(X)
#undef X
}

/* 0 when SQLite is there, else WFP_EIO with the reason in err */
static int S_ready(char *err, size_t errlen) {
  pthread_once(&S_once, S_load);
  if (!S_error[0])
    return WFP_OK;
  if (err && errlen)
    snprintf(err, errlen, "cannot load SQLite: %s", S_error);
  return WFP_EIO;
}

int wfp_env_open_db(wfp_env *e, const char *path, char *err, size_t errlen) {
  if (!e)
    return WFP_EINVAL;
  if (!path || !*path)
    path = ":memory:";
  int ready = S_ready(err, errlen);
  if (ready)
    return ready;
  sqlite3 *db = NULL;
  int rc = S.open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
  if (rc != SQLITE_OK) {
    if (err && errlen)
      snprintf(err, errlen, "cannot open the database '%s': %s", path,
               db ? S.errmsg(db) : S.errstr(rc));
    S.close(db);
    return rc == SQLITE_NOMEM ? WFP_ENOMEM : WFP_EIO;
  }
  /* another process may hold the database a moment (several hosts on one
  ** file): wait for it rather than fail the query at once */
  S.busy_timeout(db, 5000);
  /* a file's path travels in checkpoints, so that a resumed invocation
  ** queries the same database; an in-memory one cannot travel */
  char *keep = NULL;
  if (strcmp(path, ":memory:") != 0 && !(keep = realpath(path, NULL)) &&
      (errno == ENOMEM || !(keep = strdup(path)))) {
    S.close(db);
    if (err && errlen)
      snprintf(err, errlen, "out of memory");
    return WFP_ENOMEM;
  }
  wfp__env_close_db(e);
  e->db = db;
  e->db_path = keep;
  return WFP_OK;
}

void wfp__env_close_db(wfp_env *e) {
  if (e->db) /* an open database means SQLite was loaded */
    S.close(e->db);
  e->db = NULL;
  free(e->db_path);
  e->db_path = NULL;
}

/* ---- the parameters: a JSON array, element by element ---- */

static size_t ws(const char *s, size_t i, size_t n) {
  while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
    i++;
  return i;
}

/* The end of the JSON value starting at s[i] (the guest wrote valid JSON;
** this only finds where each element ends), or 0. */
static size_t value_end(const char *s, size_t i, size_t n) {
  int depth = 0;
  bool in_str = false;
  for (size_t k = i; k < n; k++) {
    char c = s[k];
    if (in_str) {
      if (c == '\\')
        k++;
      else if (c == '"') {
        in_str = false;
        if (depth == 0)
          return k + 1;
      }
      continue;
    }
    if (c == '"') {
      in_str = true;
    } else if (c == '{' || c == '[') {
      depth++;
    } else if (c == '}' || c == ']') {
      if (depth == 0)
        return k; /* the end of the enclosing array */
      if (--depth == 0)
        return k + 1;
    } else if (depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
      return k;
    }
  }
  return depth == 0 && !in_str ? n : 0;
}

static int bind_one(sqlite3_stmt *st, int idx, const char *v, size_t n, char *err,
                    size_t errlen) {
  int rc;
  if (n == 4 && memcmp(v, "null", 4) == 0) {
    rc = S.bind_null(st, idx);
  } else if (n == 4 && memcmp(v, "true", 4) == 0) {
    rc = S.bind_int64(st, idx, 1);
  } else if (n == 5 && memcmp(v, "false", 5) == 0) {
    rc = S.bind_int64(st, idx, 0);
  } else if (v[0] == '"') {
    cJSON *j;
    if (wfp__json_parse(v, n, &j) == WFP_ENOMEM) {
      snprintf(err, errlen, "out of memory");
      return WFP_ENOMEM;
    }
    if (!cJSON_IsString(j)) {
      cJSON_Delete(j);
      snprintf(err, errlen, "parameter %d is not a valid JSON string", idx);
      return WFP_EINVAL;
    }
    rc = S.bind_text(st, idx, j->valuestring, -1, SQLITE_TRANSIENT);
    cJSON_Delete(j);
  } else if (v[0] == '{' || v[0] == '[') {
    /* a json object or array binds as its text */
    rc = S.bind_text(st, idx, v, (int)n, SQLITE_TRANSIENT);
  } else {
    char buf[64];
    if (n >= sizeof buf) {
      snprintf(err, errlen, "parameter %d is not a number", idx);
      return WFP_EINVAL;
    }
    memcpy(buf, v, n);
    buf[n] = 0;
    bool integral = strcspn(buf, ".eE") == n;
    char *end;
    errno = 0;
    long long ll = integral ? strtoll(buf, &end, 10) : 0;
    if (integral && errno == 0 && *end == 0) {
      rc = S.bind_int64(st, idx, (sqlite3_int64)ll);
    } else {
      double d = strtod(buf, &end);
      if (*end) {
        snprintf(err, errlen, "parameter %d is not a number", idx);
        return WFP_EINVAL;
      }
      rc = S.bind_double(st, idx, d);
    }
  }
  if (rc == SQLITE_RANGE) {
    snprintf(err, errlen, "%d parameters given, the statement has %d", idx,
             S.bind_parameter_count(st));
    return WFP_EINVAL;
  }
  if (rc != SQLITE_OK) {
    snprintf(err, errlen, "parameter %d: %s", idx, S.errstr(rc));
    return rc == SQLITE_NOMEM ? WFP_ENOMEM : WFP_EINVAL;
  }
  return WFP_OK;
}

static int bind_all(sqlite3_stmt *st, const char *p, size_t n, char *err, size_t errlen) {
  size_t i = ws(p, 0, n);
  if (i == n || (n - i == 4 && memcmp(p + i, "null", 4) == 0))
    goto count;
  if (p[i] != '[') {
    snprintf(err, errlen, "the parameters are not a JSON array");
    return WFP_EINVAL;
  }
  i = ws(p, i + 1, n);
  int idx = 0;
  while (i < n && p[i] != ']') {
    size_t e = value_end(p, i, n);
    if (!e || e == i) {
      snprintf(err, errlen, "the parameters are not a JSON array");
      return WFP_EINVAL;
    }
    int rc = bind_one(st, ++idx, p + i, e - i, err, errlen);
    if (rc)
      return rc;
    i = ws(p, e, n);
    if (i < n && p[i] == ',')
      i = ws(p, i + 1, n);
  }
  if (idx != S.bind_parameter_count(st)) {
    snprintf(err, errlen, "%d parameters given, the statement has %d", idx,
             S.bind_parameter_count(st));
    return WFP_EINVAL;
  }
  return WFP_OK;
count:
  if (S.bind_parameter_count(st)) {
    snprintf(err, errlen, "no parameters given, the statement has %d",
             S.bind_parameter_count(st));
    return WFP_EINVAL;
  }
  return WFP_OK;
}

/* ---- the rows ---- */

static int add_column(wfp__buf *b, sqlite3_stmt *st, int c, char *err, size_t errlen) {
  switch (S.column_type(st, c)) {
  case SQLITE_INTEGER:
    wfp__buf_add_i64(b, (int64_t)S.column_int64(st, c));
    break;
  case SQLITE_FLOAT: {
    double d = S.column_double(st, c);
    if (isfinite(d)) {
      /* the shortest text that reads back as the same double */
      char t[40];
      for (int prec = 15; prec <= 17; prec++) {
        snprintf(t, sizeof t, "%.*g", prec, d);
        if (strtod(t, NULL) == d)
          break;
      }
      wfp__buf_adds(b, t);
    } else
      wfp__buf_adds(b, "null"); /* JSON has no infinities */
    break;
  }
  case SQLITE_TEXT: {
    const char *t = (const char *)S.column_text(st, c);
    size_t n = (size_t)S.column_bytes(st, c);
    if (!t && n)
      return WFP_ENOMEM;
    if (!wfp__utf8_valid(t ? t : "", n)) {
      snprintf(err, errlen, "column '%s' holds text that is not valid UTF-8",
               S.column_name(st, c));
      return WFP_EINVAL;
    }
    wfp__buf_add_jstr(b, t ? t : "", n);
    break;
  }
  case SQLITE_BLOB: {
    /* bytes as a base64 string: JSON has no byte strings */
    const void *p = S.column_blob(st, c);
    size_t n = (size_t)S.column_bytes(st, c);
    if (!p && n)
      return WFP_ENOMEM;
    wfp__buf_addc(b, '"');
    wfp__buf_add_base64(b, p, n);
    wfp__buf_addc(b, '"');
    break;
  }
  default:
    wfp__buf_adds(b, "null");
    break;
  }
  return WFP_OK;
}

int wfp__db_query(wfp_env *e, const char *sql, size_t sql_len, const char *params,
                  size_t params_len, wfp__buf *rows, wfp__buf *offs, size_t *nrows,
                  char *err, size_t errlen) {
  *nrows = 0;
  if (!e->db) {
    int rc = wfp_env_open_db(e, NULL, err, errlen);
    if (rc)
      return rc;
  }
  if (sql_len > 0x7fffffff) {
    snprintf(err, errlen, "the SQL text is too long");
    return WFP_EINVAL;
  }
  sqlite3_stmt *st = NULL;
  const char *tail = NULL;
  int rc = S.prepare_v2(e->db, sql, (int)sql_len, &st, &tail);
  if (rc != SQLITE_OK) {
    snprintf(err, errlen, "%s", S.errmsg(e->db));
    return rc == SQLITE_NOMEM ? WFP_ENOMEM : WFP_EINVAL;
  }
  if (!st) {
    snprintf(err, errlen, "the SQL text holds no statement");
    return WFP_EINVAL;
  }
  /* one statement per query: what follows it would silently not run */
  if (tail && tail < sql + sql_len) {
    sqlite3_stmt *more = NULL;
    const char *t2 = NULL;
    int r2 = S.prepare_v2(e->db, tail, (int)(sql + sql_len - tail), &more, &t2);
    S.finalize(more);
    if (r2 != SQLITE_OK || more) {
      S.finalize(st);
      snprintf(err, errlen, "the SQL text holds more than one statement");
      return WFP_EINVAL;
    }
  }
  int r = bind_all(st, params ? params : "", params ? params_len : 0, err, errlen);
  rows->len = 0;
  rows->oom = false;
  wfp__buf_addc(rows, '[');
  int ncols = S.column_count(st);
  while (!r && (rc = S.step(st)) == SQLITE_ROW) {
    if (*nrows)
      wfp__buf_addc(rows, ',');
    size_t start = rows->len;
    wfp__buf_addc(rows, '{');
    for (int c = 0; c < ncols && !r; c++) {
      const char *name = S.column_name(st, c);
      if (!name) {
        r = WFP_ENOMEM;
        break;
      }
      if (c)
        wfp__buf_addc(rows, ',');
      wfp__buf_add_jstr(rows, name, strlen(name));
      wfp__buf_addc(rows, ':');
      r = add_column(rows, st, c, err, errlen);
    }
    wfp__buf_addc(rows, '}');
    if (offs) {
      size_t se[2] = {start, rows->len};
      wfp__buf_add(offs, se, sizeof se);
      if (offs->oom)
        r = WFP_ENOMEM;
    }
    (*nrows)++;
    if (rows->oom)
      r = WFP_ENOMEM;
  }
  if (!r && rc != SQLITE_DONE) {
    snprintf(err, errlen, "%s", S.errmsg(e->db));
    r = rc == SQLITE_NOMEM ? WFP_ENOMEM : WFP_EINVAL;
  }
  S.finalize(st);
  wfp__buf_addc(rows, ']');
  if (!r && rows->oom)
    r = WFP_ENOMEM;
  if (r == WFP_ENOMEM)
    snprintf(err, errlen, "out of memory");
  return r;
}
