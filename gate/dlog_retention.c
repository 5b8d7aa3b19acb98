/* dlog_retention.c — `[server] retain_days`: pruning old rows from the decision log.
 *
 * Decisions (and commission checks) older than the cut-off are deleted oldest first, at
 * most `chunk` rows per writer transaction, so decisions arriving meanwhile wait for one
 * short transaction at most. Per-deal state and per-day counters are not derived from the
 * rows at read time: the writer updated them when each row was written, so they stay as
 * they are (a deal keeps its stage, its KPI contribution and its raw stage values; the
 * KPIs of old days keep their counts). Write-back jobs that are finished and overrides that
 * ended before the cut-off go too; pending jobs stay, whatever their age. What pruning
 * gives up: an event id older than the cut-off is no longer recognised as a replay, and
 * `GET /v1/decisions/{id}` of a pruned decision is a 404.
 */
#include "gate/dlog_overrides.h"

#include <stdio.h>
#include <string.h>

#include "gate/dlog_internal.h"

#define PRUNE_CHUNK_DEFAULT 2000

typedef struct {
    const char *sql; /* ?1 = before_ms, ?2 = chunk */
    int64_t before_ms;
    int chunk;
    int changes;
} prune_arg;

static dg_err prune_fn(sqlite3 *db, void *argp, char *err, size_t errlen)
{
    prune_arg *a = argp;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, a->sql, -1, &st, NULL) != SQLITE_OK) {
        return dg_errf(err, errlen, DG_EDB, "decision log: prune: %s", sqlite3_errmsg(db));
    }
    sqlite3_bind_int64(st, 1, a->before_ms);
    if (sqlite3_bind_parameter_count(st) >= 2) sqlite3_bind_int(st, 2, a->chunk);
    int src = sqlite3_step(st);
    sqlite3_finalize(st);
    if (src != SQLITE_DONE)
        return dg_errf(err, errlen, DG_EDB, "decision log: prune: %s", sqlite3_errmsg(db));
    a->changes = sqlite3_changes(db);
    return DG_OK;
}

/* Runs sql in chunks until a chunk deletes fewer rows than asked. */
static dg_err prune_loop(dlog *l, const char *sql, int64_t before_ms, int chunk, uint64_t *total,
                         char *err, size_t errlen)
{
    for (;;) {
        prune_arg a = {.sql = sql, .before_ms = before_ms, .chunk = chunk};
        dg_err rc = dlog_write_call(l, prune_fn, &a, err, errlen);
        if (rc != DG_OK) return rc;
        if (total) *total += (uint64_t)a.changes;
        if (a.changes < chunk) return DG_OK;
    }
}

dg_err dlog_prune(dlog *l, int64_t before_ms, int chunk, uint64_t *deleted, char *err,
                  size_t errlen)
{
    if (deleted) *deleted = 0;
    if (l == NULL) return dg_errf(err, errlen, DG_EINVAL, "decision log: no log");
    if (chunk <= 0) chunk = PRUNE_CHUNK_DEFAULT;
    uint64_t n = 0, other = 0;
    dg_err rc = prune_loop(l,
                           "DELETE FROM decisions WHERE rowid IN (SELECT rowid FROM decisions"
                           " WHERE time_ms < ?1 ORDER BY time_ms LIMIT ?2)",
                           before_ms, chunk, &n, err, errlen);
    if (deleted) *deleted = n;
    if (rc != DG_OK) return rc;
    rc = prune_loop(l,
                    "DELETE FROM comp_checks WHERE rowid IN (SELECT rowid FROM comp_checks"
                    " WHERE time_ms < ?1 ORDER BY time_ms LIMIT ?2)",
                    before_ms, chunk, &other, err, errlen);
    if (rc != DG_OK) return rc;
    rc = prune_loop(l,
                    "DELETE FROM writebacks WHERE id IN (SELECT id FROM writebacks"
                    " WHERE state <> 'pending' AND updated_ms < ?1 LIMIT ?2)",
                    before_ms, chunk, &other, err, errlen);
    if (rc != DG_OK) return rc;
    return prune_loop(l,
                      "DELETE FROM overrides WHERE id IN (SELECT id FROM overrides"
                      " WHERE coalesce(min(revoked_ms, expires_ms), expires_ms) < ?1 LIMIT ?2)",
                      before_ms, chunk, &other, err, errlen);
}
