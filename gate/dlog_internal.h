/* dlog_internal.h — hooks for parts of the SQLite decision log kept in their own files.
 *
 * The decision log is one interface (dlog.h) with one SQLite implementation. Tables that
 * belong to one feature (the write-back queue: gate/dlog_writeback.c) keep their SQL next
 * to that feature, but still write through the log's single writer thread (so they share
 * its transactions and never contend for the write lock) and read on its reader pool.
 * Not a public interface: only the SQLite backend's own files include this.
 */
#ifndef DG_DLOG_INTERNAL_H
#define DG_DLOG_INTERNAL_H

#include <sqlite3.h>
#include <stddef.h>

#include "gate/dlog.h"

/* Runs fn(db, arg, err, errlen) on the writer thread inside the writer's transaction (in
 * its own savepoint: if fn fails, its changes alone are rolled back) and returns once that
 * transaction is committed. fn returns DG_OK or an error with a message in err; it must not
 * begin or end transactions. Returns fn's result, or DG_EDB when the commit failed. */
typedef dg_err (*dlog_write_fn)(sqlite3 *db, void *arg, char *err, size_t errlen);
dg_err dlog_write_call(dlog *l, dlog_write_fn fn, void *arg, char *err, size_t errlen);

/* Runs fn(db, arg) on a read-only connection of the reader pool. Returns fn's result. */
typedef dg_err (*dlog_read_fn)(sqlite3 *db, void *arg);
dg_err dlog_read_call(dlog *l, dlog_read_fn fn, void *arg);

/* Runs one query on the reader pool: prepares sql on a read-only connection, calls
 * fn(st, arg) to bind its parameters and step through its rows, and finalizes it. Returns
 * fn's result, or DG_EDB when sql cannot be prepared (fn is not called). Inline, on top of
 * dlog_read_call, for the feature files' reads. */
typedef dg_err (*dlog_query_fn)(sqlite3_stmt *st, void *arg);

typedef struct {
    const char *sql;
    dlog_query_fn fn;
    void *arg;
} dlog_query_job;

static inline dg_err dlog_query_run(sqlite3 *db, void *jobp)
{
    const dlog_query_job *job = jobp;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, job->sql, -1, &st, NULL) != SQLITE_OK) return DG_EDB;
    dg_err rc = job->fn(st, job->arg);
    sqlite3_finalize(st);
    return rc;
}

static inline dg_err dlog_read_query(dlog *l, const char *sql, dlog_query_fn fn, void *arg)
{
    dlog_query_job job = {.sql = sql, .fn = fn, .arg = arg};
    return dlog_read_call(l, dlog_query_run, &job);
}

/* Deals that may have a live override, kept in memory so the gate reads the `overrides`
 * table only for them (almost every deal has none). Loaded at open from the overrides not
 * revoked; dlog_ovr_note() is called (on the writer thread) for every override added.
 * Overrides are granted only through the service (POST /v1/overrides): another process
 * writing the log (dealgate import-history) adds none. Stale entries (revoked, expired)
 * only cost a read. */

/* Notes that deal opp_id may have a live override. Out of memory: every deal counts as
 * "may have one" from then on. */
void dlog_ovr_note(dlog *l, const char *opp_id);

/* Returns 0 when deal opp_id certainly has no live override, else 1. */
int dlog_ovr_maybe(dlog *l, const char *opp_id);

/* Adds the "writeback" object of decision id to *decision_json (a decision object as text,
 * replaced in place) when one is queued. Called by dlog_get. Returns DG_OK (also when there
 * is none), DG_ENOMEM or DG_EDB (then *decision_json is unchanged). */
dg_err dlog_wb_attach(dlog *l, const char *id, char **decision_json);

#endif
