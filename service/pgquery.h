/*
** pgquery.h: db_query on PostgreSQL (never installed): a program's
** statement checked, its parameters bound, its rows as JSON objects. In
** the store's own transaction (exactly once with its step) or on a
** database of its own (--db postgresql://...). docs/service.md says what
** a program may run there.
*/
#ifndef WFP_SVC_PGQUERY_H
#define WFP_SVC_PGQUERY_H

#include <stddef.h>

#include <libpq-fe.h>

#include "wfp/loop.h"

/*
** Runs the job on c (the store's writer, inside its open transaction): a
** savepoint, the role wfp_program and its schema, the statement, and back
** to the store's role. The job gets its rows or its error (a failed query
** leaves nothing behind). slack_ms: added to the time its fuel buys, for
** waiting on a row lock another host's transaction holds (a lease at
** most: a paused host's open transaction is ended by then). 0, or WFP_EIO
** when the transaction was lost (message in err).
*/
int wfp_pgq_in_txn(PGconn *c, wfp_db_job *job, long slack_ms, char *err, size_t errlen);

/* A runner on a database of its own: one connection, used by one thread
** at a time (libuv's pool calls a runner one query at a time). */
typedef struct wfp_pgq_runner wfp_pgq_runner;
int wfp_pgq_runner_open(const char *url, wfp_pgq_runner **out, char *err, size_t errlen);
/* A wfp_db_runner (ud: the runner). */
void wfp_pgq_runner_run(void *ud, wfp_db_job *job);
void wfp_pgq_runner_close(wfp_pgq_runner *r);

/*
** The checks and the rewriting, on their own (tests): sql[0..n) as
** PostgreSQL will run it, '?' placeholders numbered $1, $2, ... (unless
** the text numbers its own), into out; *nparams the parameters it takes,
** *readonly whether it surely writes nothing. 0, or WFP_EINVAL with the
** reason in err. store: names of the service's store (wfp, wfp_*) are
** refused too.
*/
int wfp_pgq_prepare(const char *sql, size_t n, int store, char **out, int *nparams,
                    int *readonly, char *err, size_t errlen);

#endif /* WFP_SVC_PGQUERY_H */
