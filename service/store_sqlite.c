/*
** store_sqlite.c: the store on SQLite (WAL): one connection that writes
** (the committer's thread) and one that reads (the loop's), prepared
** statements kept for the life of the store, the schema created or checked
** at open (docs/service.md lists it), and a lock file so that one process
** at a time serves a store. Programs' own tables (db_query) live in the
** same database, beside the wfp_* tables they may not touch.
** Not here: what is written when (commit.c).
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"
#include "util.h"

#define SCHEMA_VERSION 1

/* The schema (docs/service.md). Status: 0 pending, 1 done, 2 trapped.
** owner, lease_until_ms and epoch are for several hosts on one store
** (leases and fencing): kept, unused by one host. */
static const char schema[] =
    "CREATE TABLE wfp_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE wfp_invocations("
    " seq INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " program TEXT NOT NULL,"
    " fn TEXT NOT NULL,"
    " input TEXT NOT NULL,"
    " self INTEGER,"
    " origin TEXT NOT NULL,"
    " status INTEGER NOT NULL,"
    " state BLOB,"
    " effect INTEGER,"
    " effect_key TEXT,"
    " effect_json TEXT,"
    " effect_each TEXT,"
    " effect_i64 INTEGER,"
    " deadline_ms INTEGER,"
    " resume TEXT,"
    " output TEXT,"
    " trap TEXT,"
    " steps INTEGER NOT NULL,"
    " fuel INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL,"
    " ended_ms INTEGER,"
    " owner TEXT,"
    " lease_until_ms INTEGER,"
    " epoch INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX wfp_invocations_status ON wfp_invocations(status, ended_ms);"
    "CREATE TABLE wfp_context(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE wfp_instances(handle INTEGER PRIMARY KEY, resource TEXT NOT NULL,"
    " props TEXT NOT NULL);"
    "CREATE TABLE wfp_messages(seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,"
    " payload TEXT NOT NULL, invocation TEXT NOT NULL, created_ms INTEGER NOT NULL);"
    "CREATE INDEX wfp_messages_topic ON wfp_messages(topic, seq);"
    "CREATE TABLE wfp_idempotency(key TEXT PRIMARY KEY, invocation TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE wfp_cursors(subscriber TEXT PRIMARY KEY, seq INTEGER NOT NULL);"
    "CREATE TABLE wfp_schedules(name TEXT PRIMARY KEY, next_due_ms INTEGER NOT NULL);"
    "INSERT INTO wfp_meta VALUES ('schema_version', '1');";

#define ROW_COLS                                                               \
  "seq, id, program, fn, input, origin, status, self, state, effect, effect_key, " \
  "effect_json, effect_each, effect_i64, deadline_ms, resume, output, trap, steps, fuel, " \
  "created_ms, updated_ms"

/* The statements, prepared once. W_* on the writer, R_* on the reader. */
#define STMTS(X)                                                               \
  X(W_BEGIN, "BEGIN IMMEDIATE")                                                \
  X(W_COMMIT, "COMMIT")                                                        \
  X(W_CREATE, "INSERT INTO wfp_invocations(id, program, fn, input, self, origin, status, " \
              "steps, fuel, created_ms, updated_ms) VALUES (?,?,?,?,?,?,0,0,0,?,?)") \
  X(W_STEP, "UPDATE wfp_invocations SET state=?, effect=?, effect_key=?, effect_json=?, " \
            "effect_each=?, effect_i64=?, deadline_ms=?, resume=?, steps=?, fuel=?, "  \
            "updated_ms=? WHERE seq=?")                                        \
  X(W_END, "UPDATE wfp_invocations SET status=?, output=?, trap=?, state=NULL, effect=NULL, " \
           "effect_key=NULL, effect_json=NULL, effect_each=NULL, effect_i64=NULL, "  \
           "deadline_ms=NULL, resume=NULL, steps=?, fuel=?, updated_ms=?, ended_ms=? " \
           "WHERE seq=?")                                                      \
  X(W_IDEM_GET, "SELECT invocation FROM wfp_idempotency WHERE key=?")          \
  X(W_IDEM_PUT, "INSERT INTO wfp_idempotency(key, invocation, created_ms) VALUES (?,?,?)") \
  X(W_CTX, "INSERT INTO wfp_context(key, value) VALUES (?,?) ON CONFLICT(key) DO UPDATE " \
           "SET value=excluded.value")                                         \
  X(W_MSG, "INSERT INTO wfp_messages(topic, payload, invocation, created_ms) VALUES " \
           "(?,?,?,?)")                                                        \
  X(W_MSG_SCAN, "SELECT seq, topic, payload, invocation FROM wfp_messages WHERE topic=? " \
                "AND seq>? ORDER BY seq")                                      \
  X(W_MSG_LAST, "SELECT coalesce(max(seq), 0) FROM wfp_messages")              \
  X(W_CUR_GET, "SELECT seq FROM wfp_cursors WHERE subscriber=?")               \
  X(W_CUR_SET, "INSERT INTO wfp_cursors(subscriber, seq) VALUES (?,?) ON CONFLICT(subscriber) " \
               "DO UPDATE SET seq=excluded.seq")                               \
  X(W_INST, "INSERT INTO wfp_instances(handle, resource, props) VALUES (?,?,?) ON "   \
            "CONFLICT(handle) DO UPDATE SET resource=excluded.resource, props=excluded.props") \
  X(W_SCHED_GET, "SELECT next_due_ms FROM wfp_schedules WHERE name=?")         \
  X(W_SCHED_SET, "INSERT INTO wfp_schedules(name, next_due_ms) VALUES (?,?) ON " \
                 "CONFLICT(name) DO UPDATE SET next_due_ms=excluded.next_due_ms") \
  X(R_CTX, "SELECT key, value FROM wfp_context ORDER BY key")                  \
  X(R_INSTS, "SELECT handle, resource, props FROM wfp_instances ORDER BY handle") \
  X(R_PENDING, "SELECT " ROW_COLS " FROM wfp_invocations WHERE status=0 ORDER BY seq") \
  X(R_COUNTS, "SELECT fn, status, count(*) FROM wfp_invocations GROUP BY fn, status") \
  X(R_TRAPS, "SELECT " ROW_COLS " FROM wfp_invocations WHERE status=2 ORDER BY ended_ms " \
             "DESC, seq DESC LIMIT ?")                                         \
  X(R_INV, "SELECT " ROW_COLS " FROM wfp_invocations WHERE id=?")              \
  X(R_MSGS, "SELECT seq, topic, payload, invocation FROM wfp_messages WHERE seq>? ORDER BY " \
            "seq LIMIT ?")                                                     \
  X(R_MSGS_TOPIC, "SELECT seq, topic, payload, invocation FROM wfp_messages WHERE topic=? " \
                  "AND seq>? ORDER BY seq LIMIT ?")                            \
  X(R_INST, "SELECT handle, resource, props FROM wfp_instances WHERE handle=?")

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

typedef struct sq_store {
  wfp_store base;
  sqlite3 *w, *r;
  sqlite3_stmt *st[NSTMTS];
  int lock_fd;
  char err[512];
} sq_store;

static int fail(sq_store *s, sqlite3 *db, const char *what) {
  int code = sqlite3_errcode(db);
  snprintf(s->err, sizeof s->err, "%s: %s", what, sqlite3_errmsg(db));
  return code == SQLITE_NOMEM ? WFP_ENOMEM : WFP_EIO;
}

/* A statement ready to bind (reset). */
static sqlite3_stmt *stmt(sq_store *s, int k) {
  sqlite3_stmt *st = s->st[k];
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return st;
}

static sqlite3 *conn_of(const sq_store *s, int k) { return k < R_CTX ? s->w : s->r; }

/* Runs a statement that returns no row. */
static int done(sq_store *s, int k, sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE)
    return fail(s, conn_of(s, k), stmt_sql[k]);
  return WFP_OK;
}

static void bind_text(sqlite3_stmt *st, int i, const char *p, size_t n) {
  if (p)
    sqlite3_bind_text(st, i, p, (int)n, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, i);
}

static void bind_str(sqlite3_stmt *st, int i, const char *p) {
  bind_text(st, i, p, p ? strlen(p) : 0);
}

/* ---- writing ---- */

static int sq_begin(wfp_store *b) {
  sq_store *s = (sq_store *)b;
  return done(s, W_BEGIN, stmt(s, W_BEGIN));
}

static int sq_commit(wfp_store *b) {
  sq_store *s = (sq_store *)b;
  return done(s, W_COMMIT, stmt(s, W_COMMIT));
}

static void sq_rollback(wfp_store *b) {
  sq_store *s = (sq_store *)b;
  if (!sqlite3_get_autocommit(s->w))
    sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
}

static int sq_inv_create(wfp_store *b, const wfp_store_new *n, int64_t *seq) {
  sq_store *s = (sq_store *)b;
  sqlite3_stmt *st = stmt(s, W_CREATE);
  bind_str(st, 1, n->id);
  bind_str(st, 2, n->program);
  bind_str(st, 3, n->fn);
  bind_text(st, 4, n->input, n->input_len);
  if (n->self)
    sqlite3_bind_int64(st, 5, (sqlite3_int64)n->self);
  bind_str(st, 6, n->origin);
  sqlite3_bind_int64(st, 7, n->now_ms);
  sqlite3_bind_int64(st, 8, n->now_ms);
  int rc = done(s, W_CREATE, st);
  if (!rc)
    *seq = sqlite3_last_insert_rowid(s->w);
  return rc;
}

static int sq_inv_step(wfp_store *b, const wfp_store_step *x) {
  sq_store *s = (sq_store *)b;
  sqlite3_stmt *st = stmt(s, W_STEP);
  sqlite3_bind_blob(st, 1, x->state, (int)x->state_len, SQLITE_STATIC);
  if (x->effect >= 0) {
    sqlite3_bind_int(st, 2, x->effect);
    bind_text(st, 3, x->key ? x->key : "", x->key_len);
    bind_text(st, 4, x->json ? x->json : "", x->json_len);
    bind_text(st, 5, x->each, x->each_len);
    sqlite3_bind_int64(st, 6, x->i64);
    if (x->wake_at)
      sqlite3_bind_int64(st, 7, x->wake_at);
  } else if (x->has_resume) {
    bind_text(st, 8, x->resume ? x->resume : "", x->resume_len);
  }
  sqlite3_bind_int64(st, 9, (sqlite3_int64)x->steps);
  sqlite3_bind_int64(st, 10, (sqlite3_int64)x->fuel);
  sqlite3_bind_int64(st, 11, x->now_ms);
  sqlite3_bind_int64(st, 12, x->seq);
  return done(s, W_STEP, st);
}

static int sq_inv_end(wfp_store *b, int64_t seq, int status, const char *text, uint64_t steps,
                      uint64_t fuel, int64_t now_ms) {
  sq_store *s = (sq_store *)b;
  sqlite3_stmt *st = stmt(s, W_END);
  sqlite3_bind_int(st, 1, status);
  bind_str(st, status == WFP_STORE_DONE ? 2 : 3, text ? text : "");
  sqlite3_bind_int64(st, 4, (sqlite3_int64)steps);
  sqlite3_bind_int64(st, 5, (sqlite3_int64)fuel);
  sqlite3_bind_int64(st, 6, now_ms);
  sqlite3_bind_int64(st, 7, now_ms);
  sqlite3_bind_int64(st, 8, seq);
  return done(s, W_END, st);
}

static int sq_idem_get(wfp_store *b, const char *key, char id[17]) {
  sq_store *s = (sq_store *)b;
  sqlite3_stmt *st = stmt(s, W_IDEM_GET);
  bind_str(st, 1, key);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    const char *v = (const char *)sqlite3_column_text(st, 0);
    snprintf(id, 17, "%s", v ? v : "");
    sqlite3_reset(st);
    return 1;
  }
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : fail(s, s->w, "idempotency key");
}

static int sq_idem_put(wfp_store *b, const char *key, const char *id, int64_t now_ms) {
  sq_store *s = (sq_store *)b;
  sqlite3_stmt *st = stmt(s, W_IDEM_PUT);
  bind_str(st, 1, key);
  bind_str(st, 2, id);
  sqlite3_bind_int64(st, 3, now_ms);
  return done(s, W_IDEM_PUT, st);
}

static int sq_ctx_set(wfp_store *b, const char *key, size_t len, int64_t value) {
  sq_store *s = (sq_store *)b;
  sqlite3_stmt *st = stmt(s, W_CTX);
  bind_text(st, 1, key ? key : "", len);
  sqlite3_bind_int64(st, 2, value);
  return done(s, W_CTX, st);
}

static int sq_msg_add(wfp_store *b, const char *topic, size_t tn, const char *payload,
                      size_t pn, const char *invocation, int64_t now_ms, int64_t *seq) {
  sq_store *s = (sq_store *)b;
  sqlite3_stmt *st = stmt(s, W_MSG);
  bind_text(st, 1, topic ? topic : "", tn);
  bind_text(st, 2, payload ? payload : "", pn);
  bind_str(st, 3, invocation);
  sqlite3_bind_int64(st, 4, now_ms);
  int rc = done(s, W_MSG, st);
  if (!rc)
    *seq = sqlite3_last_insert_rowid(s->w);
  return rc;
}

static int each_msg(sq_store *s, sqlite3 *db, sqlite3_stmt *st, wfp_store_msg_cb cb,
                    void *ud) {
  int rc, r = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    wfp_store_msg m;
    m.seq = sqlite3_column_int64(st, 0);
    m.topic = (const char *)sqlite3_column_text(st, 1);
    m.topic_len = (size_t)sqlite3_column_bytes(st, 1);
    m.payload = (const char *)sqlite3_column_text(st, 2);
    m.payload_len = (size_t)sqlite3_column_bytes(st, 2);
    m.invocation = (const char *)sqlite3_column_text(st, 3);
    if (!m.topic)
      m.topic = "";
    if (!m.payload)
      m.payload = "null";
    if (!m.invocation)
      m.invocation = "";
    if ((r = cb(ud, &m)) != 0)
      break;
  }
  sqlite3_reset(st);
  if (r)
    return r;
  return rc == SQLITE_DONE ? WFP_OK : fail(s, db, "messages");
}

static int sq_msg_scan(wfp_store *b, const char *topic, int64_t after, wfp_store_msg_cb cb,
                       void *ud) {
  sq_store *s = (sq_store *)b;
  sqlite3_stmt *st = stmt(s, W_MSG_SCAN);
  bind_str(st, 1, topic);
  sqlite3_bind_int64(st, 2, after);
  return each_msg(s, s->w, st, cb, ud);
}

static int one_i64(sq_store *s, int k, sqlite3_stmt *st, int64_t *v) {
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *v = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return 1;
  }
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : fail(s, conn_of(s, k), stmt_sql[k]);
}

static int sq_msg_last(wfp_store *b, int64_t *seq) {
  sq_store *s = (sq_store *)b;
  *seq = 0;
  int rc = one_i64(s, W_MSG_LAST, stmt(s, W_MSG_LAST), seq);
  return rc < 0 ? rc : WFP_OK;
}

static int sq_cursor_get(wfp_store *b, const char *name, int64_t *seq) {
  sq_store *s = (sq_store *)b;
  sqlite3_stmt *st = stmt(s, W_CUR_GET);
  bind_str(st, 1, name);
  return one_i64(s, W_CUR_GET, st, seq);
}

static int sq_cursor_set(wfp_store *b, const char *name, int64_t seq) {
  sq_store *s = (sq_store *)b;
  sqlite3_stmt *st = stmt(s, W_CUR_SET);
  bind_str(st, 1, name);
  sqlite3_bind_int64(st, 2, seq);
  return done(s, W_CUR_SET, st);
}

static int sq_inst_put(wfp_store *b, uint64_t handle, const char *resource, const char *props) {
  sq_store *s = (sq_store *)b;
  sqlite3_stmt *st = stmt(s, W_INST);
  sqlite3_bind_int64(st, 1, (sqlite3_int64)handle);
  bind_str(st, 2, resource);
  bind_str(st, 3, props);
  return done(s, W_INST, st);
}

static int sq_sched_get(wfp_store *b, const char *name, int64_t *due) {
  sq_store *s = (sq_store *)b;
  sqlite3_stmt *st = stmt(s, W_SCHED_GET);
  bind_str(st, 1, name);
  return one_i64(s, W_SCHED_GET, st, due);
}

static int sq_sched_set(wfp_store *b, const char *name, int64_t due) {
  sq_store *s = (sq_store *)b;
  sqlite3_stmt *st = stmt(s, W_SCHED_SET);
  bind_str(st, 1, name);
  sqlite3_bind_int64(st, 2, due);
  return done(s, W_SCHED_SET, st);
}

static int sq_db_run(wfp_store *b, wfp_db_job *job) {
  sq_store *s = (sq_store *)b;
  /* a savepoint: a query that fails leaves nothing of itself behind */
  if (sqlite3_exec(s->w, "SAVEPOINT wfp_query", NULL, NULL, NULL) != SQLITE_OK)
    return fail(s, s->w, "SAVEPOINT");
  int rc = wfp_db_job_run(job, s->w, WFP_DB_PROTECT_STORE);
  if (rc)
    sqlite3_exec(s->w, "ROLLBACK TO wfp_query", NULL, NULL, NULL);
  if (sqlite3_exec(s->w, "RELEASE wfp_query", NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_get_autocommit(s->w))
    return fail(s, s->w, "the transaction of a db_query was lost");
  return WFP_OK;
}

/* ---- reading ---- */

static void read_row(sqlite3_stmt *st, wfp_store_row *r) {
  memset(r, 0, sizeof *r);
#define TXT(i) ((const char *)sqlite3_column_text(st, i))
#define LEN(i) ((size_t)sqlite3_column_bytes(st, i))
  r->seq = sqlite3_column_int64(st, 0);
  r->id = TXT(1);
  r->program = TXT(2);
  r->fn = TXT(3);
  r->input = TXT(4);
  r->input_len = LEN(4);
  r->origin = TXT(5);
  r->status = sqlite3_column_int(st, 6);
  r->self = (uint64_t)sqlite3_column_int64(st, 7);
  r->state = sqlite3_column_blob(st, 8);
  r->state_len = LEN(8);
  r->effect = sqlite3_column_type(st, 9) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 9);
  r->key = TXT(10);
  r->key_len = LEN(10);
  r->json = TXT(11);
  r->json_len = LEN(11);
  r->each = TXT(12);
  r->each_len = LEN(12);
  r->i64 = sqlite3_column_int64(st, 13);
  r->wake_at = sqlite3_column_int64(st, 14);
  r->has_resume = sqlite3_column_type(st, 15) != SQLITE_NULL;
  r->resume = TXT(15);
  r->resume_len = LEN(15);
  r->output = TXT(16);
  r->trap = TXT(17);
  r->steps = (uint64_t)sqlite3_column_int64(st, 18);
  r->fuel = (uint64_t)sqlite3_column_int64(st, 19);
  r->created_ms = sqlite3_column_int64(st, 20);
  r->updated_ms = sqlite3_column_int64(st, 21);
#undef TXT
#undef LEN
  if (!r->id)
    r->id = "";
  if (!r->program)
    r->program = "";
  if (!r->fn)
    r->fn = "";
  if (!r->input)
    r->input = "";
  if (!r->origin)
    r->origin = "";
}

static int each_row(sq_store *s, sqlite3_stmt *st, wfp_store_row_cb cb, void *ud, int *n) {
  int rc, r = 0;
  *n = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    wfp_store_row row;
    read_row(st, &row);
    (*n)++;
    if ((r = cb(ud, &row)) != 0)
      break;
  }
  sqlite3_reset(st);
  if (r)
    return r;
  return rc == SQLITE_DONE ? WFP_OK : fail(s, s->r, "invocations");
}

static int sq_load_ctx(wfp_store *b, wfp_store_ctx_cb cb, void *ud) {
  sq_store *s = (sq_store *)b;
  sqlite3_stmt *st = stmt(s, R_CTX);
  int rc, r = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *k = (const char *)sqlite3_column_text(st, 0);
    if ((r = cb(ud, k ? k : "", (size_t)sqlite3_column_bytes(st, 0),
                sqlite3_column_int64(st, 1))) != 0)
      break;
  }
  sqlite3_reset(st);
  if (r)
    return r;
  return rc == SQLITE_DONE ? WFP_OK : fail(s, s->r, "context");
}

static int each_inst(sq_store *s, sqlite3_stmt *st, wfp_store_inst_cb cb, void *ud, int *n) {
  int rc, r = 0;
  *n = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *res = (const char *)sqlite3_column_text(st, 1);
    const char *props = (const char *)sqlite3_column_text(st, 2);
    (*n)++;
    if ((r = cb(ud, (uint64_t)sqlite3_column_int64(st, 0), res ? res : "",
                props ? props : "{}")) != 0)
      break;
  }
  sqlite3_reset(st);
  if (r)
    return r;
  return rc == SQLITE_DONE ? WFP_OK : fail(s, s->r, "instances");
}

static int sq_load_instances(wfp_store *b, wfp_store_inst_cb cb, void *ud) {
  sq_store *s = (sq_store *)b;
  int n;
  return each_inst(s, stmt(s, R_INSTS), cb, ud, &n);
}

static int sq_load_pending(wfp_store *b, wfp_store_row_cb cb, void *ud) {
  sq_store *s = (sq_store *)b;
  int n;
  return each_row(s, stmt(s, R_PENDING), cb, ud, &n);
}

static int sq_load_counts(wfp_store *b, wfp_store_count_cb cb, void *ud) {
  sq_store *s = (sq_store *)b;
  sqlite3_stmt *st = stmt(s, R_COUNTS);
  int rc, r = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *fn = (const char *)sqlite3_column_text(st, 0);
    if ((r = cb(ud, fn ? fn : "", sqlite3_column_int(st, 1),
                (uint64_t)sqlite3_column_int64(st, 2))) != 0)
      break;
  }
  sqlite3_reset(st);
  if (r)
    return r;
  return rc == SQLITE_DONE ? WFP_OK : fail(s, s->r, "counts");
}

static int sq_load_traps(wfp_store *b, int n, wfp_store_row_cb cb, void *ud) {
  sq_store *s = (sq_store *)b;
  sqlite3_stmt *st = stmt(s, R_TRAPS);
  sqlite3_bind_int(st, 1, n);
  int k;
  return each_row(s, st, cb, ud, &k);
}

static int sq_get_inv(wfp_store *b, const char *id, wfp_store_row_cb cb, void *ud) {
  sq_store *s = (sq_store *)b;
  sqlite3_stmt *st = stmt(s, R_INV);
  bind_str(st, 1, id);
  int n;
  int rc = each_row(s, st, cb, ud, &n);
  return rc ? rc : n > 0;
}

static int sq_messages(wfp_store *b, const char *topic, int64_t after, int64_t limit,
                       wfp_store_msg_cb cb, void *ud) {
  sq_store *s = (sq_store *)b;
  sqlite3_stmt *st;
  if (topic) {
    st = stmt(s, R_MSGS_TOPIC);
    bind_str(st, 1, topic);
    sqlite3_bind_int64(st, 2, after);
    sqlite3_bind_int64(st, 3, limit);
  } else {
    st = stmt(s, R_MSGS);
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int64(st, 2, limit);
  }
  return each_msg(s, s->r, st, cb, ud);
}

static int sq_get_instance(wfp_store *b, uint64_t handle, wfp_store_inst_cb cb, void *ud) {
  sq_store *s = (sq_store *)b;
  sqlite3_stmt *st = stmt(s, R_INST);
  sqlite3_bind_int64(st, 1, (sqlite3_int64)handle);
  int n;
  int rc = each_inst(s, st, cb, ud, &n);
  return rc ? rc : n > 0;
}

/* ---- open and close ---- */

static const char *sq_errmsg(wfp_store *b) { return ((sq_store *)b)->err; }

static void sq_close(wfp_store *b) {
  sq_store *s = (sq_store *)b;
  if (!s)
    return;
  for (int i = 0; i < NSTMTS; i++)
    sqlite3_finalize(s->st[i]);
  sqlite3_close(s->r);
  sqlite3_close(s->w);
  if (s->lock_fd >= 0)
    close(s->lock_fd); /* the lock goes with it */
  free(s);
}

static const wfp_store_methods sqlite_methods = {
    WFP_STORE_METHODS_VERSION,
    sizeof(wfp_store_methods),
    "sqlite",
    sq_close,
    sq_errmsg,
    sq_begin,
    sq_commit,
    sq_rollback,
    sq_inv_create,
    sq_inv_step,
    sq_inv_end,
    sq_idem_get,
    sq_idem_put,
    sq_ctx_set,
    sq_msg_add,
    sq_msg_scan,
    sq_msg_last,
    sq_cursor_get,
    sq_cursor_set,
    sq_inst_put,
    sq_sched_get,
    sq_sched_set,
    sq_db_run,
    sq_load_ctx,
    sq_load_instances,
    sq_load_pending,
    sq_load_counts,
    sq_load_traps,
    sq_get_inv,
    sq_messages,
    sq_get_instance,
    NULL, /* one process at a time */
};

static int open_conn(sq_store *s, const char *path, bool writer, int sync, char *err,
                     size_t errlen) {
  sqlite3 **db = writer ? &s->w : &s->r;
  int rc = sqlite3_open_v2(path, db,
                           SQLITE_OPEN_READWRITE | (writer ? SQLITE_OPEN_CREATE : 0) |
                               SQLITE_OPEN_NOMUTEX,
                           NULL);
  if (rc != SQLITE_OK) {
    snprintf(err, errlen, "cannot open the store %s: %s", path,
             *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
    return WFP_EIO;
  }
  sqlite3_busy_timeout(*db, 10000);
  sqlite3_extended_result_codes(*db, 1);
  /* the program's own tables live here too: the same defences as
  ** wfp-host --db gives them (hostlib/db.c) */
  sqlite3_db_config(*db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
  sqlite3_db_config(*db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
  sqlite3_limit(*db, SQLITE_LIMIT_LENGTH, WFP_DB_RESULT_MAX);
  if (!writer)
    return WFP_OK;
  static const char *const syncs[] = {"PRAGMA synchronous=FULL", "PRAGMA synchronous=NORMAL",
                                      "PRAGMA synchronous=OFF"};
  char *msg = NULL;
  if (sqlite3_exec(*db, "PRAGMA journal_mode=WAL", NULL, NULL, &msg) != SQLITE_OK ||
      sqlite3_exec(*db, syncs[sync], NULL, NULL, &msg) != SQLITE_OK) {
    snprintf(err, errlen, "cannot set up the store %s: %s", path,
             msg ? msg : sqlite3_errmsg(*db));
    sqlite3_free(msg);
    return WFP_EIO;
  }
  return WFP_OK;
}

/* The schema: created in a new store, checked in an old one. */
static int ensure_schema(sq_store *s, const char *path, char *err, size_t errlen) {
  sqlite3_stmt *st = NULL;
  int version = 0;
  if (sqlite3_prepare_v2(s->w, "SELECT value FROM wfp_meta WHERE key='schema_version'", -1,
                         &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW)
      version = atoi((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (version == SCHEMA_VERSION)
      return WFP_OK;
    snprintf(err, errlen,
             "the store %s has schema version %d; this wfp-host knows version %d", path,
             version, SCHEMA_VERSION);
    return WFP_EIO;
  }
  char *msg = NULL;
  if (sqlite3_exec(s->w, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK ||
      sqlite3_exec(s->w, schema, NULL, NULL, &msg) != SQLITE_OK ||
      sqlite3_exec(s->w, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
    snprintf(err, errlen, "cannot create the store's tables in %s: %s", path,
             msg ? msg : sqlite3_errmsg(s->w));
    sqlite3_free(msg);
    sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
    return WFP_EIO;
  }
  return WFP_OK;
}

/* One process at a time on a store: a lock on PATH.lock, with its pid. */
static int take_lock(sq_store *s, const char *path, char *err, size_t errlen) {
  char lp[4096];
  if (snprintf(lp, sizeof lp, "%s.lock", path) >= (int)sizeof lp) {
    snprintf(err, errlen, "the store's path is too long");
    return WFP_EINVAL;
  }
  s->lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (s->lock_fd < 0) {
    snprintf(err, errlen, "cannot open %s: %s", lp, strerror(errno));
    return WFP_EIO;
  }
  if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = "";
    ssize_t n = pread(s->lock_fd, pid, sizeof pid - 1, 0);
    pid[n > 0 ? n : 0] = 0;
    pid[strcspn(pid, "\n")] = 0;
    snprintf(err, errlen, "the store %s is in use by another process%s%s%s", path,
             pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
    return WFP_EIO;
  }
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(s->lock_fd, 0) != 0 || pwrite(s->lock_fd, pid, (size_t)n, 0) != n) {
    /* the pid is for people; the lock holds without it */
  }
  return WFP_OK;
}

int wfp_store_sqlite_open(const char *path, const wfp_store_opts *o, wfp_store **out,
                          char *err, size_t errlen) {
  *out = NULL;
  sq_store *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return WFP_ENOMEM;
  }
  s->base.m = &sqlite_methods;
  s->lock_fd = -1;
  int sync = o ? o->sync : WFP_STORE_SYNC_FULL;
  if (sync < 0 || sync > WFP_STORE_SYNC_OFF)
    sync = WFP_STORE_SYNC_FULL;
  int rc = take_lock(s, path, err, errlen);
  if (!rc)
    rc = open_conn(s, path, true, sync, err, errlen);
  if (!rc)
    rc = ensure_schema(s, path, err, errlen);
  if (!rc)
    rc = open_conn(s, path, false, sync, err, errlen);
  for (int i = 0; !rc && i < NSTMTS; i++) {
    sqlite3 *db = conn_of(s, i);
    if (sqlite3_prepare_v3(db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) !=
        SQLITE_OK) {
      snprintf(err, errlen, "the store %s: %s (%s)", path, sqlite3_errmsg(db), stmt_sql[i]);
      rc = WFP_EIO;
    }
  }
  if (rc) {
    sq_close(&s->base);
    return rc;
  }
  *out = &s->base;
  return WFP_OK;
}

int wfp_store_open(const char *where, const wfp_store_opts *o, wfp_store **out, char *err,
                   size_t errlen) {
  if (wfp_store_is_pg(where))
    return wfp_store_pg_open(where, o, out, err, errlen);
  return wfp_store_sqlite_open(where, o, out, err, errlen);
}
