/* dlog.h — the decision log: one small interface over SQLite (WAL) in [server] data_dir.
 *
 * A writer thread owns the write connection and commits queued rows in batches, so many
 * concurrent decisions share one sync; dlog_append() returns only after the row is
 * committed (or failed). Reads use their own connections. Per-deal current state
 * (`deals`) and per-day counters (`daily`) are kept up to date in the same transaction, so
 * the manager page and KPIs read a few rows. The interface is kept small (append, find by
 * id or event id, query, deal state) so a PostgreSQL backend would be a second
 * implementation, not a rewrite. Schema: docs/internals/decision-log.md.
 */
#ifndef DG_DLOG_H
#define DG_DLOG_H

#include <stddef.h>
#include <stdint.h>

#include "config/err.h"

typedef struct dlog dlog;

/* One decision row. All strings borrowed (may be NULL unless noted). */
typedef struct {
    const char *id;           /* required, "dg_" + 26 chars */
    int64_t time_ms;          /* unix ms */
    const char *adapter;      /* required: "stage" | "salesforce" | "hubspot" | "import" */
    const char *event_id;     /* idempotency key within adapter; NULL if none */
    const char *body_hash;    /* hex SHA-256 of the canonical event (for 409 detection) */
    const char *opp_id;       /* required */
    const char *pipeline;     /* pipeline name */
    const char *name, *account, *owner;
    int has_amount;
    int64_t amount;           /* minor units */
    const char *currency;
    const char *clouds_json;  /* JSON array of cloud keys */
    const char *from_stage, *from_raw, *to_stage, *to_raw;
    const char *outcome;      /* "allow" | "block" */
    const char *mode;         /* "enforce" | "report" */
    const char *message;
    const char *reasons_json, *warnings_json, *registrations_json; /* JSON arrays */
    const char *config_version;
    int64_t latency_us;
    int gated;                /* a rule applied to this move */
    int won, lost;            /* to_stage is a won / lost stage */
    const char *decision_json; /* required: the full decision object as answered */
    /* Optional: a write-back job queued with the row, in the same transaction (table
     * `writebacks`: pending, due at time_ms; a decision is queued once per CRM): the CRM,
     * "salesforce" | "hubspot", and what to write, a JSON object. Both or neither. */
    const char *writeback_crm;
    const char *writeback_payload_json;
} dlog_decision;

/* Opens (creating if needed) data_dir/dealgate.db, sets WAL, creates/migrates the schema
 * and starts the writer thread. Returns DG_OK and *out (close with dlog_close), or DG_EDB /
 * DG_EIO with a message in err. */
dg_err dlog_open(const char *data_dir, dlog **out, char *err, size_t errlen);

/* Stops the writer after committing everything queued, and closes. NULL is a no-op. */
void dlog_close(dlog *l);

/* Appends d and waits until it is committed. Returns DG_OK; DG_EEXISTS if (adapter,
 * event_id) is already logged (nothing written); DG_EDB if the log cannot be written
 * (the caller answers 503). Safe from any thread. */
dg_err dlog_append(dlog *l, const dlog_decision *d, char *err, size_t errlen);

/* Finds the decision logged for (adapter, event_id). Returns DG_OK with *decision_json and
 * *body_hash (caller frees both with free()), DG_ENOTFOUND, or DG_EDB. */
dg_err dlog_find_event(dlog *l, const char *adapter, const char *event_id, char **decision_json,
                       char **body_hash);

/* Finds the last decision for opp_id whose body_hash equals body_hash and whose time is at
 * or after since_ms (HubSpot webhooks without an id). DG_OK with *decision_json, or
 * DG_ENOTFOUND / DG_EDB. */
dg_err dlog_find_recent_body(dlog *l, const char *opp_id, const char *body_hash, int64_t since_ms,
                             char **decision_json);

/* Returns the decision object with id as JSON (caller frees), DG_ENOTFOUND or DG_EDB. */
dg_err dlog_get(dlog *l, const char *id, char **decision_json);

/* The deal's current state: last stage (pipeline name), raw value it arrived with, and
 * retry_since (unix s of the first 503-retry answer since its last decision, 0 if none).
 * Outputs may be NULL; strings are caller-freed. DG_ENOTFOUND when the deal is unknown. */
dg_err dlog_deal_state(dlog *l, const char *opp_id, char **last_stage, char **last_raw,
                       int64_t *retry_since);

/* The raw CRM value deal opp_id last arrived with for `stage` (caller frees), or
 * DG_ENOTFOUND. */
dg_err dlog_stage_raw(dlog *l, const char *opp_id, const char *stage, char **raw);

/* Records that a retry (503) was answered for opp_id at now_s, unless one is already
 * recorded since the deal's last decision. Committed before return. */
dg_err dlog_note_retry(dlog *l, const char *opp_id, int64_t now_s);

typedef struct {
    const char *outcome;     /* "allow" | "block" | NULL */
    const char *owner;       /* exact */
    const char *opportunity; /* exact opp id */
    int64_t since_ms;        /* 0 = no bound */
    int limit;               /* 1..500, default 50 */
    const char *cursor;      /* opaque, from a previous page's next_cursor, or NULL */
} dlog_filter;

/* Newest first. Writes {"decisions": [...], "next_cursor": "..."|null} (caller frees).
 * Returns DG_OK, DG_EINVAL (bad cursor: message in err), or DG_EDB. */
dg_err dlog_query(dlog *l, const dlog_filter *q, char **json, char *err, size_t errlen);

/* One checked commission line (issue: comp checks). Strings borrowed. */
typedef struct {
    const char *id;          /* required, "cc_" + 26 chars */
    int64_t time_ms;
    const char *batch_id;    /* one id per HTTP request */
    const char *deal_id, *rep, *channel, *cloud, *currency;
    int violation;           /* 1 if any violation code */
    const char *codes_json;  /* JSON array of codes (violations and warnings) */
    const char *shortfall;   /* exact decimal string, "0.00" when none */
    const char *result_json; /* required: the line's result object */
} dlog_comp_line;

/* Appends n lines in one transaction and waits for the commit. DG_OK or DG_EDB. */
dg_err dlog_append_comp(dlog *l, const dlog_comp_line *lines, size_t n, char *err, size_t errlen);

typedef struct {
    const char *rep;      /* exact, or NULL */
    int64_t since_ms;     /* 0 = no bound */
    int violations_only;
    int limit;            /* 1..500, default 50 */
    const char *cursor;
} dlog_comp_filter;

/* Newest first: {"checks": [result objects with "id", "time"], "next_cursor": ...|null}. */
dg_err dlog_query_comp(dlog *l, const dlog_comp_filter *q, char **json, char *err,
                       size_t errlen);

/* Returns 1 if the log accepted its last write (for /readyz), else 0. */
int dlog_healthy(dlog *l);

/* Writer statistics since dlog_open (for /metrics and tests): *batches = transactions
 * committed by the writer, *rows = decision and commission-check rows they wrote (retry
 * notes and refused rows are not counted). Outputs may be NULL; l NULL gives zeros. */
void dlog_stats(dlog *l, uint64_t *batches, uint64_t *rows);

/* Returns the number of write requests queued and not yet taken by the writer (a gauge for
 * /metrics; 0 for NULL). */
size_t dlog_queue_depth(dlog *l);

/* Commit batch sizes since dlog_open (for /metrics): counts[i] = commits that wrote at most
 * dlog_batch_bounds[i] rows (and more than the bound before it); counts[DLOG_BATCH_BUCKETS]
 * = the commits above the last bound. Not cumulative. l NULL gives zeros. */
#define DLOG_BATCH_BUCKETS 10
extern const uint64_t dlog_batch_bounds[DLOG_BATCH_BUCKETS]; /* 1, 2, 4, ..., 512 */
void dlog_batch_sizes(dlog *l, uint64_t counts[DLOG_BATCH_BUCKETS + 1]);

/* ---- read side: KPIs and the manager page (gate/dlog_read.c) ----------------------------
 * Per-day counters and per-deal state kept on write (gate/dlog_kpi.c), so each of these
 * reads a few rows. Definitions of every figure: docs/kpis.md. */

typedef struct {
    const char *since_day, *until_day; /* "YYYY-MM-DD" (UTC days), inclusive; required */
    const char *cloud;                 /* a cloud key, or NULL for every cloud */
    int comp;                          /* 1: with the commission figures; 0: they are null */
} dlog_kpi_query;

/* The KPI object for the window: exactly the keys of DESIGN.md (registration_rate,
 * first_pass_rate, late_registrations, win_rate_registered, win_rate_unregistered,
 * inbound_share, attributed_revenue, median_days_registration_to_close, blocks_by_code,
 * comp_violations, comp_total_shortfall), rates null when their denominator is 0. Writes
 * JSON text into *json (caller frees with free()). Returns DG_OK, DG_EINVAL (a day is not
 * YYYY-MM-DD, or until is before since: message in err), DG_ENOMEM or DG_EDB. */
dg_err dlog_kpis(dlog *l, const dlog_kpi_query *q, char **json, char *err, size_t errlen);

typedef struct {
    const char *owner;  /* exact, or NULL */
    const char *cloud;  /* a cloud key the deal names, or NULL */
    const char *reason; /* a reason code of the (latest) block, or NULL */
    int limit;          /* rows returned: 1..500, default 100 */
} dlog_ui_filter;

/* Deals blocked now (their newest decision is a block), most recently blocked first:
 * {"total": N, "deals": [{"opportunity_id", "name", "account", "owner", "amount" (minor
 * units or null), "currency", "clouds": [...], "stage" (the stage the blocked move tried),
 * "message", "codes": [...], "since" (unix ms the deal has been blocked since),
 * "decision_id", "time" (unix ms of the newest block)}]}. total counts every match (with a
 * cloud or reason filter at most 5,000, and then "more": true is added); at most f->limit
 * deals are listed. Caller frees *json. DG_OK, DG_ENOMEM or DG_EDB. */
dg_err dlog_blocked(dlog *l, const dlog_ui_filter *f, char **json, char *err, size_t errlen);

/* The newest decisions matching f among the newest `scan` decisions (of the owner, when
 * one is given): {"decisions": [decision objects as answered]}, newest first, at most
 * f->limit. A reason filter matches blocked decisions with that reason code. Caller frees.
 * DG_OK, DG_ENOMEM or DG_EDB. */
dg_err dlog_recent(dlog *l, const dlog_ui_filter *f, int scan, char **json, char *err,
                   size_t errlen);

/* Commission-check violations by rep over q's window (q->cloud and q->comp are ignored):
 * {"reps": [{"rep", "violations", "shortfall": {"CCY": "decimal"}}]}, most violations
 * first, at most limit reps. Caller frees. DG_OK, DG_EINVAL, DG_ENOMEM or DG_EDB. */
dg_err dlog_comp_by_rep(dlog *l, const dlog_kpi_query *q, int limit, char **json, char *err,
                        size_t errlen);

/* Write-back jobs waiting to run (state pending: the queue depth for /metrics). DG_OK or
 * DG_EDB. */
dg_err dlog_wb_pending(dlog *l, uint64_t *pending);

/* ---- write-back queue (gate/dlog_writeback.c; table `writebacks`) ----------------------
 * One job per (decision, CRM). A job is `pending` until it ends `done`, `superseded` or
 * `failed`. Claiming a due job leases it: next_at_ms moves lease_ms ahead, so a crash
 * mid-call leaves it due again; the worker re-reads the deal before writing, so a second
 * pass never applies it twice. Every write goes through the log's writer thread. */

typedef struct {
    int64_t id;          /* job id */
    char *decision_id;   /* owned */
    char *crm;           /* "salesforce" | "hubspot" (owned) */
    char *opp_id;        /* owned */
    char *payload_json;  /* what to write, as queued (owned) */
    int attempts;        /* including the one this claim starts */
} dlog_wb_job;

/* Frees the strings of j and zeroes it. */
void dlog_wb_job_free(dlog_wb_job *j);

/* Queues a pending job, due now, and waits for the commit. Idempotent: a job for
 * (decision_id, crm) already queued is left as it is (DG_OK). Strings borrowed. Returns
 * DG_OK, DG_EINVAL (missing field) or DG_EDB. */
dg_err dlog_wb_enqueue(dlog *l, const char *decision_id, const char *crm, const char *opp_id,
                       const char *payload_json, int64_t now_ms, char *err, size_t errlen);

/* Returns 1 if a pending job is due at now_ms, else 0 (also on error). A read on the reader
 * pool: the worker polls with it, so an idle queue costs no write transaction. */
int dlog_wb_due(dlog *l, int64_t now_ms);

/* Claims up to max due jobs (pending, next_at_ms <= now_ms), oldest due first: each gets
 * attempts + 1 and next_at_ms = now_ms + lease_ms, committed before return. Fills
 * jobs[0..*n) (caller frees each with dlog_wb_job_free). Returns DG_OK, DG_ENOMEM or
 * DG_EDB (*n = 0). */
dg_err dlog_wb_claim(dlog *l, int64_t now_ms, int64_t lease_ms, dlog_wb_job *jobs, size_t max,
                     size_t *n);

/* Records the outcome of a claimed job: state "done", "superseded", "failed", or "pending"
 * (try again at next_at_ms); note (may be NULL) is the upstream error or a detail. */
dg_err dlog_wb_finish(dlog *l, int64_t job_id, const char *state, int64_t next_at_ms,
                      const char *note, int64_t now_ms);

/* The write-back state of decision_id as a JSON object {"crm", "state", "attempts",
 * "stage_value", "next_attempt_at", "error" | "detail", "created_at", "updated_at"} (caller
 * frees). DG_OK, DG_ENOTFOUND (none queued) or DG_EDB. */
dg_err dlog_wb_get(dlog *l, const char *decision_id, char **json);

/* Makes decision_id's failed (or pending) job due now again, attempts counted from zero.
 * Returns DG_OK; DG_ENOTFOUND when no job exists; DG_ECONFLICT when it is done or
 * superseded (its state copied into state, statelen bytes); DG_EDB. */
dg_err dlog_wb_retry(dlog *l, const char *decision_id, int64_t now_ms, char *state,
                     size_t statelen);

#endif
