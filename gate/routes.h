/* routes.h — the handlers behind each route of the HTTP API (one file per area). */
#ifndef DG_ROUTES_H
#define DG_ROUTES_H

#include "gate/decide.h"
#include "gate/http.h"

int gate_h_healthz(gate_req *r);
int gate_h_readyz(gate_req *r);
int gate_h_stage(gate_req *r);              /* POST /v1/gate/stage */
int gate_h_decisions(gate_req *r);          /* GET /v1/decisions */
int gate_h_decision(gate_req *r);           /* GET /v1/decisions/{id} */
int gate_h_salesforce(gate_req *r);         /* POST /v1/gate/salesforce (adapter_salesforce.c) */
int gate_h_hubspot(gate_req *r);            /* POST /v1/gate/hubspot (adapter_hubspot.c) */
int gate_h_decision_writeback(gate_req *r); /* POST /v1/decisions/{id}/writeback (writeback.c) */
int gate_h_openapi(gate_req *r);            /* GET /openapi.json (openapi.c) */
int gate_h_comp_check(gate_req *r);         /* POST /v1/commission/check (api_comp.c) */
int gate_h_comp_checks(gate_req *r);        /* GET /v1/commission/checks (api_comp.c) */
int gate_h_ui(gate_req *r);                 /* GET /ui (ui.c) */
int gate_h_ui_deal(gate_req *r);            /* GET /ui/deal?id= (ui.c) */
int gate_h_kpis(gate_req *r);               /* GET /v1/kpis (kpis.c) */
int gate_h_metrics(gate_req *r);            /* GET /metrics (metrics.c) */
int gate_h_overrides_post(gate_req *r);     /* POST /v1/overrides (overrides.c) */
int gate_h_overrides_get(gate_req *r);      /* GET /v1/overrides (overrides.c) */
int gate_h_override_get(gate_req *r);       /* GET /v1/overrides/{id} (overrides.c) */
int gate_h_override_delete(gate_req *r);    /* DELETE /v1/overrides/{id} (overrides.c) */

/* Answers a pipeline error (gate_result with status != 200) as a JSON error object, with
 * Retry-After on a 503. Shared by every gate adapter. Returns the status. */
int gate_reply_result_error(gate_req *r, const gate_result *res);

/* What sets one gate adapter apart, for gate_handle_event. */
typedef struct {
    const char *name; /* the adapter gate_decide logs: "stage", "salesforce", "hubspot" */
    const char *noun; /* what the 415 answer calls the body: "event", "body" */
    /* Builds ev from the parsed body (ev zeroed first; freed by gate_handle_event, also on
     * error) and may set *dedupe_window_s (0 on entry; see gate_decide). arg is the one
     * passed to gate_handle_event. Returns DG_OK, DG_EINVAL (a 422: err names the field)
     * or DG_ENOMEM (a 503). */
    dg_err (*event)(const struct cfg *c, const cJSON *root, void *arg, dg_event *ev,
                    int *dedupe_window_s, char *err, size_t errlen);
    /* The 200 answer in the CRM's shape from the decision (borrowed): a new object, or NULL
     * when out of memory. NULL: the decision object itself (the canonical answer). */
    cJSON *(*answer)(const cJSON *decision, void *arg);
} gate_adapter;

/* Runs the JSON body of r through the pipeline for adapter a and answers it: Content-Type
 * application/json (else 415), the strict parse (400 malformed, 422 refused), a->event (422,
 * or 503 out of memory), the body's idempotency hash (503 out of memory), gate_decide, then
 * the decision in a's shape (X-Dealgate-Replay: 1 on a replay; r->decision_id set) or the
 * pipeline error (gate_reply_result_error). The caller authenticates first. arg (borrowed)
 * goes to a->event and a->answer. Returns the status answered. */
int gate_handle_event(gate_req *r, const gate_adapter *a, void *arg);

/* Query-parameter helpers shared by the read endpoints. Each returns 0 when the parameter
 * is absent or valid (output set), else the 422 status it already answered. */
/* `name` as an RFC 3339 date/date-time or unix ms, into *ms. */
int gate_time_param(gate_req *r, const char *name, int64_t *ms);
/* limit (1-500) into *limit; cursor into cursor_buf, *cursor pointing at it. */
int gate_page_params(gate_req *r, int *limit, const char **cursor, char *cursor_buf,
                     size_t cursor_cap);
/* The KPI window of a request (kpis.c): since/until as UTC days (default: the last 30 days),
 * an optional cloud (a configured key, any case; *q->cloud points into `cloud`), comp = the
 * request carries a comp reader token. 0, or the 422 already answered. */
int gate_kpi_window(gate_req *r, dlog_kpi_query *q, char since[16], char until[16],
                    char cloud[CFG_NAME_MAX + 1]);

#endif
