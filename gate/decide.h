/* decide.h — the request pipeline shared by every adapter and by `dealgate eval`.
 *
 * event → idempotency check → deal state from the log → which clouds to look up (rules) →
 * look-ups (connectors) → decision (rules) → row committed to the log → answer. A decision
 * is answered only after its row is committed; with no log (eval) nothing is written.
 */
#ifndef DG_DECIDE_H
#define DG_DECIDE_H

#include <cjson/cJSON.h>

#include "gate/gate.h"
#include "rules/model.h"

typedef struct {
    int status;             /* 200, or the HTTP error status (409, 422, 503) */
    const char *err_code;   /* error code when status != 200 (static string) */
    char message[320];      /* error message when status != 200 */
    int retry_after_s;      /* with 503: the Retry-After value */
    char *text;             /* with 200: the decision as JSON text, as the log holds it (a
                               replay answers the logged text). Freed by gate_result_free */
    char id[40];            /* with 200 for a new decision: its id; "" for a replay */
    cJSON *decision;        /* the decision object parsed from text, once asked for
                               (gate_result_tree); NULL until then */
    int replay;             /* 1 if this is the first decision, replayed */
} gate_result;

/* Decides ev for `adapter` ("stage", "salesforce", "hubspot"). body_hash identifies the
 * event's content for idempotency (409 when an event id is reused with another body).
 * When ev has no event_id and dedupe_window_s > 0, an identical body for the same deal
 * logged within that window is a replay (HubSpot webhooks). Fills *res (always). */
void gate_decide(gate_ctx *g, gate_rt *rt, const dg_event *ev, const char *adapter,
                 const char *body_hash, int dedupe_window_s, gate_result *res);

/* With 200: the decision as an object (parsed from res->text on the first call, kept in
 * res->decision); NULL when out of memory or without a decision. */
cJSON *gate_result_tree(gate_result *res);

/* Releases what gate_decide put in res. */
void gate_result_free(gate_result *res);

#endif
