/* dlog_sqlite.h — internals shared by the SQLite implementation of the decision log.
 *
 * Not part of the dlog.h interface (which names no SQLite type, so a PostgreSQL backend
 * stays a second implementation): dlog.c owns the connections and the writer thread;
 * dlog_kpi.c keeps the KPI state on write (per-deal accounting and the `k_*` per-day
 * counters, schema step 2); dlog_read.c answers the read side (KPIs, blocked deals, recent
 * decisions, commission violations by rep) on the reader pool (dlog_read_call).
 * Schema and definitions: docs/internals/decision-log.md and docs/kpis.md.
 */
#ifndef DG_DLOG_SQLITE_H
#define DG_DLOG_SQLITE_H

#include <sqlite3.h>

#include "gate/dlog.h"
#include "gate/dlog_internal.h" /* dlog_read_call: the reader pool */

/* ---- the per-day KPI counters kept by dlog_kpi.c (rows of `daily`) ---------------------- */

#define DLOG_K_REACHED "k_reached"         /* key "*" or cloud: deals reaching a gated stage */
#define DLOG_K_REACHED_VER "k_reached_ver" /* ... with every checked registration verified */
#define DLOG_K_FIRST_PASS "k_first_pass"   /* ... allowed on their first gated move */
#define DLOG_K_WON "k_won"                 /* key "<*|cloud>|reg" or "...|unreg" */
#define DLOG_K_LOST "k_lost"               /* same keys */
#define DLOG_K_REVENUE "k_revenue"         /* key "cloud|CCY", count = minor units */
#define DLOG_K_CLOSE_DAYS "k_close_days"   /* key "<*|cloud>|<days>", count = deals */
#define DLOG_K_VREG "k_vreg"               /* key "*" or cloud: verified registrations */
#define DLOG_K_VREG_IN "k_vreg_in"         /* ... whose origin is "cloud" */
#define DLOG_K_BLOCK "k_block"             /* key "cloud|code": blocks naming that cloud */
#define DLOG_K_COMP_VIOL "k_comp_viol"     /* key "*" or cloud: violating comp lines */
#define DLOG_K_COMP_SHORT "k_comp_short"   /* key "<*|cloud>|CCY", count = minor units */
#define DLOG_K_COMP_REP "k_comp_rep"       /* key "CCY|rep": violating lines of a rep */
#define DLOG_K_COMP_REP_SHORT "k_comp_rep_short" /* key "CCY|rep", count = minor units */

/* ---- per-batch sums of `daily` increments (dlog_counts.c) --------------------------------
 * The writer adds every counter increment of a batch here and writes the sums once, before
 * COMMIT; a request rolled back to its savepoint takes its increments back out. */

typedef struct dlog_counts dlog_counts;

/* An empty accumulator (free with dlog_counts_free), or NULL when out of memory. */
dlog_counts *dlog_counts_new(void);
void dlog_counts_free(dlog_counts *c);

/* Adds n to (day, metric, key); key NULL means "". Strings are copied. Returns 0, or -1 when
 * out of memory (nothing added). */
int dlog_counts_add(dlog_counts *c, const char *day, const char *metric, const char *key,
                    int64_t n);

/* A mark of the increments added so far; dlog_counts_undo(c, mark) takes back every
 * increment added after it (a request rolled back to its savepoint). */
size_t dlog_counts_mark(const dlog_counts *c);
void dlog_counts_undo(dlog_counts *c, size_t mark);

/* Drops every sum (the batch's transaction was rolled back). */
void dlog_counts_reset(dlog_counts *c);

/* Writes every non-zero sum with `add` (borrowed, a prepared "INSERT INTO daily (day,
 * metric, key, count) VALUES (?1, ?2, ?3, ?4) ON CONFLICT ... count = count +
 * excluded.count") and empties c. Returns DG_OK or DG_EDB with a message in err. */
dg_err dlog_counts_flush(dlog_counts *c, sqlite3_stmt *add, char *err, size_t errlen);

/* ---- write side (dlog_kpi.c), called on the writer thread inside the batch transaction -- */

typedef struct dlog_kpi dlog_kpi;

/* Prepares the KPI statements on the writer connection db (borrowed; schema >= 2). When the
 * log holds decisions but no KPI state (a log written before schema step 2), rebuilds the
 * state from the decisions first, in one transaction. Returns DG_OK and *out (free with
 * dlog_kpi_close), or DG_EDB / DG_ENOMEM with a message in err. */
dg_err dlog_kpi_open(sqlite3 *db, dlog_kpi **out, char *err, size_t errlen);

/* Finalizes the statements and frees k. NULL is a no-op. */
void dlog_kpi_close(dlog_kpi *k);

/* The accumulator every `daily` increment of k goes to (owned by k): the writer adds its
 * own per-decision counters to it too, and writes the batch's sums with dlog_kpi_flush()
 * before COMMIT (dlog_counts_reset() when the transaction is rolled back). */
dlog_counts *dlog_kpi_counts(dlog_kpi *k);

/* Writes the accumulated sums into `daily` (inside the caller's transaction) and empties
 * the accumulator. Returns DG_OK or DG_EDB with a message in err. */
dg_err dlog_kpi_flush(dlog_kpi *k, char *err, size_t errlen);

/* The columns of a deal's `deals` row the KPI accounting uses (strings borrowed). */
typedef struct {
    const char *clouds_json, *currency;
    int is_new; /* this is the deal's first decision: no KPI state or registration is stored
                   for it yet (the accounting then reads neither) */
    int has_amount;
    int64_t amount;
    int has_first_gated, has_first_allowed, has_won, has_lost;
    int64_t first_gated_ms, first_allowed_ms, won_ms, lost_ms;
} dlog_kpi_deal;

/* Accounts decision d, already inserted and applied to `deals`: the deal's verified
 * registrations, first gated move, blocked streak, and the difference its new state makes
 * to the k_* counters. deal is the deal's `deals` row after d (the writer has it from its
 * upsert), or NULL to read it. Returns DG_OK, or DG_EDB / DG_ENOMEM with a message in err
 * (the caller rolls the request back). */
dg_err dlog_kpi_decision(dlog_kpi *k, const dlog_decision *d, const dlog_kpi_deal *deal, char *err,
                         size_t errlen);

/* Accounts one logged commission-check line (violations only count). Same returns. */
dg_err dlog_kpi_comp(dlog_kpi *k, const dlog_comp_line *c, char *err, size_t errlen);

/* Recomputes every deal's KPI state and the k_* counters from the decisions and the comp
 * checks (inside the caller's transaction). Used by dlog_kpi_open on an old log; also a
 * repair tool. Same returns. */
dg_err dlog_kpi_rebuild(dlog_kpi *k, char *err, size_t errlen);

/* "YYYY-MM-DD" (UTC) of a unix-ms time into out (11 bytes at least). */
void dlog_kpi_day(int64_t time_ms, char out[16]);

#endif
