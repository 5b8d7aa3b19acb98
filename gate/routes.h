/* routes.h — the handlers behind each route of the HTTP API (one file per area). */
#ifndef DG_ROUTES_H
#define DG_ROUTES_H

#include "gate/http.h"

int gate_h_healthz(gate_req *r);
int gate_h_readyz(gate_req *r);
int gate_h_stage(gate_req *r);          /* POST /v1/gate/stage */
int gate_h_decisions(gate_req *r);      /* GET /v1/decisions */
int gate_h_decision(gate_req *r);       /* GET /v1/decisions/{id} */


#endif
