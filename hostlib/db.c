/*
** db.c: the db_query effect on SQLite. The guest sends the SQL text and its
** parameters as a JSON array; the host binds them (i64 exactly: they are
** read from the text, not through a double; strings with their length),
** runs the one statement under an authorizer (the program's own database,
** nothing else) and a fuel budget, and answers with the rows as JSON
** objects, column name to value, up to WFP_DB_RESULT_MAX bytes.
*/
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <dlfcn.h>
#include <pthread.h>

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
  X(db_config) \
  X(errmsg) \
  X(errstr) \
  X(finalize) \
  X(limit) \
  X(open_v2) \
  X(prepare_v2) \
  X(progress_handler) \
  X(set_authorizer) \
  X(step) \
  X(stmt_readonly)

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
  return wfp__env_open_db(e, path, true, err, errlen);
}

int wfp__env_open_db(wfp_env *e, const char *path, bool create, char *err, size_t errlen) {
  if (!e)
    return WFP_EINVAL;
  if (!path || !*path)
    path = ":memory:";
  int ready = S_ready(err, errlen);
  if (ready)
    return ready;
  sqlite3 *db = NULL;
  int rc = S.open_v2(path, &db, SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0),
                     NULL);
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
  /* defensive: no writable schema, no raw page writes; a schema (views,
  ** triggers) from the file calls no function with side effects. An older
  ** library without these options still has the authorizer. */
  S.db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
  S.db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
  S.db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, (int *)NULL);
  /* no single string or blob larger than a result may be: it bounds the
  ** memory one value takes */
  S.limit(db, SQLITE_LIMIT_LENGTH, WFP_DB_RESULT_MAX);
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

/* ---- what a program may do: the authorizer ----
** A program works on its own database: it reads and writes tables, views,
** indexes and triggers, and nothing else. Refused: ATTACH and DETACH (and
** VACUUM INTO, which attaches its target file), transactions (each
** db_query is a transaction of its own: one cannot span a suspension,
** which may resume in another process), load_extension(), virtual tables
** but full-text search and r-trees, and every PRAGMA but reads of the
** harmless ones below. docs/cli.md lists the same. */

typedef struct guard {
  bool running;        /* the statement runs: what SQLite prepares now is its own */
  bool protect;        /* tables, views, indexes and triggers named wfp_* are
                       ** refused: a service keeps its store beside the
                       ** program's tables (WFP_DB_PROTECT_STORE) */
  char why[200];       /* the first refusal, "" while none */
  uint64_t fuel, used; /* fuel units the query may use, and has used */
} guard;

/* pragmas a program may run, with a name argument or none */
static const char *const pragma_named[] = {
    "foreign_key_check", "foreign_key_list", "index_info", "index_list",
    "index_xinfo", "integrity_check", "quick_check", "table_info",
    "table_list", "table_xinfo", NULL};
/* pragmas a program may read, never set */
static const char *const pragma_read[] = {
    "application_id", "auto_vacuum", "collation_list", "compile_options",
    "data_version", "encoding", "foreign_keys", "freelist_count",
    "function_list", "journal_mode", "max_page_count", "module_list",
    "page_count", "page_size", "pragma_list", "recursive_triggers",
    "schema_version", "user_version", NULL};
static const char *const vtab_modules[] = {"fts3", "fts4", "fts5", "rtree",
                                           "rtree_i32", "geopoly", NULL};
static const char *const functions_denied[] = {"load_extension", "fts3_tokenizer", NULL};

static bool listed(const char *const *list, const char *name) {
  for (; name && *list; list++)
    if (strcasecmp(*list, name) == 0)
      return true;
  return false;
}

static int deny(guard *g, const char *fmt, const char *a) {
  if (!g->why[0])
    snprintf(g->why, sizeof g->why, fmt, a ? a : "");
  return SQLITE_DENY;
}

/* A name of the store's (wfp_...), which a protected query may not touch. */
static bool store_name(const char *name) {
  return name && strncasecmp(name, "wfp_", 4) == 0;
}

/* The table or view an action names: a1 or a2, by the action (sqlite3.h,
** "Authorizer Action Codes"); NULL for the others. */
static const char *object_of(int action, const char *a1, const char *a2) {
  switch (action) {
  case SQLITE_READ:
  case SQLITE_INSERT:
  case SQLITE_UPDATE:
  case SQLITE_DELETE:
  case SQLITE_CREATE_TABLE:
  case SQLITE_CREATE_TEMP_TABLE:
  case SQLITE_DROP_TABLE:
  case SQLITE_DROP_TEMP_TABLE:
  case SQLITE_CREATE_VIEW:
  case SQLITE_CREATE_TEMP_VIEW:
  case SQLITE_DROP_VIEW:
  case SQLITE_DROP_TEMP_VIEW:
  case SQLITE_ANALYZE:
  case SQLITE_REINDEX:
  case SQLITE_CREATE_VTABLE:
  case SQLITE_DROP_VTABLE:
    return a1;
  case SQLITE_CREATE_INDEX:
  case SQLITE_CREATE_TEMP_INDEX:
  case SQLITE_DROP_INDEX:
  case SQLITE_DROP_TEMP_INDEX:
  case SQLITE_CREATE_TRIGGER:
  case SQLITE_CREATE_TEMP_TRIGGER:
  case SQLITE_DROP_TRIGGER:
  case SQLITE_DROP_TEMP_TRIGGER:
  case SQLITE_ALTER_TABLE:
    return a2;
  default:
    return NULL;
  }
}

static int authorize(void *ud, int action, const char *a1, const char *a2,
                     const char *db, const char *trigger) {
  guard *g = ud;
  (void)db;
  (void)trigger;
  if (g->protect) {
    /* the index or trigger's own name too: the store's are wfp_ */
    const char *o = object_of(action, a1, a2);
    bool own = (action == SQLITE_CREATE_INDEX || action == SQLITE_DROP_INDEX ||
                action == SQLITE_CREATE_TRIGGER || action == SQLITE_DROP_TRIGGER) &&
               store_name(a1);
    if (store_name(o) || own)
      return deny(g, "'%s' belongs to the service's store: a program may not use the names "
                     "wfp_*", own ? a1 : o);
  }
  switch (action) {
  case SQLITE_SELECT:
  case SQLITE_READ:
  case SQLITE_INSERT:
  case SQLITE_UPDATE:
  case SQLITE_DELETE:
  case SQLITE_RECURSIVE:
  case SQLITE_CREATE_TABLE:
  case SQLITE_CREATE_INDEX:
  case SQLITE_CREATE_VIEW:
  case SQLITE_CREATE_TRIGGER:
  case SQLITE_CREATE_TEMP_TABLE:
  case SQLITE_CREATE_TEMP_INDEX:
  case SQLITE_CREATE_TEMP_VIEW:
  case SQLITE_CREATE_TEMP_TRIGGER:
  case SQLITE_DROP_TABLE:
  case SQLITE_DROP_INDEX:
  case SQLITE_DROP_VIEW:
  case SQLITE_DROP_TRIGGER:
  case SQLITE_DROP_TEMP_TABLE:
  case SQLITE_DROP_TEMP_INDEX:
  case SQLITE_DROP_TEMP_VIEW:
  case SQLITE_DROP_TEMP_TRIGGER:
  case SQLITE_ALTER_TABLE:
  case SQLITE_REINDEX:
  case SQLITE_ANALYZE:
    return SQLITE_OK;
  case SQLITE_FUNCTION:
    return listed(functions_denied, a2) ? deny(g, "%s() is not allowed", a2) : SQLITE_OK;
  case SQLITE_CREATE_VTABLE:
  case SQLITE_DROP_VTABLE:
    return listed(vtab_modules, a2)
               ? SQLITE_OK
               : deny(g, "virtual tables of module '%s' are not allowed (fts3, fts4, "
                         "fts5, rtree and geopoly are)", a2);
  case SQLITE_PRAGMA:
    if (listed(pragma_named, a1) || (listed(pragma_read, a1) && !a2))
      return SQLITE_OK;
    return deny(g, listed(pragma_read, a1)
                       ? "PRAGMA %s is not allowed: a program may read it, not set it"
                       : "PRAGMA %s is not allowed (docs/cli.md lists the pragmas a "
                         "program may read)", a1);
  case SQLITE_TRANSACTION:
  case SQLITE_SAVEPOINT:
    /* VACUUM runs its own transaction */
    if (g->running)
      return SQLITE_OK;
    return deny(g, "%s is not allowed: each db_query is a transaction of its own",
                action == SQLITE_SAVEPOINT ? "SAVEPOINT" : a1);
  case SQLITE_ATTACH:
    /* VACUUM copies the database through a scratch one it attaches with
    ** an empty name; VACUUM INTO attaches the file it writes */
    if (g->running && a1 && !a1[0])
      return SQLITE_OK;
    return deny(g, "%s is not allowed: a program works on its own database only",
                g->running ? "VACUUM INTO" : "ATTACH");
  case SQLITE_DETACH:
    if (g->running)
      return SQLITE_OK;
    return deny(g, "%s is not allowed: a program works on its own database only",
                "DETACH");
  default:
    return deny(g, "this statement is not allowed%s", "");
  }
}

/* every 1,000 virtual-machine instructions: one unit of fuel */
#define FUEL_INSTRUCTIONS 1000

static int progress(void *ud) {
  guard *g = ud;
  return ++g->used > g->fuel;
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
    /* bound with its length: a U+0000 inside is part of the text */
    wfp__buf t;
    wfp__buf_init(&t);
    if (wfp__json_string(v, 0, n, &t) != n && !t.oom) {
      wfp__buf_free(&t);
      snprintf(err, errlen, "parameter %d is not a valid JSON string", idx);
      return WFP_EINVAL;
    }
    if (t.oom || t.len > 0x7fffffff) {
      bool oom = t.oom; /* wfp__buf_free clears it */
      wfp__buf_free(&t);
      snprintf(err, errlen, "parameter %d: %s", idx, oom ? "out of memory" : "too long");
      return oom ? WFP_ENOMEM : WFP_EINVAL;
    }
    rc = S.bind_text(st, idx, t.data ? t.data : "", (int)t.len, SQLITE_TRANSIENT);
    wfp__buf_free(&t);
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

/* The SQLite error of a failed prepare or step: the authorizer's words
** when it refused, the fuel when the progress handler stopped it. */
static int query_error(sqlite3 *db, const guard *g, int rc, char *err, size_t errlen) {
  if (g->why[0]) {
    snprintf(err, errlen, "%s", g->why);
    return WFP_EINVAL;
  }
  if (rc == SQLITE_INTERRUPT && g->used > g->fuel) {
    snprintf(err, errlen,
             "the query ran out of fuel: it may use %llu units (one per %d SQLite "
             "instructions)",
             (unsigned long long)g->fuel, FUEL_INSTRUCTIONS);
    return WFP_ELIMIT;
  }
  snprintf(err, errlen, "%s", S.errmsg(db));
  return rc == SQLITE_NOMEM ? WFP_ENOMEM : WFP_EINVAL;
}

static int run(sqlite3 *db, guard *g, const char *sql, size_t sql_len, const char *params,
               size_t params_len, wfp__buf *rows, wfp__buf *offs, size_t *nrows,
               bool *readonly, char *err, size_t errlen) {
  if (sql_len > 0x7fffffff) {
    snprintf(err, errlen, "the SQL text is too long");
    return WFP_EINVAL;
  }
  /* SQLite would stop reading at a NUL and silently skip what follows */
  if (memchr(sql, 0, sql_len)) {
    snprintf(err, errlen, "the SQL text contains a NUL character");
    return WFP_EINVAL;
  }
  sqlite3_stmt *st = NULL;
  const char *tail = NULL;
  int rc = S.prepare_v2(db, sql, (int)sql_len, &st, &tail);
  if (rc != SQLITE_OK)
    return query_error(db, g, rc, err, errlen);
  if (!st) {
    snprintf(err, errlen, "the SQL text holds no statement");
    return WFP_EINVAL;
  }
  /* one statement per query: what follows it would silently not run */
  if (tail && tail < sql + sql_len) {
    sqlite3_stmt *more = NULL;
    const char *t2 = NULL;
    guard quiet = *g; /* a refusal of the next statement is not the answer */
    S.set_authorizer(db, authorize, &quiet);
    int r2 = S.prepare_v2(db, tail, (int)(sql + sql_len - tail), &more, &t2);
    S.set_authorizer(db, authorize, g);
    S.finalize(more);
    if (more || r2 != SQLITE_OK) {
      S.finalize(st);
      snprintf(err, errlen, "the SQL text holds more than one statement");
      return WFP_EINVAL;
    }
  }
  int r = bind_all(st, params ? params : "", params ? params_len : 0, err, errlen);
  *readonly = S.stmt_readonly(st) != 0;
  g->running = true;
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
      /* an endless result set ends here, not in the host's memory */
      if (!r && rows->len > WFP_DB_RESULT_MAX) {
        snprintf(err, errlen,
                 "the result is larger than %d bytes, the most one query may return",
                 WFP_DB_RESULT_MAX);
        r = WFP_ELIMIT;
      }
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
  if (!r && rc != SQLITE_DONE)
    r = query_error(db, g, rc, err, errlen);
  S.finalize(st);
  wfp__buf_addc(rows, ']');
  if (!r && rows->oom)
    r = WFP_ENOMEM;
  return r;
}

int wfp__db_query_on(struct sqlite3 *db, unsigned flags, const char *sql, size_t sql_len,
                     const char *params, size_t params_len, uint64_t fuel, uint64_t *used,
                     wfp__buf *rows, wfp__buf *offs, size_t *nrows, bool *readonly, char *err,
                     size_t errlen) {
  *nrows = 0;
  *used = 0;
  *readonly = true;
  int ready = S_ready(err, errlen);
  if (ready)
    return ready;
  /* the guard lives for this query: the connection holds no pointer to it
  ** afterwards */
  guard g;
  memset(&g, 0, sizeof g);
  g.fuel = fuel;
  g.protect = (flags & WFP_DB_PROTECT_STORE) != 0;
  S.set_authorizer(db, authorize, &g);
  S.progress_handler(db, FUEL_INSTRUCTIONS, progress, &g);
  int r = run(db, &g, sql, sql_len, params, params_len, rows, offs, nrows, readonly, err,
              errlen);
  S.progress_handler(db, 0, NULL, NULL);
  S.set_authorizer(db, NULL, NULL);
  *used = g.used;
  if (r == WFP_ENOMEM)
    snprintf(err, errlen, "out of memory");
  return r;
}

int wfp__db_query(wfp_env *e, const char *sql, size_t sql_len, const char *params,
                  size_t params_len, uint64_t fuel, uint64_t *used, wfp__buf *rows,
                  wfp__buf *offs, size_t *nrows, char *err, size_t errlen) {
  *nrows = 0;
  *used = 0;
  bool readonly;
  if (!e->db) {
    int rc = wfp_env_open_db(e, NULL, err, errlen);
    if (rc)
      return rc;
  }
  return wfp__db_query_on(e->db, 0, sql, sql_len, params, params_len, fuel, used, rows, offs,
                          nrows, &readonly, err, errlen);
}
