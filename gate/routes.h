/* routes.h — the handlers behind each route of the HTTP API (one file per area). */
#ifndef DG_ROUTES_H
#define DG_ROUTES_H

#include "gate/http.h"

int gate_h_healthz(gate_req *r);
int gate_h_readyz(gate_req *r);
int gate_h_stage(gate_req *r);          /* POST /v1/gate/stage */
int gate_h_decisions(gate_req *r);      /* GET /v1/decisions */
int gate_h_decision(gate_req *r);       /* GET /v1/decisions/{id} */
int gate_h_salesforce(gate_req *r);     /* POST /v1/gate/salesforce (adapter_salesforce.c) */
int gate_h_hubspot(gate_req *r);        /* POST /v1/gate/hubspot (adapter_hubspot.c) */
int gate_h_decision_writeback(gate_req *r); /* POST /v1/decisions/{id}/writeback (writeback.c) */
int gate_h_openapi(gate_req *r);        /* GET /openapi.json (openapi.c) */


#endif
