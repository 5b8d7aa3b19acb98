/* reverify.h — background jobs of `dealgate serve`: re-verification and retention.
 *
 * One thread, never a request thread. Every [reverify] interval_s it re-checks a bounded
 * batch of deals that are past the gate and not closed (the longest-unchecked first),
 * through the same connector look-ups and rules as a live decision (conn_lookup within
 * [server] decision_budget_ms, its cache and rate limits; deals one at a time, pause_ms
 * apart). A registration the deal had passed with that is no longer accepted (Rejected,
 * Expired, ...), no longer found, or now names another deal is a lapse: recorded once in
 * the log as a decision of adapter "reverify" with the warning `registration_lapsed`
 * (the deal does not move), shown on /ui and counted in the KPIs, and, with the CRM's
 * write-back on, its reason written to the deal without a stage change. A later re-check
 * that finds it registered again clears the lapse. The same thread prunes the log to
 * [server] retain_days at start and then daily. Docs: docs/operations.md,
 * docs/internals/decision-log.md.
 */
#ifndef DG_REVERIFY_H
#define DG_REVERIFY_H

#include <stdatomic.h>
#include <stdint.h>

#include "gate/gate.h"

#define REVERIFY_PRUNE_EVERY_MS (24 * 3600 * 1000LL) /* retention runs this often */

typedef struct gate_reverify gate_reverify;

/* What one run did. */
typedef struct {
    unsigned checked;      /* deals re-checked */
    unsigned lapsed;       /* lapses recorded by this run */
    unsigned restored;     /* lapsed deals found registered again */
    unsigned inconclusive; /* look-ups failed or nothing to check: no change */
    unsigned writebacks;   /* reason-only write-backs queued */
} gate_reverify_stats;

/* Starts the thread over g (borrowed: g, its log and runtime must outlive
 * gate_reverify_stop). With g->log NULL nothing is started and *out is NULL. Returns DG_OK,
 * or DG_ENOMEM / DG_EINTERNAL with a message in err. */
dg_err gate_reverify_start(gate_ctx *g, gate_reverify **out, char *err, size_t errlen);

/* Stops the thread after the deal in hand and frees it. NULL is a no-op. Call before
 * dlog_close. */
void gate_reverify_stop(gate_reverify *r);

/* One re-verification run at now_ms on runtime rt (borrowed): up to [reverify] batch deals
 * last checked at least interval_s ago. *stats (may be NULL) gets the counts. stop (may be
 * NULL) is polled between deals. Returns DG_OK, DG_ENOMEM or DG_EDB. */
dg_err gate_reverify_run(gate_ctx *g, gate_rt *rt, int64_t now_ms, const atomic_int *stop,
                         gate_reverify_stats *stats);

/* Prunes the log to c's [server] retain_days at now_ms (nothing when it is 0). *deleted
 * (may be NULL) gets the decisions deleted. Returns DG_OK or DG_EDB (message in err). */
dg_err gate_retention_run(gate_ctx *g, const struct cfg *c, int64_t now_ms, uint64_t *deleted,
                          char *err, size_t errlen);

#endif
