/* dlog_overrides.h — the decision log's roll-out tables: overrides, lapses, retention.
 *
 * An extension of the dlog.h interface (same log, same writer thread, same reader pool),
 * kept in its own header so dlog.h stays as it is: deal-desk overrides (table `overrides`,
 * gate/dlog_overrides.c), re-verification state and lapses (table `deal_lapses`,
 * gate/dlog_reverify.c) and retention pruning (gate/dlog_retention.c). Like dlog.h it names
 * no SQLite type, so a PostgreSQL backend would implement these too. Every write goes
 * through the writer thread (dlog_write_call) and returns once committed; every read runs
 * on the reader pool. Schema: docs/internals/decision-log.md (step 3).
 */
#ifndef DG_DLOG_OVERRIDES_H
#define DG_DLOG_OVERRIDES_H

#include <stddef.h>
#include <stdint.h>

#include "config/err.h"
#include "gate/dlog.h"
#include "rules/model.h"

/* ---- overrides ----------------------------------------------------------------------------- */

#define DLOG_OVERRIDE_REASON_MAX 1000 /* bytes of reason */
#define DLOG_OVERRIDE_WHO_MAX 200     /* bytes of approved_by */

/* One override as granted. Strings borrowed. */
typedef struct {
    const char *id;          /* required: "ov_" + 26 chars */
    const char *opp_id;      /* required */
    const char *rule;        /* required: a rule name */
    const char *reason;      /* required */
    const char *approved_by; /* required */
    int64_t expires_ms;      /* unix ms: live while now < expires_ms */
    int64_t created_ms;
} dlog_override;

/* Records o and waits for the commit. Returns DG_OK, DG_EINVAL (missing field: message in
 * err), DG_EEXISTS (the id is taken) or DG_EDB. */
dg_err dlog_override_add(dlog *l, const dlog_override *o, char *err, size_t errlen);

/* Revokes override id at now_ms (an override already revoked keeps its first revocation
 * time; *already = 1 then, may be NULL). Returns DG_OK, DG_ENOTFOUND or DG_EDB. */
dg_err dlog_override_revoke(dlog *l, const char *id, int64_t now_ms, int *already);

/* Override id as a JSON object (caller frees): {"id", "opportunity_id", "rule", "reason",
 * "approved_by", "expires_at", "created_at", "revoked_at" (null when not revoked), "active"
 * (not revoked and now_ms < expires), "used" (decisions it let through), "last_used_at"
 * (null when never)}. Times are RFC 3339 UTC. DG_OK, DG_ENOTFOUND, DG_ENOMEM or DG_EDB. */
dg_err dlog_override_get(dlog *l, const char *id, int64_t now_ms, char **json);

typedef struct {
    const char *opportunity; /* exact opp id, or NULL */
    int active_only;         /* only live overrides at now_ms */
    int64_t now_ms;
    int limit;          /* 1..500, default 100 */
    const char *cursor; /* from a previous page's next_cursor, or NULL */
} dlog_override_filter;

/* Newest granted first: {"overrides": [objects as dlog_override_get], "next_cursor":
 * "..."|null} (caller frees). DG_OK, DG_EINVAL (bad cursor: message in err), DG_ENOMEM or
 * DG_EDB. */
dg_err dlog_override_query(dlog *l, const dlog_override_filter *q, char **json, char *err,
                           size_t errlen);

/* The overrides of deal opp_id that are live at now_ms (not revoked, expiring after now),
 * the latest expiry first, for the rules (dg_facts.overrides). *out is a malloc'd array
 * (caller frees each with dg_override_free, then the array); NULL with *n = 0 when none.
 * DG_OK, DG_ENOMEM or DG_EDB. */
dg_err dlog_overrides_live(dlog *l, const char *opp_id, int64_t now_ms, dg_override **out,
                           size_t *n);

/* ---- re-verification (gate/dlog_reverify.c) ------------------------------------------------ */

/* A deal past the gate to re-check: its state from `deals` (strings owned). */
typedef struct {
    char *opp_id, *pipeline, *name, *account, *owner, *currency, *clouds_json;
    int has_amount;
    int64_t amount;
    char *stage, *stage_raw;  /* the stage the deal is in (pipeline name, CRM value) */
    char *registrations_json; /* registrations of its newest allowed gated move (or the
                                 verified ones the KPI state kept); NULL if none known */
    char *crm;                /* "salesforce" | "hubspot" | NULL: where its moves came from */
    int lapsed;               /* a lapse is recorded and not cleared */
} dlog_reverify_deal;

void dlog_reverify_deal_free(dlog_reverify_deal *d);

/* Up to max deals whose newest decision allowed them past a gate (an allowed gated move,
 * newest outcome allow), not won or lost, last re-checked at or before checked_before_ms
 * (never-checked first, then the longest unchecked). Fills deals[0..*n) (caller frees each
 * with dlog_reverify_deal_free). DG_OK, DG_ENOMEM or DG_EDB (*n = 0). */
dg_err dlog_reverify_candidates(dlog *l, int64_t checked_before_ms, size_t max,
                                dlog_reverify_deal *deals, size_t *n);

/* What one re-check found. */
typedef enum {
    DLOG_RECHECK_OK = 0,       /* still registered: clears a recorded lapse */
    DLOG_RECHECK_LAPSED,       /* a registration lapsed: recorded once, until cleared */
    DLOG_RECHECK_INCONCLUSIVE, /* look-up failed: nothing changes but the check time */
} dlog_recheck;

typedef struct {
    const char *cloud, *reg_id, *status, *code, *message; /* the lapse (LAPSED) */
    const char *decision_id;                              /* the decision-log entry recording it */
} dlog_lapse;

/* Records a re-check of opp_id at now_ms. With LAPSED, a deal not lapsed yet gets the
 * lapse (and the per-day counter `lapsed`, keys "*" and the cloud); *recorded = 1 when this
 * call recorded it (may be NULL). DG_OK or DG_EDB. */
dg_err dlog_reverify_note(dlog *l, const char *opp_id, int64_t now_ms, dlog_recheck what,
                          const dlog_lapse *lapse, int *recorded);

/* Whether deal opp_id has a lapse recorded and not cleared (1/0 into *lapsed). DG_OK or
 * DG_EDB. */
dg_err dlog_reverify_is_lapsed(dlog *l, const char *opp_id, int *lapsed);

/* Deals with a lapsed registration now (not won or lost since), most recent first, for the
 * manager page: {"total": N, "deals": [{"opportunity_id", "name", "account", "owner",
 * "stage", "cloud", "registration_id", "status", "code", "message", "since" (unix ms),
 * "decision_id"}]}, at most limit (1..500). Caller frees. DG_OK, DG_ENOMEM or DG_EDB. */
dg_err dlog_lapsed_deals(dlog *l, const char *owner, int limit, char **json);

/* Lapses recorded on the UTC days since_day..until_day ("YYYY-MM-DD", inclusive) for cloud
 * (NULL: every cloud), for the KPIs (`registrations_lapsed`). DG_OK or DG_EDB. */
dg_err dlog_lapse_count(dlog *l, const char *since_day, const char *until_day, const char *cloud,
                        int64_t *count);

/* Adds "registrations_lapsed" (dlog_lapse_count over q's window and cloud) to the KPI
 * object *json (as dlog_kpis wrote it; replaced in place, caller still frees). Returns
 * DG_OK (also when *json is not an object: left as it is), DG_ENOMEM or DG_EDB (then *json
 * is unchanged). */
dg_err dlog_kpis_add_lapses(dlog *l, const dlog_kpi_query *q, char **json);

/* ---- retention (gate/dlog_retention.c) ------------------------------------------------------ */

/* Deletes decisions logged before before_ms, with the write-back jobs and commission checks
 * of that age that are finished, and overrides that ended (expired or revoked) before it,
 * in transactions of at most chunk rows (so the writer never stalls for long). Per-deal
 * state (`deals`, `deal_kpi`, `deal_regs`, `deal_lapses`, `deal_stage_raw`) and the per-day
 * counters are kept: they were updated when each row was written. *deleted (may be NULL)
 * gets the number of decisions deleted. DG_OK or DG_EDB. */
dg_err dlog_prune(dlog *l, int64_t before_ms, int chunk, uint64_t *deleted, char *err,
                  size_t errlen);

#endif
