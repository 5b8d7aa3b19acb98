/* writeback.h — moving a blocked deal back in its CRM, after the answer, exactly once.
 *
 * HubSpot cannot veto a save, and a Salesforce Flow's asynchronous path runs after the save,
 * so with `writeback = yes` a block is followed by a write-back: the CRM's own stage value
 * to go back to (the decision's revert_to_value) and the reason. The job is queued in the
 * decision log in the same transaction as the decision itself (gate_decide fills the row's
 * write-back fields from gate_writeback_payload), so a decision that calls for a write-back
 * is never logged without its job, and a replay queues nothing. A worker thread works the
 * queue: it reads the deal again first (if the deal is no longer in the stage that was
 * blocked, someone moved it on and the job is `superseded`), then PATCHes it. Failures that
 * may heal (5xx, 429, timeouts) are retried with exponential back-off (1 s, 2 s, 4 s, ...,
 * at most 10 min apart, WB_MAX_ATTEMPTS in all); the others fail at once with the
 * upstream's error. A claimed job carries a lease in the log, so a crash mid-call leaves it
 * due again after a restart, and the re-read makes the second pass a no-op if the first
 * PATCH landed: never applied twice. Design notes: docs/internals/decision-log.md.
 */
#ifndef DG_WRITEBACK_H
#define DG_WRITEBACK_H

#include <cjson/cJSON.h>

#include "gate/gate.h"

#define WB_MAX_ATTEMPTS 14 /* 1+2+...+512 s, then 10 min apart: about an hour */
#define WB_BACKOFF_FIRST_MS 1000
#define WB_BACKOFF_MAX_MS 600000
/* A claimed job is due again after this (a crash mid-call); one job's calls take at most
 * 3 x CRM_TIMEOUT_MS, and the worker claims one job at a time. */
#define WB_LEASE_MS 60000
#define WB_POLL_MS 250 /* the worker looks for due jobs this often */

typedef struct gate_writeback gate_writeback;

/* Starts the worker thread over g (borrowed: g, its log and runtime must outlive
 * gate_writeback_stop). With g->log NULL nothing is started and *out is NULL. Returns DG_OK,
 * or DG_ENOMEM / DG_EINTERNAL with a message in err. */
dg_err gate_writeback_start(gate_ctx *g, gate_writeback **out, char *err, size_t errlen);

/* Stops the worker after the job in hand (if any) is finished, and frees it. NULL is a
 * no-op. Call before dlog_close. */
void gate_writeback_stop(gate_writeback *w);

/* 1 if crm ("salesforce", "hubspot") has writeback = yes under c: only then can a decision
 * call for a write-back (gate_writeback_payload). Pure. */
int gate_writeback_enabled(const struct cfg *c, const char *crm);

/* The write-back job `decision` (borrowed, a decision object as gate_decide builds it) calls
 * for under config c: a block in enforce mode with a revert value different from the value
 * the deal arrived with, for crm "salesforce" or "hubspot" whose section says writeback =
 * yes. Pure: reads only its arguments. Sets *payload to the job's payload as JSON text
 * ({"opportunity_id", "stage_value", "blocked_value", "reason"}; caller frees with free()),
 * or to NULL when no write-back is called for. Returns DG_OK or DG_ENOMEM (*payload NULL).
 * gate_decide uses it to queue the job in the decision's own transaction. */
dg_err gate_writeback_payload(const struct cfg *c, const char *crm, const cJSON *decision,
                              char **payload);

/* Queues the write-back `decision` calls for (gate_writeback_payload) in a transaction of its
 * own, for a decision logged without one. Idempotent per decision (a job already queued for
 * it is left as it is). *queued (may be NULL) is 1 when a job exists for it afterwards.
 * Returns DG_OK (also when nothing is called for), DG_ENOMEM, or DG_EDB when the log refused
 * it. */
dg_err gate_writeback_enqueue(gate_ctx *g, const struct cfg *c, const char *crm,
                              const cJSON *decision, int *queued);

#endif
