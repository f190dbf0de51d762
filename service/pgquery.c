/*
** pgquery.c: db_query on PostgreSQL. A program's statement is read once
** (comments, literals, quoted names, dollar quotes) to refuse what would
** reach past its own tables (transaction control, role and setting
** changes, dynamic SQL, server files, the store's names) and to number
** its '?' placeholders; it then runs under the role wfp_program in the
** store's transaction (a savepoint around it), or on a database of its
** own. Rows come back as JSON objects, integers exact. Not here: when a
** query runs (commit.c, serve.c).
*/
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "json.h"
#include "pgquery.h"
#include "util.h"

/* A query's fuel is its time on PostgreSQL: one unit per 100 us. */
#define US_PER_FUEL 100

/* ---- reading the statement ---- */

enum { T_END, T_WORD, T_QIDENT, T_STRING, T_NUM, T_QMARK, T_DOLLAR, T_SEMI, T_OTHER };

typedef struct lexer {
  const char *s;
  size_t n, i;
  size_t start; /* the token's first byte */
  char word[64]; /* T_WORD lowercased, T_QIDENT as written (cut at 63) */
  const char *why; /* a malformed text */
} lexer;

static bool word_start(unsigned char c) { return isalpha(c) || c == '_' || c >= 0x80; }
static bool word_char(unsigned char c) { return isalnum(c) || c == '_' || c == '$' || c >= 0x80; }

/* Skips white space and comments; false on an unterminated comment. */
static bool skip_space(lexer *x) {
  for (;;) {
    while (x->i < x->n && isspace((unsigned char)x->s[x->i]))
      x->i++;
    if (x->i + 1 < x->n && x->s[x->i] == '-' && x->s[x->i + 1] == '-') {
      while (x->i < x->n && x->s[x->i] != '\n')
        x->i++;
      continue;
    }
    if (x->i + 1 < x->n && x->s[x->i] == '/' && x->s[x->i + 1] == '*') {
      int depth = 0;
      do {
        if (x->i + 1 < x->n && x->s[x->i] == '/' && x->s[x->i + 1] == '*') {
          depth++;
          x->i += 2;
        } else if (x->i + 1 < x->n && x->s[x->i] == '*' && x->s[x->i + 1] == '/') {
          depth--;
          x->i += 2;
        } else if (x->i < x->n) {
          x->i++;
        } else {
          x->why = "a comment is not closed";
          return false;
        }
      } while (depth > 0);
      continue;
    }
    return true;
  }
}

/* A quoted run ending at q (doubled q inside), backslashes escaping when
** esc; false when it does not end. */
static bool quoted(lexer *x, char q, bool esc) {
  x->i++;
  while (x->i < x->n) {
    char c = x->s[x->i];
    if (esc && c == '\\') {
      x->i += 2;
      continue;
    }
    if (c == q) {
      if (x->i + 1 < x->n && x->s[x->i + 1] == q) {
        x->i += 2;
        continue;
      }
      x->i++;
      return true;
    }
    x->i++;
  }
  return false;
}

static int next(lexer *x) {
  if (!skip_space(x))
    return -1;
  x->start = x->i;
  if (x->i >= x->n)
    return T_END;
  unsigned char c = (unsigned char)x->s[x->i];
  if (c == '\'') {
    if (!quoted(x, '\'', false)) {
      x->why = "a string literal is not closed";
      return -1;
    }
    return T_STRING;
  }
  if (c == '"') {
    size_t a = x->i + 1;
    if (!quoted(x, '"', false)) {
      x->why = "a quoted name is not closed";
      return -1;
    }
    size_t len = x->i - 1 - a;
    if (len >= sizeof x->word)
      len = sizeof x->word - 1;
    memcpy(x->word, x->s + a, len);
    x->word[len] = 0;
    return T_QIDENT;
  }
  if (c == '$') {
    size_t j = x->i + 1;
    if (j < x->n && isdigit((unsigned char)x->s[j])) {
      while (j < x->n && isdigit((unsigned char)x->s[j]))
        j++;
      x->i = j;
      return T_DOLLAR;
    }
    /* $tag$ ... $tag$ */
    while (j < x->n && (isalnum((unsigned char)x->s[j]) || x->s[j] == '_'))
      j++;
    if (j < x->n && x->s[j] == '$' && (j == x->i + 1 || !isdigit((unsigned char)x->s[x->i + 1]))) {
      size_t tl = j + 1 - x->i;
      const char *tag = x->s + x->i;
      for (size_t k = j + 1; k + tl <= x->n; k++)
        if (memcmp(x->s + k, tag, tl) == 0) {
          x->i = k + tl;
          return T_STRING;
        }
      x->why = "a dollar-quoted string is not closed";
      return -1;
    }
    x->i++;
    return T_OTHER;
  }
  if (word_start(c)) {
    size_t a = x->i;
    while (x->i < x->n && word_char((unsigned char)x->s[x->i]))
      x->i++;
    size_t len = x->i - a;
    /* E'...' escapes with backslashes; B'', X'', N'' are plain strings */
    if (x->i < x->n && x->s[x->i] == '\'') {
      bool esc = len == 1 && (c == 'e' || c == 'E');
      if (!quoted(x, '\'', esc)) {
        x->why = "a string literal is not closed";
        return -1;
      }
      return T_STRING;
    }
    if (len >= sizeof x->word)
      len = sizeof x->word - 1;
    for (size_t k = 0; k < len; k++)
      x->word[k] = (char)tolower((unsigned char)x->s[a + k]);
    x->word[len] = 0;
    return T_WORD;
  }
  if (isdigit(c)) {
    while (x->i < x->n && (isalnum((unsigned char)x->s[x->i]) || x->s[x->i] == '.'))
      x->i++;
    return T_NUM;
  }
  x->i++;
  if (c == '?')
    return T_QMARK;
  if (c == ';')
    return T_SEMI;
  return T_OTHER;
}

static bool in_list(const char *const *l, const char *w) {
  for (; *l; l++)
    if (strcmp(*l, w) == 0)
      return true;
  return false;
}

/* Statements a program may not begin with: its query is one statement
** of the step's transaction, under the role it is given. */
static const char *const first_denied[] = {
    "begin",  "start",    "commit",   "end",     "rollback", "abort",      "savepoint",
    "release", "prepare", "execute",  "deallocate", "set",   "reset",      "do",
    "call",   "copy",     "listen",   "unlisten", "notify",  "load",       "discard",
    "declare", "fetch",   "move",     "close",   "checkpoint", "grant",    "revoke",
    "reassign", "security", "import", "refresh", NULL};
/* What CREATE or ALTER may not make: code (that could change the role
** when it runs), roles, and what belongs to the server. */
static const char *const made_denied[] = {
    "function", "procedure", "language", "extension", "aggregate", "operator", "cast",
    "conversion", "transform", "role",   "user",      "group",     "database", "tablespace",
    "server",   "foreign",   "subscription", "publication", "event", "system", "access",
    "policy",   "default",   "rule",      NULL};
/* Functions that run SQL text, change settings, reach files or other
** sessions. */
static const char *const fn_denied[] = {
    "set_config", "query_to_xml", "query_to_xml_and_xmlschema", "query_to_xmlschema",
    "cursor_to_xml", "cursor_to_xmlschema", "pg_read_file", "pg_read_binary_file",
    "pg_ls_dir", "pg_stat_file", "lo_import", "lo_export", "pg_file_write",
    "pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock",
    "pg_try_advisory_lock_shared", "pg_advisory_unlock", "pg_advisory_unlock_shared",
    "pg_advisory_unlock_all", "pg_advisory_xact_lock", "pg_advisory_xact_lock_shared",
    "pg_try_advisory_xact_lock", "pg_try_advisory_xact_lock_shared", "pg_terminate_backend",
    "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile", "pg_promote", "pg_notify",
    "dblink", "dblink_exec", "dblink_connect", "pg_switch_wal", "pg_create_restore_point",
    "pg_import_system_collations", NULL};
/* Words after which a statement surely writes. */
static const char *const writes[] = {"insert", "update", "delete", "merge", "into", "truncate",
                                     "create", "alter", "drop", "nextval", "setval", "lock",
                                     "comment", "cluster", "vacuum", "analyze", "reindex",
                                     NULL};
static const char *const reads_first[] = {"select", "values", "table", "show", "explain",
                                          "with", NULL};

static bool store_name(const char *w) {
  return strcasecmp(w, "wfp") == 0 || strncasecmp(w, "wfp_", 4) == 0;
}

int wfp_pgq_prepare(const char *sql, size_t n, int store, char **out, int *nparams,
                    int *readonly, char *err, size_t errlen) {
  *out = NULL;
  *nparams = 0;
  *readonly = 0;
  if (memchr(sql, 0, n)) {
    snprintf(err, errlen, "the SQL text contains a NUL character");
    return WFP_EINVAL;
  }
  lexer x = {sql, n, 0, 0, "", NULL};
  wfp__buf o;
  wfp__buf_init(&o);
  size_t copied = 0;
  int nq = 0, maxd = 0, words = 0;
  bool writes_seen = false, reads = false, made = false;
  char first[64] = "";
  int t;
  while ((t = next(&x)) > T_END) {
    if (t == T_SEMI) {
      if (!skip_space(&x) || x.i < x.n) {
        wfp__buf_free(&o);
        snprintf(err, errlen, "%s", x.why ? x.why : "the SQL text holds more than one statement");
        return WFP_EINVAL;
      }
      break;
    }
    if (t == T_WORD || t == T_QIDENT) {
      const char *w = x.word;
      if (store && store_name(w)) {
        wfp__buf_free(&o);
        snprintf(err, errlen,
                 "'%s' belongs to the service's store: a program may not use the names "
                 "wfp and wfp_*", w);
        return WFP_EINVAL;
      }
      if (t == T_WORD) {
        if (words == 0) {
          snprintf(first, sizeof first, "%s", w);
          if (in_list(first_denied, w)) {
            wfp__buf_free(&o);
            snprintf(err, errlen,
                     "%s is not allowed: each db_query is one statement of its step's "
                     "transaction, under the program's role", w);
            return WFP_EINVAL;
          }
          reads = in_list(reads_first, w);
        } else if ((strcmp(first, "create") == 0 || strcmp(first, "alter") == 0) && words <= 4 &&
                   !made) {
          if (in_list(made_denied, w)) {
            wfp__buf_free(&o);
            snprintf(err, errlen, "%s %s is not allowed: a program makes tables, views, "
                                  "indexes, sequences and types", first, w);
            return WFP_EINVAL;
          }
          if (strcmp(w, "table") == 0 || strcmp(w, "index") == 0 || strcmp(w, "view") == 0 ||
              strcmp(w, "sequence") == 0 || strcmp(w, "type") == 0 || strcmp(w, "schema") == 0)
            made = true;
        }
        if (in_list(fn_denied, w)) {
          wfp__buf_free(&o);
          snprintf(err, errlen, "%s() is not allowed: a program works on its own tables only",
                   w);
          return WFP_EINVAL;
        }
        if (in_list(writes, w))
          writes_seen = true;
        words++;
      }
    } else if (t == T_QMARK) {
      nq++;
      wfp__buf_add(&o, sql + copied, x.start - copied);
      wfp__buf_printf(&o, "$%d", nq);
      copied = x.i;
    } else if (t == T_DOLLAR) {
      int k = atoi(sql + x.start + 1);
      if (k > maxd)
        maxd = k;
    }
  }
  if (t < 0) {
    wfp__buf_free(&o);
    snprintf(err, errlen, "%s", x.why ? x.why : "the SQL text is malformed");
    return WFP_EINVAL;
  }
  if (!words) {
    wfp__buf_free(&o);
    snprintf(err, errlen, "the SQL text holds no statement");
    return WFP_EINVAL;
  }
  if (nq && maxd) {
    wfp__buf_free(&o);
    snprintf(err, errlen, "the SQL text numbers its parameters ($%d) and has '?' ones too: "
                          "use one kind", maxd);
    return WFP_EINVAL;
  }
  wfp__buf_add(&o, sql + copied, n - copied);
  if (o.oom || !o.data) {
    wfp__buf_free(&o);
    snprintf(err, errlen, "out of memory");
    return WFP_ENOMEM;
  }
  *out = wfp__buf_take(&o, NULL);
  *nparams = nq ? nq : maxd;
  *readonly = reads && !writes_seen;
  return WFP_OK;
}

/* ---- parameters: a JSON array's elements as text ---- */

typedef struct params {
  int n;
  char **v; /* NULL: SQL null */
} params;

static void params_free(params *p) {
  for (int i = 0; i < p->n; i++)
    free(p->v[i]);
  free(p->v);
  p->v = NULL;
  p->n = 0;
}

static int params_read(const char *s, size_t n, params *p, char *err, size_t errlen) {
  memset(p, 0, sizeof *p);
  size_t i = wfp__json_ws(s, 0, n);
  if (i == n || (n - i == 4 && memcmp(s + i, "null", 4) == 0))
    return WFP_OK;
  size_t at;
  const char *why;
  if (s[i] != '[' || wfp__json_check(s, n, WFP_JSON_MAX_DEPTH, &at, &why) != 0) {
    snprintf(err, errlen, "the parameters are not a JSON array");
    return WFP_EINVAL;
  }
  i = wfp__json_ws(s, i + 1, n);
  int cap = 0;
  while (i < n && s[i] != ']') {
    size_t e = wfp__json_skip(s, i, n);
    if (!e) {
      snprintf(err, errlen, "the parameters are not a JSON array");
      return WFP_EINVAL;
    }
    if (p->n == cap) {
      cap = cap ? cap * 2 : 8;
      char **nv = realloc(p->v, (size_t)cap * sizeof *nv);
      if (!nv)
        return WFP_ENOMEM;
      p->v = nv;
    }
    char *v = NULL;
    size_t len = e - i;
    if (len == 4 && memcmp(s + i, "null", 4) == 0) {
      v = NULL;
    } else if (s[i] == '"') {
      wfp__buf t;
      wfp__buf_init(&t);
      wfp__json_string(s, i, n, &t);
      if (t.oom) {
        wfp__buf_free(&t);
        return WFP_ENOMEM;
      }
      if (t.data && memchr(t.data, 0, t.len)) {
        wfp__buf_free(&t);
        snprintf(err, errlen, "parameter %d holds U+0000, which PostgreSQL text cannot hold",
                 p->n + 1);
        return WFP_EINVAL;
      }
      v = t.data ? t.data : strdup("");
      if (!v)
        return WFP_ENOMEM;
    } else {
      /* numbers, true and false, objects and arrays: their text */
      v = strndup(s + i, len);
      if (!v)
        return WFP_ENOMEM;
    }
    p->v[p->n++] = v;
    i = wfp__json_ws(s, e, n);
    if (i < n && s[i] == ',')
      i = wfp__json_ws(s, i + 1, n);
  }
  return WFP_OK;
}

/* ---- the rows ---- */

static int hexd(char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Type OIDs (pg_type.h) */
enum {
  OID_BOOL = 16, OID_BYTEA = 17, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23, OID_OID = 26,
  OID_JSON = 114, OID_FLOAT4 = 700, OID_FLOAT8 = 701, OID_NUMERIC = 1700, OID_JSONB = 3802
};

static int add_value(wfp__buf *b, const PGresult *r, int row, int col, char *err,
                     size_t errlen) {
  if (PQgetisnull(r, row, col)) {
    wfp__buf_adds(b, "null");
    return WFP_OK;
  }
  const char *v = PQgetvalue(r, row, col);
  size_t n = (size_t)PQgetlength(r, row, col);
  switch (PQftype(r, col)) {
  case OID_INT2:
  case OID_INT4:
  case OID_INT8:
  case OID_OID:
  case OID_JSON:
  case OID_JSONB:
    wfp__buf_add(b, v, n);
    return WFP_OK;
  case OID_FLOAT4:
  case OID_FLOAT8:
  case OID_NUMERIC:
    /* JSON has no NaN or infinities */
    if (strcmp(v, "NaN") == 0 || strstr(v, "Infinity"))
      wfp__buf_adds(b, "null");
    else
      wfp__buf_add(b, v, n);
    return WFP_OK;
  case OID_BOOL:
    wfp__buf_adds(b, v[0] == 't' ? "true" : "false");
    return WFP_OK;
  case OID_BYTEA: {
    /* bytes as a base64 string, as SQLite's blobs */
    wfp__buf raw;
    wfp__buf_init(&raw);
    for (size_t i = 2; i + 1 < n; i += 2)
      wfp__buf_addc(&raw, (char)(hexd(v[i]) << 4 | hexd(v[i + 1])));
    wfp__buf_addc(b, '"');
    wfp__buf_add_base64(b, raw.data ? raw.data : "", raw.len);
    wfp__buf_addc(b, '"');
    bool oom = raw.oom;
    wfp__buf_free(&raw);
    return oom ? WFP_ENOMEM : WFP_OK;
  }
  default:
    /* text, and every other type as its text */
    if (!wfp__utf8_valid(v, n)) {
      snprintf(err, errlen, "column '%s' holds text that is not valid UTF-8", PQfname(r, col));
      return WFP_EINVAL;
    }
    wfp__buf_add_jstr(b, v, n);
    return WFP_OK;
  }
}

static int rows_json(const PGresult *r, wfp__buf *rows, wfp__buf *offs, char *err,
                     size_t errlen) {
  int nr = PQntuples(r), nc = PQnfields(r);
  wfp__buf_addc(rows, '[');
  for (int i = 0; i < nr; i++) {
    if (i)
      wfp__buf_addc(rows, ',');
    size_t se[2] = {rows->len, 0};
    wfp__buf_addc(rows, '{');
    for (int c = 0; c < nc; c++) {
      if (c)
        wfp__buf_addc(rows, ',');
      const char *name = PQfname(r, c);
      wfp__buf_add_jstr(rows, name, strlen(name));
      wfp__buf_addc(rows, ':');
      int rc = add_value(rows, r, i, c, err, errlen);
      if (rc)
        return rc;
    }
    wfp__buf_addc(rows, '}');
    se[1] = rows->len;
    wfp__buf_add(offs, se, sizeof se);
    if (rows->len > WFP_DB_RESULT_MAX) {
      snprintf(err, errlen, "the result is larger than %d bytes, the most one query may return",
               WFP_DB_RESULT_MAX);
      return WFP_ELIMIT;
    }
    if (rows->oom || offs->oom)
      return WFP_ENOMEM;
  }
  wfp__buf_addc(rows, ']');
  return rows->oom ? WFP_ENOMEM : WFP_OK;
}

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

/* The job's query checked and its parameters read; a fault answers the
** job (1), 0 goes on. */
typedef struct prepared {
  char *sql;
  int nparams, readonly;
  params p;
  long timeout_ms;
} prepared;

static int prepare_job(wfp_db_job *job, int store, prepared *q) {
  memset(q, 0, sizeof *q);
  char err[512];
  size_t sn, pn;
  const char *sql = wfp_db_job_sql(job, &sn);
  const char *ps = wfp_db_job_params(job, &pn);
  int rc = wfp_pgq_prepare(sql, sn, store, &q->sql, &q->nparams, &q->readonly, err, sizeof err);
  if (!rc)
    rc = params_read(ps, pn, &q->p, err, sizeof err);
  if (!rc && q->p.n != q->nparams) {
    if (q->p.n)
      snprintf(err, sizeof err, "%d parameters given, the statement has %d", q->p.n,
               q->nparams);
    else
      snprintf(err, sizeof err, "no parameters given, the statement has %d", q->nparams);
    rc = WFP_EINVAL;
  }
  if (rc) {
    if (rc == WFP_ENOMEM)
      snprintf(err, sizeof err, "out of memory");
    wfp_db_job_fail(job, rc, err, 0);
    free(q->sql);
    params_free(&q->p);
    return 1;
  }
  uint64_t fuel = wfp_db_job_fuel(job);
  q->timeout_ms = (long)(fuel * US_PER_FUEL / 1000);
  if (q->timeout_ms < 1)
    q->timeout_ms = 1;
  return 0;
}

static void prepared_free(prepared *q) {
  free(q->sql);
  params_free(&q->p);
}

/* The query's error as the program sees it. */
static void answer_error(wfp_db_job *job, const PGresult *r, PGconn *c, const prepared *q,
                         uint64_t used) {
  const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  if (state && strcmp(state, "57014") == 0) { /* query_canceled: statement_timeout */
    char m[200];
    snprintf(m, sizeof m,
             "the query ran out of fuel: it may use %llu units (one per %d microseconds on "
             "PostgreSQL)",
             (unsigned long long)(q->timeout_ms * 1000 / US_PER_FUEL), US_PER_FUEL);
    wfp_db_job_fail(job, WFP_ELIMIT, m, used);
    return;
  }
  const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  char msg[512];
  snprintf(msg, sizeof msg, "%s", m && *m ? m : PQerrorMessage(c));
  size_t k = strlen(msg);
  while (k && msg[k - 1] == '\n')
    msg[--k] = 0;
  wfp_db_job_fail(job, WFP_EINVAL, msg, used);
}

/* Runs the prepared query on c and answers the job from its result: 0
** rows answered, 1 a failure answered (r kept in *res for the caller). */
static int run_answer(PGconn *c, wfp_db_job *job, prepared *q, int *failed) {
  uint64_t t0 = now_us();
  PGresult *r = PQexecParams(c, q->sql, q->p.n, NULL, (const char *const *)q->p.v, NULL, NULL,
                             0);
  uint64_t used = (now_us() - t0) / US_PER_FUEL + 1;
  ExecStatusType st = PQresultStatus(r);
  *failed = 1;
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    answer_error(job, r, c, q, used);
    PQclear(r);
    return 0;
  }
  wfp__buf rows, offs;
  wfp__buf_init(&rows);
  wfp__buf_init(&offs);
  char err[512];
  int rc = rows_json(r, &rows, &offs, err, sizeof err);
  if (rc) {
    if (rc == WFP_ENOMEM)
      snprintf(err, sizeof err, "out of memory");
    wfp_db_job_fail(job, rc, err, used);
  } else {
    size_t nrows = offs.len / (2 * sizeof(size_t));
    rc = wfp_db_job_answer(job, rows.data, rows.len, (const size_t *)(void *)offs.data, nrows,
                           q->readonly, used);
    *failed = rc != 0;
  }
  wfp__buf_free(&rows);
  wfp__buf_free(&offs);
  PQclear(r);
  return 0;
}

static int exec_ok(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);
  PQclear(r);
  return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

int wfp_pgq_in_txn(PGconn *c, wfp_db_job *job, long slack_ms, char *err, size_t errlen) {
  prepared q;
  if (prepare_job(job, 1, &q))
    return WFP_OK;
  char setup[200];
  snprintf(setup, sizeof setup,
           "SAVEPOINT wfp_query; SET LOCAL ROLE wfp_program; SET LOCAL search_path = "
           "wfp_program; SET LOCAL statement_timeout = %ld",
           q.timeout_ms + (slack_ms > 0 ? slack_ms : 0));
  int failed = 1;
  PGresult *r = PQexec(c, setup);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    char m[600];
    snprintf(m, sizeof m, "db_query cannot take the role wfp_program on the store's database "
                          "(docs/service.md says how an operator makes it): %s",
             PQresultErrorMessage(r));
    size_t k = strlen(m);
    while (k && m[k - 1] == '\n')
      m[--k] = 0;
    wfp_db_job_fail(job, WFP_EINVAL, m, 0);
  } else {
    run_answer(c, job, &q, &failed);
  }
  PQclear(r);
  prepared_free(&q);
  /* a failure leaves nothing of the query behind; a success keeps its
  ** writes, and the store's role comes back either way */
  bool ok = failed ? exec_ok(c, "ROLLBACK TO SAVEPOINT wfp_query; RELEASE SAVEPOINT wfp_query")
                   : exec_ok(c, "RELEASE SAVEPOINT wfp_query; RESET ROLE; RESET "
                                "statement_timeout; SET LOCAL search_path = wfp, public");
  if (!ok || PQtransactionStatus(c) != PQTRANS_INTRANS) {
    snprintf(err, errlen, "the transaction of a db_query was lost: %s", PQerrorMessage(c));
    return WFP_EIO;
  }
  return WFP_OK;
}

/* ---- on a database of its own ---- */

struct wfp_pgq_runner {
  char *url;
  PGconn *c;
  long timeout_ms; /* the statement_timeout set (0: none yet) */
};

static void quiet(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

static int runner_connect(wfp_pgq_runner *r, char *err, size_t errlen) {
  if (r->c)
    PQfinish(r->c);
  r->timeout_ms = 0;
  const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
  const char *vals[] = {"10", "wfp-host db_query", r->url, NULL};
  r->c = PQconnectdbParams(keys, vals, 1);
  if (r->c)
    PQsetNoticeProcessor(r->c, quiet, NULL); /* a program's notices go nowhere */
  if (!r->c || PQstatus(r->c) != CONNECTION_OK) {
    snprintf(err, errlen, "cannot connect to the database: %s",
             r->c ? PQerrorMessage(r->c) : "out of memory");
    size_t k = strlen(err);
    while (k && err[k - 1] == '\n')
      err[--k] = 0;
    return WFP_EIO;
  }
  return WFP_OK;
}

int wfp_pgq_runner_open(const char *url, wfp_pgq_runner **out, char *err, size_t errlen) {
  *out = NULL;
  wfp_pgq_runner *r = calloc(1, sizeof *r);
  if (!r || !(r->url = strdup(url))) {
    free(r);
    snprintf(err, errlen, "out of memory");
    return WFP_ENOMEM;
  }
  int rc = runner_connect(r, err, errlen);
  if (rc) {
    wfp_pgq_runner_close(r);
    return rc;
  }
  *out = r;
  return WFP_OK;
}

void wfp_pgq_runner_run(void *ud, wfp_db_job *job) {
  wfp_pgq_runner *r = ud;
  prepared q;
  if (prepare_job(job, 0, &q))
    return;
  char err[512];
  if (PQstatus(r->c) != CONNECTION_OK && runner_connect(r, err, sizeof err)) {
    wfp_db_job_fail(job, WFP_EIO, err, 0);
    prepared_free(&q);
    return;
  }
  if (r->timeout_ms != q.timeout_ms) {
    char set[64];
    snprintf(set, sizeof set, "SET statement_timeout = %ld", q.timeout_ms);
    if (!exec_ok(r->c, set)) {
      snprintf(err, sizeof err, "the database: %s", PQerrorMessage(r->c));
      wfp_db_job_fail(job, WFP_EIO, err, 0);
      prepared_free(&q);
      return;
    }
    r->timeout_ms = q.timeout_ms;
  }
  int failed;
  run_answer(r->c, job, &q, &failed);
  prepared_free(&q);
}

void wfp_pgq_runner_close(wfp_pgq_runner *r) {
  if (!r)
    return;
  if (r->c)
    PQfinish(r->c);
  free(r->url);
  free(r);
}
