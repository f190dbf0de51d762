/*
** store_pg.c: the store on PostgreSQL (libpq), for one host or many on one
** database (CONTRACT section 7): three connections (the committer's writer,
** the reader, the cluster thread's for leases, claims and LISTEN), prepared
** statements, the schema in a schema of its own ("wfp") made and upgraded
** by numbered migrations at open, and the lease machinery: fences, claims
** with FOR UPDATE SKIP LOCKED, the heartbeat. Not here: when to claim or
** renew (cluster.c), what is written when (commit.c), db_query (pgquery.c).
*/
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <pthread.h>

#include "pgquery.h"
#include "store.h"
#include "util.h"

/* The database's clock, in milliseconds: leases are compared on one clock
** whatever the hosts' clocks say. */
#define DBNOW "(extract(epoch from clock_timestamp()) * 1000)::bigint"

/* Advisory lock keys: (WFP_LOCK_CLASS, 0) serializes migrations; (CLASS,
** hash of the key) an idempotency key being created. */
#define LOCK_CLASS 0x77667000
#define SCHEMA_LATEST 2

/* ---- the schema, migration by migration (docs/service.md) ---- */

static const char migration_1[] =
    "CREATE SCHEMA IF NOT EXISTS wfp;"
    "CREATE TABLE wfp.wfp_hosts(id text PRIMARY KEY, name text NOT NULL, pid bigint NOT NULL,"
    " started_ms bigint NOT NULL, lease_until_ms bigint NOT NULL);"
    "CREATE TABLE wfp.wfp_invocations("
    " seq bigserial PRIMARY KEY,"
    " id text NOT NULL UNIQUE,"
    " program text NOT NULL,"
    " fn text NOT NULL,"
    " input text NOT NULL,"
    " self bigint,"
    " origin text NOT NULL,"
    " status smallint NOT NULL,"
    " state bytea,"
    " effect smallint,"
    " effect_key bytea,"
    " effect_json text,"
    " effect_each text,"
    " effect_i64 bigint,"
    " deadline_ms bigint,"
    " resume text,"
    " output text,"
    " trap text,"
    " steps bigint NOT NULL,"
    " fuel bigint NOT NULL,"
    " created_ms bigint NOT NULL,"
    " updated_ms bigint NOT NULL,"
    " ended_ms bigint,"
    " owner text,"
    " epoch bigint NOT NULL DEFAULT 0);"
    "CREATE INDEX wfp_invocations_status ON wfp.wfp_invocations(status, ended_ms);"
    "CREATE INDEX wfp_invocations_pending ON wfp.wfp_invocations(owner, seq) WHERE status = 0;"
    "CREATE INDEX wfp_invocations_self ON wfp.wfp_invocations(self, seq)"
    " WHERE status = 0 AND self IS NOT NULL;"
    "CREATE TABLE wfp.wfp_context(key bytea PRIMARY KEY, value bigint NOT NULL);"
    "CREATE TABLE wfp.wfp_instances(handle bigint PRIMARY KEY, resource text NOT NULL,"
    " props text NOT NULL, owner text, epoch bigint NOT NULL DEFAULT 0);"
    "CREATE SEQUENCE wfp.wfp_handle_blocks;"
    /* id: the order of inserts; seq: the order of commits, given at commit
    ** (a reader that asks for after=SEQ never misses one committed later) */
    "CREATE TABLE wfp.wfp_messages(id bigserial PRIMARY KEY, seq bigint UNIQUE,"
    " topic bytea NOT NULL, payload text NOT NULL, invocation text NOT NULL,"
    " created_ms bigint NOT NULL);"
    "CREATE INDEX wfp_messages_topic ON wfp.wfp_messages(topic, seq);"
    "CREATE INDEX wfp_messages_topic_id ON wfp.wfp_messages(topic, id);"
    "CREATE TABLE wfp.wfp_idempotency(key text PRIMARY KEY, invocation text NOT NULL,"
    " created_ms bigint NOT NULL);"
    "CREATE TABLE wfp.wfp_deliveries(subscriber text NOT NULL, id bigint NOT NULL,"
    " PRIMARY KEY(subscriber, id));"
    "CREATE TABLE wfp.wfp_schedules(name text PRIMARY KEY, next_due_ms bigint NOT NULL);"
    "INSERT INTO wfp.wfp_meta(key, value) VALUES ('message_seq', '0');";

/* The role programs' queries run as inside the store's transactions, and
** their schema (pgquery.c). A login without the right to make roles gets
** neither; an operator makes them (docs/service.md), and until then such
** queries fail saying so. */
static const char migration_2[] =
    "DO $$\n"
    "BEGIN\n"
    "  BEGIN\n"
    "    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'wfp_program') THEN\n"
    "      CREATE ROLE wfp_program NOLOGIN;\n"
    "    END IF;\n"
    "  EXCEPTION WHEN insufficient_privilege THEN NULL;\n"
    "  END;\n"
    "  BEGIN\n"
    "    IF NOT pg_has_role(current_user, 'wfp_program', 'MEMBER') THEN\n"
    "      EXECUTE format('GRANT wfp_program TO %I', current_user);\n"
    "    END IF;\n"
    "  EXCEPTION WHEN insufficient_privilege OR undefined_object OR\n"
    "    invalid_grant_operation THEN NULL;\n"
    "  END;\n"
    "  BEGIN\n"
    "    CREATE SCHEMA IF NOT EXISTS wfp_program AUTHORIZATION wfp_program;\n"
    "  EXCEPTION WHEN insufficient_privilege OR undefined_object THEN NULL;\n"
    "  END;\n"
    "END $$;";

static const char *const migrations[SCHEMA_LATEST] = {migration_1, migration_2};

#define ROW_COLS                                                                   \
  "seq, id, program, fn, input, origin, status, self, state, effect, effect_key, " \
  "effect_json, effect_each, effect_i64, deadline_ms, resume, output, trap, steps, fuel, " \
  "created_ms, updated_ms, epoch"

/* An invocation is runnable by this host when nobody holds it, or its
** holder's lease ended. Never one this host holds itself, even when its
** own lease had lapsed (paused): that one runs here still, and commits
** under its epoch unless another host took it meanwhile. */
#define UNHELD(alias)                                                              \
  "(" alias ".owner IS NULL OR NOT EXISTS (SELECT 1 FROM wfp.wfp_hosts h WHERE h.id = " \
  alias ".owner AND h.lease_until_ms > " DBNOW "))"

/* The statements, prepared once per connection. W_ on the writer, R_ on
** the reader, C_ on the cluster's connection. */
#define STMTS(X)                                                                   \
  X(W_CREATE, "INSERT INTO wfp.wfp_invocations(id, program, fn, input, self, origin, status, " \
              "steps, fuel, created_ms, updated_ms, owner, epoch) VALUES ($1,$2,$3,$4,$5,$6,0," \
              "0,0,$7,$7,$8,$9) RETURNING seq")                                   \
  X(W_STEP, "UPDATE wfp.wfp_invocations SET state=$1, effect=$2, effect_key=$3, " \
            "effect_json=$4, effect_each=$5, effect_i64=$6, deadline_ms=$7, resume=$8, "   \
            "steps=$9, fuel=$10, updated_ms=$11 WHERE seq=$12")                   \
  X(W_END, "UPDATE wfp.wfp_invocations SET status=$1, output=$2, trap=$3, state=NULL, " \
           "effect=NULL, effect_key=NULL, effect_json=NULL, effect_each=NULL, "   \
           "effect_i64=NULL, deadline_ms=NULL, resume=NULL, steps=$4, fuel=$5, "  \
           "updated_ms=$6, ended_ms=$6, owner=NULL WHERE seq=$7")                 \
  X(W_FENCE, "SELECT 1 FROM wfp.wfp_invocations WHERE seq=$1 AND epoch=$2 AND owner=$3 " \
             "AND status=0 FOR NO KEY UPDATE")                                    \
  X(W_RELEASE, "UPDATE wfp.wfp_invocations SET owner=NULL, epoch=epoch+1 WHERE seq=$1 AND " \
               "epoch=$2 AND owner=$3")                                           \
  X(W_IDEM_LOCK, "SELECT pg_advisory_xact_lock($1::int4, hashtext($2))")          \
  X(W_IDEM_GET, "SELECT invocation FROM wfp.wfp_idempotency WHERE key=$1")        \
  X(W_IDEM_PUT, "INSERT INTO wfp.wfp_idempotency(key, invocation, created_ms) VALUES " \
                "($1,$2,$3)")                                                     \
  X(W_CTX, "INSERT INTO wfp.wfp_context(key, value) VALUES ($1,$2) ON CONFLICT (key) DO " \
           "UPDATE SET value=excluded.value")                                     \
  X(W_CTX_DEFAULT, "INSERT INTO wfp.wfp_context(key, value) VALUES ($1,$2) ON CONFLICT " \
                   "(key) DO NOTHING")                                            \
  X(W_MSG, "INSERT INTO wfp.wfp_messages(topic, payload, invocation, created_ms) VALUES " \
           "($1,$2,$3,$4) RETURNING id")                                          \
  X(W_MSG_SEQ, "UPDATE wfp.wfp_meta SET value = (value::bigint + $1)::text WHERE " \
               "key='message_seq' RETURNING value::bigint")                       \
  X(W_MSG_NUMBER, "UPDATE wfp.wfp_messages m SET seq = $1::bigint + o.n FROM " \
                  "unnest($2::bigint[]) WITH ORDINALITY AS o(id, n) WHERE m.id = o.id") \
  X(W_MSG_SCAN, "SELECT id, topic, payload, invocation FROM wfp.wfp_messages WHERE " \
                "topic=$1 AND id>$2 ORDER BY id")                                 \
  X(W_MSG_LAST, "SELECT coalesce(max(id), 0) FROM wfp.wfp_messages")              \
  X(W_CUR_GET, "SELECT max(id) FROM wfp.wfp_deliveries WHERE subscriber=$1")      \
  X(W_CUR_SET, "INSERT INTO wfp.wfp_deliveries(subscriber, id) VALUES ($1,$2) ON " \
               "CONFLICT DO NOTHING RETURNING 1")                                             \
  X(W_INST, "INSERT INTO wfp.wfp_instances(handle, resource, props, owner, epoch) VALUES " \
            "($1,$2,$3,$4,1) ON CONFLICT (handle) DO UPDATE SET resource=excluded.resource, " \
            "props=excluded.props RETURNING xmax = 0")                            \
  X(W_INST_HELD, "SELECT 1 FROM wfp.wfp_instances WHERE handle=$1 AND owner=$2 AND " \
                 "epoch=$3 FOR KEY SHARE")                                        \
  X(W_SCHED_GET, "SELECT next_due_ms FROM wfp.wfp_schedules WHERE name=$1 FOR UPDATE " \
                 "SKIP LOCKED")                                                   \
  X(W_SCHED_ANY, "SELECT 1 FROM wfp.wfp_schedules WHERE name=$1")                  \
  X(W_SCHED_SET, "INSERT INTO wfp.wfp_schedules(name, next_due_ms) VALUES ($1,$2) ON " \
                 "CONFLICT (name) DO UPDATE SET next_due_ms=excluded.next_due_ms") \
  X(R_CTX, "SELECT key, value FROM wfp.wfp_context ORDER BY key")                 \
  X(R_CTX_ONE, "SELECT value FROM wfp.wfp_context WHERE key=$1")                   \
  X(R_INSTS, "SELECT handle, resource, props FROM wfp.wfp_instances ORDER BY handle") \
  X(R_PENDING, "SELECT " ROW_COLS " FROM wfp.wfp_invocations WHERE status=0 AND " \
               "owner=$1 ORDER BY seq")                                           \
  X(R_COUNTS, "SELECT fn, status, count(*) FROM wfp.wfp_invocations GROUP BY fn, status") \
  X(R_TRAPS, "SELECT " ROW_COLS " FROM wfp.wfp_invocations WHERE status=2 ORDER BY " \
             "ended_ms DESC, seq DESC LIMIT $1")                                  \
  X(R_INV, "SELECT " ROW_COLS " FROM wfp.wfp_invocations WHERE id=$1")             \
  X(R_MSGS, "SELECT seq, topic, payload, invocation FROM wfp.wfp_messages WHERE seq>$1 " \
            "ORDER BY seq LIMIT $2")                                              \
  X(R_MSGS_TOPIC, "SELECT seq, topic, payload, invocation FROM wfp.wfp_messages WHERE " \
                  "topic=$1 AND seq>$2 ORDER BY seq LIMIT $3")                    \
  X(R_INST, "SELECT handle, resource, props FROM wfp.wfp_instances WHERE handle=$1") \
  X(C_HEARTBEAT, "WITH old AS (SELECT lease_until_ms FROM wfp.wfp_hosts WHERE id=$1) " \
                 "INSERT INTO wfp.wfp_hosts(id, name, pid, started_ms, lease_until_ms) " \
                 "VALUES ($1,$2,$3," DBNOW "," DBNOW "+$4) ON CONFLICT (id) DO UPDATE SET " \
                 "lease_until_ms = " DBNOW " + $4 RETURNING coalesce((SELECT " \
                 "lease_until_ms FROM old) < " DBNOW ", false)")                  \
  X(C_CANDIDATES, "SELECT i.seq, i.self FROM wfp.wfp_invocations i WHERE i.status=0 AND " \
                  "i.program = ANY($1::text[]) AND i.owner IS DISTINCT FROM $3 AND " \
                  UNHELD("i") " AND (i.self IS NOT NULL " \
                  "OR i.deadline_ms IS NULL OR i.deadline_ms <= $2) AND (i.self IS NULL OR " \
                  "NOT EXISTS (SELECT 1 FROM wfp.wfp_instances n JOIN wfp.wfp_hosts h ON " \
                  "h.id = n.owner WHERE n.handle = i.self AND n.owner <> $3 AND " \
                  "h.lease_until_ms > " DBNOW ")) ORDER BY i.seq LIMIT $4 FOR UPDATE OF i " \
                  "SKIP LOCKED")                                                  \
  X(C_INST_LOCK, "SELECT n.owner = $2 AND n.epoch = $3 FROM wfp.wfp_instances n WHERE " \
                 "n.handle=$1 AND (n.owner IS NULL OR n.owner = $2 OR " UNHELD("n") ") " \
                 "FOR UPDATE SKIP LOCKED")                                        \
  X(C_INST_ROWS, "SELECT seq FROM wfp.wfp_invocations WHERE self=$1 AND status=0 FOR " \
                 "UPDATE SKIP LOCKED")                                            \
  X(C_INST_COUNT, "SELECT count(*) FROM wfp.wfp_invocations WHERE self=$1 AND status=0") \
  X(C_INST_TAKE, "UPDATE wfp.wfp_instances SET owner=$2, epoch=epoch+1 WHERE handle=$1 " \
                 "RETURNING epoch, resource, props")                              \
  X(C_TAKE, "UPDATE wfp.wfp_invocations SET epoch = CASE WHEN owner IS NOT DISTINCT FROM $2 " \
            "THEN epoch ELSE epoch+1 END, owner=$2 WHERE seq = ANY($1::bigint[]) RETURNING " \
            ROW_COLS ", state IS NOT NULL")                                       \
  X(C_NEXT, "SELECT (SELECT min(i.deadline_ms) FROM wfp.wfp_invocations i WHERE " \
            "i.status=0 AND i.self IS NULL AND i.deadline_ms > $2 AND i.program = " \
            "ANY($1::text[]) AND i.owner IS DISTINCT FROM $3 AND " UNHELD("i") "), (SELECT min(lease_until_ms) - " DBNOW \
            " FROM wfp.wfp_hosts WHERE id <> $3 AND lease_until_ms > " DBNOW ")")   \
  X(C_HANDLES, "SELECT nextval('wfp.wfp_handle_blocks')")                          \
  X(C_LEAVE_INV, "UPDATE wfp.wfp_invocations SET owner=NULL, epoch=epoch+1 WHERE " \
                 "owner=$1 AND status=0")                                         \
  X(C_LEAVE_INST, "UPDATE wfp.wfp_instances SET owner=NULL WHERE owner=$1")        \
  X(C_LEAVE_HOST, "DELETE FROM wfp.wfp_hosts WHERE id=$1")

enum {
#define X(name, sql) name,
  STMTS(X)
#undef X
  NSTMTS
};

static const char *const stmt_sql[NSTMTS] = {
#define X(name, sql) sql,
    STMTS(X)
#undef X
};

static const char *const stmt_name[NSTMTS] = {
#define X(name, sql) #name,
    STMTS(X)
#undef X
};

/* The message of the last failure, per thread (each connection is used by
** one thread, and errmsg is asked right after on that thread). */
static __thread char tl_err[768];

/* One connection and the statements prepared on it. */
typedef struct pg_store pg_store;

typedef struct pgc {
  PGconn *c;
  const char *what; /* "writer", ... for messages */
  bool prepared[NSTMTS];
  pg_store *s;
  bool redo; /* made again when lost (not the writer: its transaction is gone) */
} pgc;

/* A set of int64 (open addressing; 0 is never a member). */
typedef struct i64set {
  int64_t *k;
  size_t cap, n;
} i64set;

/* A context write deferred to the commit (keys in sorted order then). */
typedef struct ctxw {
  char *key;
  size_t len;
  int64_t value;
  bool dflt;
} ctxw;

/* An instance this host holds: handle and epoch. */
typedef struct held {
  uint64_t handle;
  int64_t epoch;
} held;

struct pg_store {
  wfp_store base;
  char *url;
  char host[17];
  int64_t lease_ms;
  char host_name[128];
  pgc w, r, l;
  /* the writer's transaction */
  i64set fenced;
  ctxw *ctx;
  size_t nctx, ctx_cap;
  int64_t *msgs; /* messages added (their ids), numbered at the commit */
  size_t nmsgs, msgs_cap;
  bool notify_work;
  /* instances held (the writer and the cluster thread) */
  pthread_mutex_t mu;
  held *held;
  size_t nheld, held_cap;
  /* instances claimed, held once the loop loaded their properties (hold) */
  held *pend;
  size_t npend, pend_cap;
};

/* ---- small helpers ---- */

static void seterr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void seterr(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tl_err, sizeof tl_err, fmt, ap);
  va_end(ap);
  /* libpq's messages end with a newline, and some hold a hint on a line
  ** of its own: one line */
  size_t n = strlen(tl_err);
  while (n && (tl_err[n - 1] == '\n' || tl_err[n - 1] == ' '))
    tl_err[--n] = 0;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (tl_err[i] == '\n' || tl_err[i] == '\t') {
      if (o && tl_err[o - 1] != ' ')
        tl_err[o++] = ' ';
      continue;
    }
    tl_err[o++] = tl_err[i];
  }
  tl_err[o] = 0;
}

int wfp_store_is_pg(const char *where) {
  return where && (strncmp(where, "postgresql://", 13) == 0 || strncmp(where, "postgres://", 11) == 0);
}

static bool i64set_has(const i64set *s, int64_t v) {
  if (!s->cap)
    return false;
  size_t i = (size_t)((uint64_t)v * 11400714819323198485ull) & (s->cap - 1);
  while (s->k[i]) {
    if (s->k[i] == v)
      return true;
    i = (i + 1) & (s->cap - 1);
  }
  return false;
}

static bool i64set_add(i64set *s, int64_t v) {
  if ((s->n + 1) * 2 > s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    int64_t *k = calloc(cap, sizeof *k);
    if (!k)
      return false;
    for (size_t i = 0; i < s->cap; i++)
      if (s->k[i]) {
        size_t j = (size_t)((uint64_t)s->k[i] * 11400714819323198485ull) & (cap - 1);
        while (k[j])
          j = (j + 1) & (cap - 1);
        k[j] = s->k[i];
      }
    free(s->k);
    s->k = k;
    s->cap = cap;
  }
  size_t i = (size_t)((uint64_t)v * 11400714819323198485ull) & (s->cap - 1);
  while (s->k[i]) {
    if (s->k[i] == v)
      return true;
    i = (i + 1) & (s->cap - 1);
  }
  s->k[i] = v;
  s->n++;
  return true;
}

static void i64set_clear(i64set *s) {
  if (s->n)
    memset(s->k, 0, s->cap * sizeof *s->k);
  s->n = 0;
}

/* Parameters of one statement: integers as text, text and bytes in the
** binary format with their lengths (a NUL or any byte passes as it is). */
#define QMAX 16
typedef struct qp {
  int n;
  const char *v[QMAX];
  int len[QMAX];
  int fmt[QMAX];
  char num[QMAX][24];
} qp;

static void q_i64(qp *q, int64_t v) {
  snprintf(q->num[q->n], sizeof q->num[q->n], "%lld", (long long)v);
  q->v[q->n] = q->num[q->n];
  q->len[q->n] = 0;
  q->fmt[q->n] = 0;
  q->n++;
}

static void q_null(qp *q) {
  q->v[q->n] = NULL;
  q->len[q->n] = 0;
  q->fmt[q->n] = 0;
  q->n++;
}

static void q_bytes(qp *q, const void *p, size_t n) {
  q->v[q->n] = p ? p : "";
  q->len[q->n] = (int)n;
  q->fmt[q->n] = 1;
  q->n++;
}

static void q_str(qp *q, const char *s) {
  if (s)
    q_bytes(q, s, strlen(s));
  else
    q_null(q);
}

/* A text parameter in the text format (arrays: '{a,b}'). */
static void q_text(qp *q, const char *s) {
  q->v[q->n] = s;
  q->len[q->n] = 0;
  q->fmt[q->n] = 0;
  q->n++;
}

static int reconnect(pg_store *s, pgc *x);

/* Runs statement k on connection x (prepared on first use). The result
** (PQclear it), or NULL with the message set. */
static PGresult *run(pgc *x, int k, const qp *q) {
  if (x->redo && (!x->c || PQstatus(x->c) != CONNECTION_OK) &&
      PQtransactionStatus(x->c) != PQTRANS_INTRANS && reconnect(x->s, x))
    return NULL;
  if (!x->c) {
    seterr("the %s connection to the store is closed", x->what);
    return NULL;
  }
  if (!x->prepared[k]) {
    PGresult *p = PQprepare(x->c, stmt_name[k], stmt_sql[k], q ? q->n : 0, NULL);
    if (PQresultStatus(p) != PGRES_COMMAND_OK) {
      seterr("the store (%s): %s", x->what, PQerrorMessage(x->c));
      PQclear(p);
      return NULL;
    }
    PQclear(p);
    x->prepared[k] = true;
  }
  PGresult *r = PQexecPrepared(x->c, stmt_name[k], q ? q->n : 0, q ? q->v : NULL,
                               q ? q->len : NULL, q ? q->fmt : NULL, 0);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    const char *e = PQresultErrorMessage(r);
    seterr("the store (%s): %s", x->what, e && *e ? e : PQerrorMessage(x->c));
    PQclear(r);
    return NULL;
  }
  return r;
}

/* A statement whose result is not wanted: 0 or WFP_EIO. */
static int run0(pgc *x, int k, const qp *q) {
  PGresult *r = run(x, k, q);
  if (!r)
    return WFP_EIO;
  PQclear(r);
  return WFP_OK;
}

/* Plain SQL (no parameters; several statements may follow each other). */
static int exec_sql(pgc *x, const char *sql) {
  if (!x->c) {
    seterr("the %s connection to the store is closed", x->what);
    return WFP_EIO;
  }
  PGresult *r = PQexec(x->c, sql);
  ExecStatusType st = PQresultStatus(r);
  int rc = WFP_OK;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    const char *e = PQresultErrorMessage(r);
    seterr("the store (%s): %s", x->what, e && *e ? e : PQerrorMessage(x->c));
    rc = WFP_EIO;
  }
  PQclear(r);
  return rc;
}

static int64_t col_i64(const PGresult *r, int row, int col) {
  if (PQgetisnull(r, row, col))
    return 0;
  return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* A bytea column (text format: \x and hex digits) decoded into b. */
static bool col_bytes(const PGresult *r, int row, int col, wfp__buf *b) {
  b->len = 0;
  b->oom = false;
  if (PQgetisnull(r, row, col))
    return true;
  const char *v = PQgetvalue(r, row, col);
  size_t n = (size_t)PQgetlength(r, row, col);
  if (n < 2 || v[0] != '\\' || v[1] != 'x')
    return false;
  if (!wfp__buf_reserve(b, n / 2 + 1))
    return false;
  for (size_t i = 2; i + 1 < n; i += 2) {
    int a = hexval(v[i]), c = hexval(v[i + 1]);
    if (a < 0 || c < 0)
      return false;
    b->data[b->len++] = (char)(a << 4 | c);
  }
  b->data[b->len] = 0;
  return true;
}

static const char *col_str(const PGresult *r, int row, int col) {
  return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

/* ---- instances held (under mu) ---- */

static int64_t held_get(pg_store *s, uint64_t h) {
  int64_t e = 0;
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < s->nheld; i++)
    if (s->held[i].handle == h)
      e = s->held[i].epoch;
  pthread_mutex_unlock(&s->mu);
  return e;
}

static bool held_set(pg_store *s, uint64_t h, int64_t epoch) {
  bool ok = true;
  pthread_mutex_lock(&s->mu);
  size_t i = 0;
  while (i < s->nheld && s->held[i].handle != h)
    i++;
  if (epoch <= 0) {
    if (i < s->nheld)
      s->held[i] = s->held[--s->nheld];
  } else if (i < s->nheld) {
    s->held[i].epoch = epoch;
  } else {
    if (s->nheld == s->held_cap) {
      size_t cap = s->held_cap ? s->held_cap * 2 : 16;
      held *n = realloc(s->held, cap * sizeof *n);
      if (!n)
        ok = false;
      else {
        s->held = n;
        s->held_cap = cap;
      }
    }
    if (ok)
      s->held[s->nheld++] = (held){h, epoch};
  }
  pthread_mutex_unlock(&s->mu);
  return ok;
}

/* ---- writing ---- */

static void txn_reset(pg_store *s) {
  i64set_clear(&s->fenced);
  for (size_t i = 0; i < s->nctx; i++)
    free(s->ctx[i].key);
  s->nctx = 0;
  s->nmsgs = 0;
  s->notify_work = false;
}

static int pg_begin(wfp_store *b) {
  pg_store *s = (pg_store *)b;
  txn_reset(s);
  return exec_sql(&s->w, "BEGIN");
}

static int ctx_cmp(const void *a, const void *b) {
  const ctxw *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->key, y->key, n);
  return c ? c : (x->len > y->len) - (x->len < y->len);
}

/*
** The commit: the context writes, each key once and all in one order
** (sorted: two hosts writing the same keys never wait for each other in a
** circle), then the messages' numbers (the counter row is the last lock
** taken, held for the commit only), then COMMIT.
*/
static int pg_commit(wfp_store *b) {
  pg_store *s = (pg_store *)b;
  int rc = WFP_OK;
  if (s->nctx > 1)
    qsort(s->ctx, s->nctx, sizeof *s->ctx, ctx_cmp);
  for (size_t i = 0; !rc && i < s->nctx; i++) {
    qp q = {0};
    q_bytes(&q, s->ctx[i].key, s->ctx[i].len);
    q_i64(&q, s->ctx[i].value);
    rc = run0(&s->w, s->ctx[i].dflt ? W_CTX_DEFAULT : W_CTX, &q);
  }
  if (!rc && s->nmsgs) {
    qp q = {0};
    q_i64(&q, (int64_t)s->nmsgs);
    PGresult *r = run(&s->w, W_MSG_SEQ, &q);
    if (!r || PQntuples(r) != 1) {
      if (r)
        seterr("the store: the message counter is missing");
      PQclear(r);
      rc = WFP_EIO;
    } else {
      int64_t base = col_i64(r, 0, 0) - (int64_t)s->nmsgs;
      PQclear(r);
      wfp__buf ids;
      wfp__buf_init(&ids);
      wfp__buf_addc(&ids, '{');
      for (size_t i = 0; i < s->nmsgs; i++)
        wfp__buf_printf(&ids, "%s%lld", i ? "," : "", (long long)s->msgs[i]);
      wfp__buf_addc(&ids, '}');
      if (ids.oom) {
        rc = WFP_ENOMEM;
      } else {
        qp q2 = {0};
        q_i64(&q2, base);
        q_text(&q2, ids.data);
        rc = run0(&s->w, W_MSG_NUMBER, &q2);
      }
      wfp__buf_free(&ids);
    }
  }
  if (!rc && s->notify_work)
    rc = exec_sql(&s->w, "NOTIFY wfp_work");
  if (!rc)
    rc = exec_sql(&s->w, "COMMIT");
  txn_reset(s);
  return rc;
}

static void pg_rollback(wfp_store *b) {
  pg_store *s = (pg_store *)b;
  txn_reset(s);
  if (s->w.c && PQtransactionStatus(s->w.c) != PQTRANS_IDLE) {
    PGresult *r = PQexec(s->w.c, "ROLLBACK");
    PQclear(r);
  }
}

static int pg_inv_create(wfp_store *b, const wfp_store_new *n, int64_t *seq) {
  pg_store *s = (pg_store *)b;
  /* a method of an instance runs where its instance is held: here when
  ** this host holds it still, else the holder claims it */
  bool owned = true;
  if (n->self) {
    int64_t e = held_get(s, n->self);
    owned = false;
    if (e > 0) {
      qp q = {0};
      q_i64(&q, (int64_t)n->self);
      q_str(&q, s->host);
      q_i64(&q, e);
      PGresult *r = run(&s->w, W_INST_HELD, &q);
      if (!r)
        return WFP_EIO;
      owned = PQntuples(r) == 1;
      PQclear(r);
      if (!owned)
        held_set(s, n->self, 0);
    }
  }
  qp q = {0};
  q_str(&q, n->id);
  q_str(&q, n->program);
  q_str(&q, n->fn);
  q_bytes(&q, n->input, n->input_len);
  if (n->self)
    q_i64(&q, (int64_t)n->self);
  else
    q_null(&q);
  q_str(&q, n->origin);
  q_i64(&q, n->now_ms);
  if (owned)
    q_str(&q, s->host);
  else
    q_null(&q);
  q_i64(&q, owned ? 1 : 0);
  PGresult *r = run(&s->w, W_CREATE, &q);
  if (!r)
    return WFP_EIO;
  *seq = col_i64(r, 0, 0);
  PQclear(r);
  if (owned) {
    /* held from now: later records of this transaction need no fence */
    if (!i64set_add(&s->fenced, *seq))
      return WFP_ENOMEM;
  } else {
    s->notify_work = true;
  }
  if (n->owned_out)
    *n->owned_out = owned;
  if (n->epoch_out)
    *n->epoch_out = owned ? 1 : 0;
  return WFP_OK;
}

static int pg_inv_step(wfp_store *b, const wfp_store_step *x) {
  pg_store *s = (pg_store *)b;
  qp q = {0};
  q_bytes(&q, x->state, x->state_len);
  if (x->effect >= 0) {
    q_i64(&q, x->effect);
    q_bytes(&q, x->key ? x->key : "", x->key_len);
    q_bytes(&q, x->json ? x->json : "", x->json_len);
    if (x->each)
      q_bytes(&q, x->each, x->each_len);
    else
      q_null(&q);
    q_i64(&q, x->i64);
    if (x->wake_at)
      q_i64(&q, x->wake_at);
    else
      q_null(&q);
    q_null(&q);
  } else {
    for (int i = 0; i < 6; i++)
      q_null(&q);
    if (x->has_resume)
      q_bytes(&q, x->resume ? x->resume : "", x->resume_len);
    else
      q_null(&q);
  }
  q_i64(&q, (int64_t)x->steps);
  q_i64(&q, (int64_t)x->fuel);
  q_i64(&q, x->now_ms);
  q_i64(&q, x->seq);
  return run0(&s->w, W_STEP, &q);
}

static int pg_inv_end(wfp_store *b, int64_t seq, int status, const char *text, uint64_t steps,
                      uint64_t fuel, int64_t now_ms) {
  pg_store *s = (pg_store *)b;
  qp q = {0};
  q_i64(&q, status);
  if (status == WFP_STORE_DONE) {
    q_str(&q, text ? text : "");
    q_null(&q);
  } else {
    q_null(&q);
    q_str(&q, text ? text : "");
  }
  q_i64(&q, (int64_t)steps);
  q_i64(&q, (int64_t)fuel);
  q_i64(&q, now_ms);
  q_i64(&q, seq);
  return run0(&s->w, W_END, &q);
}

/*
** An idempotency key: another host may be creating an invocation with the
** same key at this moment. Its key's advisory lock makes the second wait
** for the first's commit and then see its row. The wait is bounded (a
** savepoint and a lock timeout): past it the request is answered 503, to
** be retried with the same key, instead of two transactions waiting for
** each other.
*/
static int pg_idem_get(wfp_store *b, const char *key, char id[17]) {
  pg_store *s = (pg_store *)b;
  if (exec_sql(&s->w, "SAVEPOINT wfp_idem; SET LOCAL lock_timeout = 800"))
    return WFP_EIO;
  qp q = {0};
  q_i64(&q, LOCK_CLASS);
  q_str(&q, key);
  PGresult *r = run(&s->w, W_IDEM_LOCK, &q);
  if (!r) {
    char saved[sizeof tl_err];
    snprintf(saved, sizeof saved, "%s", tl_err);
    if (exec_sql(&s->w, "ROLLBACK TO SAVEPOINT wfp_idem; RELEASE SAVEPOINT wfp_idem; "
                        "SET LOCAL lock_timeout = 0"))
      return WFP_EIO;
    seterr("another request with this Idempotency-Key is being taken (%s)", saved);
    return WFP_ELIMIT;
  }
  PQclear(r);
  if (exec_sql(&s->w, "RELEASE SAVEPOINT wfp_idem; SET LOCAL lock_timeout = 0"))
    return WFP_EIO;
  qp q2 = {0};
  q_str(&q2, key);
  r = run(&s->w, W_IDEM_GET, &q2);
  if (!r)
    return WFP_EIO;
  int found = PQntuples(r) == 1;
  if (found)
    snprintf(id, 17, "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  return found;
}

static int pg_idem_put(wfp_store *b, const char *key, const char *id, int64_t now_ms) {
  pg_store *s = (pg_store *)b;
  qp q = {0};
  q_str(&q, key);
  q_str(&q, id);
  q_i64(&q, now_ms);
  return run0(&s->w, W_IDEM_PUT, &q);
}

/* Context writes wait for the commit (pg_commit): the last one of a key
** in the transaction is the one written. */
static int ctx_defer(pg_store *s, const char *key, size_t len, int64_t value, bool dflt) {
  for (size_t i = 0; i < s->nctx; i++)
    if (s->ctx[i].len == len && memcmp(s->ctx[i].key, key, len) == 0) {
      if (!dflt) {
        s->ctx[i].value = value;
        s->ctx[i].dflt = false;
      }
      return WFP_OK;
    }
  if (s->nctx == s->ctx_cap) {
    size_t cap = s->ctx_cap ? s->ctx_cap * 2 : 16;
    ctxw *n = realloc(s->ctx, cap * sizeof *n);
    if (!n)
      return WFP_ENOMEM;
    s->ctx = n;
    s->ctx_cap = cap;
  }
  char *k = malloc(len ? len : 1);
  if (!k)
    return WFP_ENOMEM;
  if (len)
    memcpy(k, key, len);
  s->ctx[s->nctx++] = (ctxw){k, len, value, dflt};
  return WFP_OK;
}

static int pg_ctx_set(wfp_store *b, const char *key, size_t len, int64_t value) {
  return ctx_defer((pg_store *)b, key ? key : "", len, value, false);
}

static int pg_ctx_default(wfp_store *b, const char *key, size_t len, int64_t value) {
  return ctx_defer((pg_store *)b, key ? key : "", len, value, true);
}

static int pg_msg_add(wfp_store *b, const char *topic, size_t tn, const char *payload,
                      size_t pn, const char *invocation, int64_t now_ms, int64_t *seq) {
  pg_store *s = (pg_store *)b;
  if (s->nmsgs == s->msgs_cap) {
    size_t cap = s->msgs_cap ? s->msgs_cap * 2 : 64;
    int64_t *n = realloc(s->msgs, cap * sizeof *n);
    if (!n)
      return WFP_ENOMEM;
    s->msgs = n;
    s->msgs_cap = cap;
  }
  qp q = {0};
  q_bytes(&q, topic ? topic : "", tn);
  q_bytes(&q, payload ? payload : "", pn);
  q_str(&q, invocation);
  q_i64(&q, now_ms);
  PGresult *r = run(&s->w, W_MSG, &q);
  if (!r)
    return WFP_EIO;
  *seq = col_i64(r, 0, 0);
  PQclear(r);
  s->msgs[s->nmsgs++] = *seq;
  return WFP_OK;
}

static int each_msg(PGresult *r, wfp_store_msg_cb cb, void *ud) {
  wfp__buf topic;
  wfp__buf_init(&topic);
  int rc = WFP_OK;
  for (int i = 0, n = PQntuples(r); i < n && !rc; i++) {
    wfp_store_msg m;
    m.seq = col_i64(r, i, 0);
    if (!col_bytes(r, i, 1, &topic)) {
      rc = topic.oom ? WFP_ENOMEM : WFP_EIO;
      seterr("the store: a message's topic is not bytes");
      break;
    }
    m.topic = topic.data ? topic.data : "";
    m.topic_len = topic.len;
    m.payload = col_str(r, i, 2);
    m.payload_len = (size_t)PQgetlength(r, i, 2);
    if (!m.payload)
      m.payload = "null", m.payload_len = 4;
    m.invocation = col_str(r, i, 3);
    if (!m.invocation)
      m.invocation = "";
    rc = cb(ud, &m);
  }
  wfp__buf_free(&topic);
  PQclear(r);
  return rc;
}

static int pg_msg_scan(wfp_store *b, const char *topic, int64_t after, wfp_store_msg_cb cb,
                       void *ud) {
  pg_store *s = (pg_store *)b;
  qp q = {0};
  q_str(&q, topic);
  q_i64(&q, after);
  PGresult *r = run(&s->w, W_MSG_SCAN, &q);
  return r ? each_msg(r, cb, ud) : WFP_EIO;
}

static int pg_msg_last(wfp_store *b, int64_t *seq) {
  pg_store *s = (pg_store *)b;
  PGresult *r = run(&s->w, W_MSG_LAST, NULL);
  if (!r)
    return WFP_EIO;
  *seq = col_i64(r, 0, 0);
  PQclear(r);
  return WFP_OK;
}

/* A subscriber's cursor is the largest message (id) it got an invocation
** for: one row per delivery, inserted, never updated, so that hosts adding
** messages at once never wait for one row. */
static int pg_cursor_get(wfp_store *b, const char *name, int64_t *seq) {
  pg_store *s = (pg_store *)b;
  qp q = {0};
  q_str(&q, name);
  PGresult *r = run(&s->w, W_CUR_GET, &q);
  if (!r)
    return WFP_EIO;
  int has = !PQgetisnull(r, 0, 0);
  *seq = col_i64(r, 0, 0);
  PQclear(r);
  return has;
}

static int pg_cursor_set(wfp_store *b, const char *name, int64_t seq) {
  pg_store *s = (pg_store *)b;
  qp q = {0};
  q_str(&q, name);
  q_i64(&q, seq);
  /* a row already there (another host's, committed: the insert waited for
  ** it) answers 1 */
  PGresult *r = run(&s->w, W_CUR_SET, &q);
  if (!r)
    return WFP_EIO;
  int again = PQntuples(r) == 0;
  PQclear(r);
  return again;
}

static int pg_inst_put(wfp_store *b, uint64_t handle, const char *resource, const char *props) {
  pg_store *s = (pg_store *)b;
  qp q = {0};
  q_i64(&q, (int64_t)handle);
  q_str(&q, resource);
  q_str(&q, props);
  q_str(&q, s->host);
  PGresult *r = run(&s->w, W_INST, &q);
  if (!r)
    return WFP_EIO;
  /* a new instance is held by the host that made it */
  bool made = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
  PQclear(r);
  if (made && !held_set(s, handle, 1))
    return WFP_ENOMEM;
  return WFP_OK;
}

/* A schedule's row is locked by the host that ticks it; another one that
** finds it locked leaves the tick to that one (and looks again later). */
static int pg_sched_get(wfp_store *b, const char *name, int64_t *due) {
  pg_store *s = (pg_store *)b;
  qp q = {0};
  q_str(&q, name);
  PGresult *r = run(&s->w, W_SCHED_GET, &q);
  if (!r)
    return WFP_EIO;
  int has = PQntuples(r) == 1;
  if (has) {
    *due = col_i64(r, 0, 0);
    PQclear(r);
    return 1;
  }
  PQclear(r);
  r = run(&s->w, W_SCHED_ANY, &q);
  if (!r)
    return WFP_EIO;
  has = PQntuples(r) == 1;
  PQclear(r);
  if (has) {
    /* another host ticks it now: look again in a second */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    *due = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1000;
    return 1;
  }
  return 0;
}

static int pg_sched_set(wfp_store *b, const char *name, int64_t due) {
  pg_store *s = (pg_store *)b;
  qp q = {0};
  q_str(&q, name);
  q_i64(&q, due);
  return run0(&s->w, W_SCHED_SET, &q);
}

static int pg_db_run(wfp_store *b, wfp_db_job *job) {
  pg_store *s = (pg_store *)b;
  char m[600];
  if (!s->w.c) {
    seterr("the writer connection to the store is closed");
    return WFP_EIO;
  }
  /* a row lock of another host's transaction is waited for up to two
  ** leases (the server ends a paused host's transaction by then) on top
  ** of the query's own time: contention is not the program's fault */
  int rc = wfp_pgq_in_txn(s->w.c, job, (long)(2 * s->lease_ms) + 1000, m, sizeof m);
  if (rc)
    seterr("%s", m);
  return rc;
}

/* ---- fences ---- */

static int pg_fence(wfp_store *b, int64_t seq, int64_t epoch) {
  pg_store *s = (pg_store *)b;
  if (i64set_has(&s->fenced, seq))
    return 1;
  qp q = {0};
  q_i64(&q, seq);
  q_i64(&q, epoch);
  q_str(&q, s->host);
  PGresult *r = run(&s->w, W_FENCE, &q);
  if (!r)
    return WFP_EIO;
  int ours = PQntuples(r) == 1;
  PQclear(r);
  if (ours && !i64set_add(&s->fenced, seq))
    return WFP_ENOMEM;
  return ours;
}

static int pg_release(wfp_store *b, int64_t seq, int64_t epoch) {
  pg_store *s = (pg_store *)b;
  qp q = {0};
  q_i64(&q, seq);
  q_i64(&q, epoch);
  q_str(&q, s->host);
  s->notify_work = true;
  return run0(&s->w, W_RELEASE, &q);
}

/* ---- reading ---- */

typedef struct rowbufs {
  wfp__buf state, key;
} rowbufs;

static int read_row(const PGresult *r, int i, wfp_store_row *w, rowbufs *b) {
  memset(w, 0, sizeof *w);
  w->seq = col_i64(r, i, 0);
  w->id = col_str(r, i, 1);
  w->program = col_str(r, i, 2);
  w->fn = col_str(r, i, 3);
  w->input = col_str(r, i, 4);
  w->input_len = (size_t)PQgetlength(r, i, 4);
  w->origin = col_str(r, i, 5);
  w->status = (int)col_i64(r, i, 6);
  w->self = (uint64_t)col_i64(r, i, 7);
  if (!col_bytes(r, i, 8, &b->state) || !col_bytes(r, i, 10, &b->key)) {
    seterr("the store: an invocation's bytes are malformed");
    return b->state.oom || b->key.oom ? WFP_ENOMEM : WFP_EIO;
  }
  w->state = (const uint8_t *)b->state.data;
  w->state_len = b->state.len;
  w->effect = PQgetisnull(r, i, 9) ? -1 : (int)col_i64(r, i, 9);
  w->key = PQgetisnull(r, i, 10) ? NULL : b->key.data ? b->key.data : "";
  w->key_len = b->key.len;
  w->json = col_str(r, i, 11);
  w->json_len = (size_t)PQgetlength(r, i, 11);
  w->each = col_str(r, i, 12);
  w->each_len = (size_t)PQgetlength(r, i, 12);
  w->i64 = col_i64(r, i, 13);
  w->wake_at = col_i64(r, i, 14);
  w->has_resume = !PQgetisnull(r, i, 15);
  w->resume = col_str(r, i, 15);
  w->resume_len = (size_t)PQgetlength(r, i, 15);
  w->output = col_str(r, i, 16);
  w->trap = col_str(r, i, 17);
  w->steps = (uint64_t)col_i64(r, i, 18);
  w->fuel = (uint64_t)col_i64(r, i, 19);
  w->created_ms = col_i64(r, i, 20);
  w->updated_ms = col_i64(r, i, 21);
  w->epoch = col_i64(r, i, 22);
  if (!w->id)
    w->id = "";
  if (!w->program)
    w->program = "";
  if (!w->fn)
    w->fn = "";
  if (!w->input)
    w->input = "";
  if (!w->origin)
    w->origin = "";
  return WFP_OK;
}

static int each_row(PGresult *r, wfp_store_row_cb cb, void *ud, int *n) {
  rowbufs b;
  wfp__buf_init(&b.state);
  wfp__buf_init(&b.key);
  int rc = WFP_OK;
  *n = PQntuples(r);
  for (int i = 0; i < *n && !rc; i++) {
    wfp_store_row row;
    if ((rc = read_row(r, i, &row, &b)) == 0)
      rc = cb(ud, &row);
  }
  wfp__buf_free(&b.state);
  wfp__buf_free(&b.key);
  PQclear(r);
  return rc;
}

static int pg_load_ctx(wfp_store *b, wfp_store_ctx_cb cb, void *ud) {
  pg_store *s = (pg_store *)b;
  PGresult *r = run(&s->r, R_CTX, NULL);
  if (!r)
    return WFP_EIO;
  wfp__buf k;
  wfp__buf_init(&k);
  int rc = WFP_OK;
  for (int i = 0, n = PQntuples(r); i < n && !rc; i++) {
    if (!col_bytes(r, i, 0, &k)) {
      seterr("the store: a context key is malformed");
      rc = k.oom ? WFP_ENOMEM : WFP_EIO;
      break;
    }
    rc = cb(ud, k.data ? k.data : "", k.len, col_i64(r, i, 1));
  }
  wfp__buf_free(&k);
  PQclear(r);
  return rc;
}

static int pg_ctx_get(wfp_store *b, const char *key, size_t len, int64_t *value) {
  pg_store *s = (pg_store *)b;
  qp q = {0};
  q_bytes(&q, key ? key : "", len);
  PGresult *r = run(&s->r, R_CTX_ONE, &q);
  if (!r)
    return WFP_EIO;
  int has = PQntuples(r) == 1;
  if (has)
    *value = col_i64(r, 0, 0);
  PQclear(r);
  return has;
}

static int each_inst(PGresult *r, wfp_store_inst_cb cb, void *ud, int *n) {
  int rc = WFP_OK;
  *n = PQntuples(r);
  for (int i = 0; i < *n && !rc; i++) {
    const char *res = col_str(r, i, 1), *props = col_str(r, i, 2);
    rc = cb(ud, (uint64_t)col_i64(r, i, 0), res ? res : "", props ? props : "{}");
  }
  PQclear(r);
  return rc;
}

static int pg_load_instances(wfp_store *b, wfp_store_inst_cb cb, void *ud) {
  pg_store *s = (pg_store *)b;
  PGresult *r = run(&s->r, R_INSTS, NULL);
  int n;
  return r ? each_inst(r, cb, ud, &n) : WFP_EIO;
}

/* The invocations this host holds (none at its start: a host's id is new
** with each process; others come by claims, cluster.c). */
static int pg_load_pending(wfp_store *b, wfp_store_row_cb cb, void *ud) {
  pg_store *s = (pg_store *)b;
  qp q = {0};
  q_str(&q, s->host);
  PGresult *r = run(&s->r, R_PENDING, &q);
  int n;
  return r ? each_row(r, cb, ud, &n) : WFP_EIO;
}

static int pg_load_counts(wfp_store *b, wfp_store_count_cb cb, void *ud) {
  pg_store *s = (pg_store *)b;
  PGresult *r = run(&s->r, R_COUNTS, NULL);
  if (!r)
    return WFP_EIO;
  int rc = WFP_OK;
  for (int i = 0, n = PQntuples(r); i < n && !rc; i++) {
    const char *fn = col_str(r, i, 0);
    rc = cb(ud, fn ? fn : "", (int)col_i64(r, i, 1), (uint64_t)col_i64(r, i, 2));
  }
  PQclear(r);
  return rc;
}

static int pg_load_traps(wfp_store *b, int n, wfp_store_row_cb cb, void *ud) {
  pg_store *s = (pg_store *)b;
  qp q = {0};
  q_i64(&q, n);
  PGresult *r = run(&s->r, R_TRAPS, &q);
  int k;
  return r ? each_row(r, cb, ud, &k) : WFP_EIO;
}

static int pg_get_inv(wfp_store *b, const char *id, wfp_store_row_cb cb, void *ud) {
  pg_store *s = (pg_store *)b;
  qp q = {0};
  q_str(&q, id);
  PGresult *r = run(&s->r, R_INV, &q);
  if (!r)
    return WFP_EIO;
  int n;
  int rc = each_row(r, cb, ud, &n);
  return rc ? rc : n > 0;
}

static int pg_messages(wfp_store *b, const char *topic, int64_t after, int64_t limit,
                       wfp_store_msg_cb cb, void *ud) {
  pg_store *s = (pg_store *)b;
  qp q = {0};
  PGresult *r;
  if (topic) {
    q_str(&q, topic);
    q_i64(&q, after);
    q_i64(&q, limit);
    r = run(&s->r, R_MSGS_TOPIC, &q);
  } else {
    q_i64(&q, after);
    q_i64(&q, limit);
    r = run(&s->r, R_MSGS, &q);
  }
  return r ? each_msg(r, cb, ud) : WFP_EIO;
}

static int pg_get_instance(wfp_store *b, uint64_t handle, wfp_store_inst_cb cb, void *ud) {
  pg_store *s = (pg_store *)b;
  qp q = {0};
  q_i64(&q, (int64_t)handle);
  PGresult *r = run(&s->r, R_INST, &q);
  if (!r)
    return WFP_EIO;
  int n;
  int rc = each_inst(r, cb, ud, &n);
  return rc ? rc : n > 0;
}

/* ---- the cluster's connection: heartbeat, claims, notifications ---- */


static int pg_heartbeat(wfp_store *b, int *lapsed) {
  pg_store *s = (pg_store *)b;
  *lapsed = 0;
  if ((!s->l.c || PQstatus(s->l.c) != CONNECTION_OK) && reconnect(s, &s->l))
    return WFP_EIO;
  qp q = {0};
  q_str(&q, s->host);
  q_str(&q, s->host_name);
  q_i64(&q, (int64_t)getpid());
  q_i64(&q, s->lease_ms);
  PGresult *r = run(&s->l, C_HEARTBEAT, &q);
  if (!r)
    return WFP_EIO;
  *lapsed = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
  PQclear(r);
  return WFP_OK;
}

static int pg_listen(wfp_store *b, int wake_fd, int ms) {
  pg_store *s = (pg_store *)b;
  if ((!s->l.c || PQstatus(s->l.c) != CONNECTION_OK) && reconnect(s, &s->l)) {
    /* the database is away: wait, then try again */
    struct pollfd p = {wake_fd, POLLIN, 0};
    poll(&p, 1, ms > 1000 ? 1000 : ms);
    return WFP_EIO;
  }
  int notes = 0;
  for (;;) {
    PGnotify *n;
    while ((n = PQnotifies(s->l.c)) != NULL) {
      if (strcmp(n->relname, "wfp_work") == 0)
        notes |= WFP_STORE_NOTE_WORK;
      PQfreemem(n);
    }
    if (notes)
      return notes;
    struct pollfd p[2] = {{PQsocket(s->l.c), POLLIN, 0}, {wake_fd, POLLIN, 0}};
    int k = poll(p, 2, ms);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0 || (p[1].revents & POLLIN))
      return 0;
    if (!PQconsumeInput(s->l.c)) {
      seterr("the store (listener): %s", PQerrorMessage(s->l.c));
      return WFP_EIO;
    }
    ms = 0; /* what arrived is read; nothing more is waited for */
  }
}

typedef struct cand {
  int64_t seq;
  uint64_t self;
} cand;

static int arr_add(wfp__buf *b, int64_t v) {
  wfp__buf_printf(b, "%s%lld", b->len > 1 ? "," : "", (long long)v);
  return b->oom ? WFP_ENOMEM : WFP_OK;
}

/* Takes instance h, and every pending invocation on it, when its holder
** is gone: 1 taken (their ids added to seqs), 2 this host holds it
** already, 0 not now. Invocations on it this host holds already (made
** while it held the instance before, waiting here for their turn) keep
** their epoch (C_TAKE): they run on here, and would fail their fence
** with a new one. */
static int take_instance(pg_store *s, uint64_t h, wfp__buf *seqs, wfp_store_claim *c) {
  qp q = {0};
  q_i64(&q, (int64_t)h);
  q_str(&q, s->host);
  q_i64(&q, held_get(s, h));
  PGresult *r = run(&s->l, C_INST_LOCK, &q);
  if (!r)
    return WFP_EIO;
  if (PQntuples(r) != 1) { /* held by a live host, or being used: not now */
    PQclear(r);
    return 0;
  }
  bool mine = PQgetvalue(r, 0, 0)[0] == 't';
  PQclear(r);
  if (mine)
    return 2;
  /* all of its pending invocations come with it (the one that had begun
  ** runs first, as it would have), or none: some are still locked by a
  ** transaction of the host that held it */
  qp q1 = {0};
  q_i64(&q1, (int64_t)h);
  r = run(&s->l, C_INST_ROWS, &q1);
  if (!r)
    return WFP_EIO;
  int locked = PQntuples(r);
  PGresult *cnt = run(&s->l, C_INST_COUNT, &q1);
  if (!cnt) {
    PQclear(r);
    return WFP_EIO;
  }
  int all = (int)col_i64(cnt, 0, 0);
  PQclear(cnt);
  if (locked < all) {
    PQclear(r);
    return 0;
  }
  for (int i = 0; i < locked; i++)
    if (arr_add(seqs, col_i64(r, i, 0))) {
      PQclear(r);
      return WFP_ENOMEM;
    }
  PQclear(r);
  qp q2 = {0};
  q_i64(&q2, (int64_t)h);
  q_str(&q2, s->host);
  r = run(&s->l, C_INST_TAKE, &q2);
  if (!r)
    return WFP_EIO;
  int64_t epoch = col_i64(r, 0, 0);
  const char *res = col_str(r, 0, 1), *props = col_str(r, 0, 2);
  int rc = c->inst ? c->inst(c->ud, h, res ? res : "", props ? props : "{}") : 0;
  PQclear(r);
  if (rc)
    return rc;
  /* held once the loop has its properties: an invocation made on it
  ** before would run on what the loop had of it */
  pthread_mutex_lock(&s->mu);
  if (s->npend == s->pend_cap) {
    size_t cap = s->pend_cap ? s->pend_cap * 2 : 8;
    held *n = realloc(s->pend, cap * sizeof *n);
    if (!n) {
      pthread_mutex_unlock(&s->mu);
      return WFP_ENOMEM;
    }
    s->pend = n;
    s->pend_cap = cap;
  }
  s->pend[s->npend++] = (held){h, epoch};
  pthread_mutex_unlock(&s->mu);
  return 1;
}

static void pg_hold(wfp_store *b) {
  pg_store *s = (pg_store *)b;
  pthread_mutex_lock(&s->mu);
  size_t n = s->npend;
  held *p = s->pend;
  s->pend = NULL;
  s->npend = s->pend_cap = 0;
  pthread_mutex_unlock(&s->mu);
  for (size_t i = 0; i < n; i++)
    held_set(s, p[i].handle, p[i].epoch);
  free(p);
}

typedef struct taken {
  int i;
  bool begun;
  int64_t seq;
} taken;

static int taken_cmp(const void *a, const void *b) {
  const taken *x = a, *y = b;
  if (x->begun != y->begun)
    return x->begun ? -1 : 1;
  return (x->seq > y->seq) - (x->seq < y->seq);
}

static int claim_txn(pg_store *s, wfp_store_claim *c, const char *progs) {
  qp q = {0};
  q_text(&q, progs);
  q_i64(&q, c->now_ms + c->ahead_ms);
  q_str(&q, s->host);
  q_i64(&q, c->limit);
  PGresult *r = run(&s->l, C_CANDIDATES, &q);
  if (!r)
    return WFP_EIO;
  int n = PQntuples(r);
  c->full = n >= c->limit;
  cand *cs = calloc((size_t)n + 1, sizeof *cs);
  if (!cs) {
    PQclear(r);
    return WFP_ENOMEM;
  }
  for (int i = 0; i < n; i++) {
    cs[i].seq = col_i64(r, i, 0);
    cs[i].self = (uint64_t)col_i64(r, i, 1);
  }
  PQclear(r);
  wfp__buf seqs;
  wfp__buf_init(&seqs);
  wfp__buf_addc(&seqs, '{');
  int rc = WFP_OK;
  for (int i = 0; i < n && !rc; i++) {
    if (!cs[i].self) {
      rc = arr_add(&seqs, cs[i].seq);
      continue;
    }
    /* an instance's invocations: decided once per instance */
    bool seen = false;
    for (int k = 0; k < i && !seen; k++)
      seen = cs[k].self == cs[i].self;
    if (seen)
      continue;
    int t = take_instance(s, cs[i].self, &seqs, c);
    if (t < 0)
      rc = t;
    else if (t == 2) /* held here already: its candidates are ours */
      for (int k = i; k < n && !rc; k++)
        if (cs[k].self == cs[i].self)
          rc = arr_add(&seqs, cs[k].seq);
  }
  free(cs);
  wfp__buf_addc(&seqs, '}');
  if (!rc && seqs.oom)
    rc = WFP_ENOMEM;
  if (!rc && seqs.len > 2) {
    qp q2 = {0};
    q_text(&q2, seqs.data);
    q_str(&q2, s->host);
    r = run(&s->l, C_TAKE, &q2);
    if (!r) {
      rc = WFP_EIO;
    } else {
      int m = PQntuples(r);
      taken *ord = calloc((size_t)m + 1, sizeof *ord);
      if (!ord) {
        rc = WFP_ENOMEM;
      } else {
        for (int i = 0; i < m; i++) {
          ord[i].i = i;
          ord[i].seq = col_i64(r, i, 0);
          ord[i].begun = PQgetvalue(r, i, 23)[0] == 't';
        }
        qsort(ord, (size_t)m, sizeof *ord, taken_cmp);
        rowbufs b;
        wfp__buf_init(&b.state);
        wfp__buf_init(&b.key);
        for (int i = 0; i < m && !rc; i++) {
          wfp_store_row row;
          if ((rc = read_row(r, ord[i].i, &row, &b)) == 0)
            rc = c->row(c->ud, &row);
        }
        wfp__buf_free(&b.state);
        wfp__buf_free(&b.key);
        free(ord);
      }
      PQclear(r);
    }
  }
  wfp__buf_free(&seqs);
  if (rc)
    return rc;
  qp q3 = {0};
  q_text(&q3, progs);
  q_i64(&q3, c->now_ms + c->ahead_ms);
  q_str(&q3, s->host);
  r = run(&s->l, C_NEXT, &q3);
  if (!r)
    return WFP_EIO;
  c->next_due_ms = col_i64(r, 0, 0);
  c->next_expiry_ms = PQgetisnull(r, 0, 1) ? -1 : col_i64(r, 0, 1);
  PQclear(r);
  return WFP_OK;
}

static int pg_claim(wfp_store *b, wfp_store_claim *c) {
  pg_store *s = (pg_store *)b;
  c->full = 0;
  c->next_due_ms = 0;
  c->next_expiry_ms = -1;
  if ((!s->l.c || PQstatus(s->l.c) != CONNECTION_OK) && reconnect(s, &s->l))
    return WFP_EIO;
  wfp__buf progs;
  wfp__buf_init(&progs);
  wfp__buf_addc(&progs, '{');
  for (int i = 0; i < c->nprograms; i++)
    wfp__buf_printf(&progs, "%s\"%s\"", i ? "," : "", c->programs[i]);
  wfp__buf_addc(&progs, '}');
  if (progs.oom) {
    wfp__buf_free(&progs);
    return WFP_ENOMEM;
  }
  int rc = exec_sql(&s->l, "BEGIN");
  if (!rc)
    rc = claim_txn(s, c, progs.data);
  if (!rc)
    rc = exec_sql(&s->l, "COMMIT");
  if (rc && s->l.c && PQtransactionStatus(s->l.c) != PQTRANS_IDLE)
    PQclear(PQexec(s->l.c, "ROLLBACK"));
  if (rc) { /* no instance was taken after all */
    pthread_mutex_lock(&s->mu);
    s->npend = 0;
    pthread_mutex_unlock(&s->mu);
  }
  wfp__buf_free(&progs);
  return rc;
}

static int pg_handles(wfp_store *b, uint64_t *first, uint64_t *n) {
  pg_store *s = (pg_store *)b;
  if ((!s->l.c || PQstatus(s->l.c) != CONNECTION_OK) && reconnect(s, &s->l))
    return WFP_EIO;
  PGresult *r = run(&s->l, C_HANDLES, NULL);
  if (!r)
    return WFP_EIO;
  int64_t block = col_i64(r, 0, 0);
  PQclear(r);
  *first = (uint64_t)(block - 1) * 1000 + 1;
  *n = 1000;
  return WFP_OK;
}

static int pg_leave(wfp_store *b) {
  pg_store *s = (pg_store *)b;
  if ((!s->l.c || PQstatus(s->l.c) != CONNECTION_OK) && reconnect(s, &s->l))
    return WFP_EIO;
  qp q = {0};
  q_str(&q, s->host);
  int rc = exec_sql(&s->l, "BEGIN");
  if (!rc)
    rc = run0(&s->l, C_LEAVE_INV, &q);
  if (!rc)
    rc = run0(&s->l, C_LEAVE_INST, &q);
  if (!rc)
    rc = run0(&s->l, C_LEAVE_HOST, &q);
  if (!rc)
    rc = exec_sql(&s->l, "NOTIFY wfp_work; COMMIT");
  if (rc && s->l.c && PQtransactionStatus(s->l.c) != PQTRANS_IDLE)
    PQclear(PQexec(s->l.c, "ROLLBACK"));
  return rc;
}

static const char *pg_host_id(wfp_store *b) { return ((pg_store *)b)->host; }

/* ---- open and close ---- */

static const char *pg_errmsg(wfp_store *b) {
  (void)b;
  return tl_err;
}

static void conn_close(pgc *x) {
  if (x->c)
    PQfinish(x->c);
  x->c = NULL;
  memset(x->prepared, 0, sizeof x->prepared);
}

static void pg_close(wfp_store *b) {
  pg_store *s = (pg_store *)b;
  if (!s)
    return;
  conn_close(&s->w);
  conn_close(&s->r);
  conn_close(&s->l);
  txn_reset(s);
  free(s->fenced.k);
  free(s->ctx);
  free(s->msgs);
  free(s->held);
  free(s->pend);
  pthread_mutex_destroy(&s->mu);
  free(s->url);
  free(s);
}

static const wfp_store_cluster pg_cluster = {
    sizeof(wfp_store_cluster),
    pg_fence,
    pg_claim,
    pg_ctx_default,
    pg_handles,
    pg_release,
    pg_ctx_get,
    pg_heartbeat,
    pg_listen,
    pg_leave,
    pg_host_id,
    pg_hold,
};

static const wfp_store_methods pg_methods = {
    WFP_STORE_METHODS_VERSION,
    sizeof(wfp_store_methods),
    "postgresql",
    pg_close,
    pg_errmsg,
    pg_begin,
    pg_commit,
    pg_rollback,
    pg_inv_create,
    pg_inv_step,
    pg_inv_end,
    pg_idem_get,
    pg_idem_put,
    pg_ctx_set,
    pg_msg_add,
    pg_msg_scan,
    pg_msg_last,
    pg_cursor_get,
    pg_cursor_set,
    pg_inst_put,
    pg_sched_get,
    pg_sched_set,
    pg_db_run,
    pg_load_ctx,
    pg_load_instances,
    pg_load_pending,
    pg_load_counts,
    pg_load_traps,
    pg_get_inv,
    pg_messages,
    pg_get_instance,
    &pg_cluster,
};

/* The URL without its password, for messages. */
void wfp_store_url_shown(const char *url, char *out, size_t n) {
  const char *at = strchr(url, '@'), *scheme = strstr(url, "://");
  const char *colon = scheme ? strchr(scheme + 3, ':') : NULL;
  if (at && colon && colon < at)
    snprintf(out, n, "%.*s:***%s", (int)(colon - url), url, at);
  else
    snprintf(out, n, "%s", url);
}

static void quiet(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

static int connect_one(pg_store *s, pgc *x) {
  /* defaults first: what the URL says overrides them */
  char app[64];
  snprintf(app, sizeof app, "wfp-host %s", x->what);
  const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
  const char *vals[] = {"10", app, s->url, NULL};
  x->c = PQconnectdbParams(keys, vals, 1);
  char shown[512];
  wfp_store_url_shown(s->url, shown, sizeof shown);
  if (!x->c) {
    seterr("cannot connect to the store %s: out of memory", shown);
    return WFP_ENOMEM;
  }
  if (PQstatus(x->c) != CONNECTION_OK) {
    seterr("cannot connect to the store %s: %s", shown, PQerrorMessage(x->c));
    conn_close(x);
    return WFP_EIO;
  }
  memset(x->prepared, 0, sizeof x->prepared);
  /* the server's notices ("already exists, skipping") are not the
  ** operator's business: errors come back as results */
  PQsetNoticeProcessor(x->c, quiet, NULL);
  /* a transaction left open by a host that stopped (SIGSTOP) holds its
  ** rows for a while at most: then the server ends it, and another host
  ** takes those rows over. A lease, but two for the writer: its group
  ** transaction waits, idle, for the step after a query that wrote (a
  ** step is short, but a slow host's may not be) */
  int64_t lease = s->lease_ms > 0 ? s->lease_ms : 5000;
  char set[160];
  snprintf(set, sizeof set,
           "SET idle_in_transaction_session_timeout = %lld; SET search_path = wfp, public",
           (long long)(x == &s->w ? 2 * lease : lease));
  if (exec_sql(x, set))
    return WFP_EIO;
  if (x == &s->l)
    return exec_sql(x, "LISTEN wfp_work");
  return WFP_OK;
}

static int reconnect(pg_store *s, pgc *x) {
  conn_close(x);
  return connect_one(s, x);
}

/* Creates or upgrades the schema: each migration in a transaction of its
** own, under an advisory lock, so that hosts starting at once apply each
** one once. */
static int migrate(pg_store *s, char *err, size_t errlen) {
  pgc *x = &s->w;
  for (;;) {
    char lock[96];
    snprintf(lock, sizeof lock, "BEGIN; SELECT pg_advisory_xact_lock(%d, 0)", LOCK_CLASS);
    if (exec_sql(x, lock) ||
        exec_sql(x, "CREATE SCHEMA IF NOT EXISTS wfp; CREATE TABLE IF NOT EXISTS "
                    "wfp.wfp_meta(key text PRIMARY KEY, value text NOT NULL)"))
      goto fail;
    PGresult *r = PQexec(x->c, "SELECT value FROM wfp.wfp_meta WHERE key='schema_version'");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      seterr("the store: %s", PQerrorMessage(x->c));
      PQclear(r);
      goto fail;
    }
    int version = PQntuples(r) ? atoi(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    if (version > SCHEMA_LATEST) {
      exec_sql(x, "ROLLBACK");
      char shown[512];
      wfp_store_url_shown(s->url, shown, sizeof shown);
      snprintf(err, errlen, "the store %s has schema version %d; this wfp-host knows up to %d",
               shown, version, SCHEMA_LATEST);
      return WFP_EIO;
    }
    if (version == SCHEMA_LATEST)
      return exec_sql(x, "COMMIT") ? WFP_EIO : WFP_OK;
    char set[160];
    snprintf(set, sizeof set,
             "INSERT INTO wfp.wfp_meta(key, value) VALUES ('schema_version', '%d') ON "
             "CONFLICT (key) DO UPDATE SET value = excluded.value",
             version + 1);
    if (exec_sql(x, migrations[version]) || exec_sql(x, set) || exec_sql(x, "COMMIT"))
      goto fail;
  }
fail:
  if (x->c && PQtransactionStatus(x->c) != PQTRANS_IDLE)
    PQclear(PQexec(x->c, "ROLLBACK"));
  snprintf(err, errlen, "cannot create or upgrade the store's schema: %s", tl_err);
  return WFP_EIO;
}

int wfp_store_pg_open(const char *url, const wfp_store_opts *o, wfp_store **out, char *err,
                      size_t errlen) {
  *out = NULL;
  pg_store *s = calloc(1, sizeof *s);
  if (!s || !(s->url = strdup(url))) {
    free(s);
    snprintf(err, errlen, "out of memory");
    return WFP_ENOMEM;
  }
  s->base.m = &pg_methods;
  pthread_mutex_init(&s->mu, NULL);
  s->w.what = "writer";
  s->r.what = "reader";
  s->l.what = "cluster";
  s->w.s = s->r.s = s->l.s = s;
  s->r.redo = true;
  s->lease_ms = o && o->lease_ms > 0 ? o->lease_ms : 5000;
  snprintf(s->host, sizeof s->host, "%s", o && o->host_id ? o->host_id : "0000000000000000");
  char hn[96] = "";
  gethostname(hn, sizeof hn - 1);
  snprintf(s->host_name, sizeof s->host_name, "%s", hn);
  int rc = connect_one(s, &s->w);
  if (!rc && (rc = migrate(s, err, errlen)) != 0) {
    pg_close(&s->base);
    return rc;
  }
  if (!rc)
    rc = connect_one(s, &s->r);
  if (!rc)
    rc = connect_one(s, &s->l);
  int lapsed;
  if (!rc)
    rc = pg_heartbeat(&s->base, &lapsed);
  if (rc) {
    snprintf(err, errlen, "%s", tl_err);
    pg_close(&s->base);
    return rc;
  }
  *out = &s->base;
  return WFP_OK;
}
