/* metrics.h — the service's counters for GET /metrics (Prometheus text format).
 *
 * A gate_metrics is a fixed block of atomic counters owned by the gate_ctx (no globals):
 * requests by route and status with a latency histogram, decisions by outcome, blocks by
 * reason code, warnings by code. Recording is lock-free (relaxed atomic increments; a route
 * or code takes a slot with one compare-and-swap the first time it is seen), so the request
 * path never waits on it. Everything else /metrics shows is read when it is scraped, from
 * its owner: per-cloud look-ups and cache from the connectors (conn_cloud_stat), commits,
 * batch sizes and queue from the decision log, write-back queue depth from its table.
 * Names and labels: docs/api.md ("Metrics") and docs/manager-page.md.
 */
#ifndef DG_METRICS_H
#define DG_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "gate/decide.h"
#include "gate/gate.h"
#include "rules/model.h"

typedef struct gate_metrics gate_metrics;

/* Allocates a zeroed registry. Returns DG_OK and *out (free with gate_metrics_free), or
 * DG_ENOMEM. */
dg_err gate_metrics_new(gate_metrics **out);

/* Frees m. NULL is a no-op. No recording may be in progress. */
void gate_metrics_free(gate_metrics *m);

/* Records one HTTP request: route is the matched route's path pattern (static storage, e.g.
 * "/v1/decisions/"), or NULL for a request no route matched; status is the reply status;
 * us its duration in microseconds. Lock-free; m NULL is a no-op. */
void gate_metrics_request(gate_metrics *m, const char *route, int status, int64_t us);

/* Records how one gate_decide() call ended (res, with the decision d and facts f it was made
 * from; opp_id the deal): a decision by outcome, its block reason codes and warning codes, a
 * 503 retry answer. Logs each failed co-sell look-up as one JSON line on stderr
 * ({"event":"upstream_failure", "cloud", "connector", "error", "retryable",
 * "opportunity_id", "decision_id"}; never a secret: connector errors carry none). All
 * arguments borrowed; g->metrics NULL records nothing but still logs. */
void gate_observe_decision(gate_ctx *g, const gate_result *res, const dg_decision *d,
                           const dg_facts *f, const char *opp_id);

/* Renders every metric as Prometheus text exposition format 0.0.4 into a malloc'd,
 * NUL-terminated buffer (caller frees), *len its length. rt (borrowed) supplies the
 * connectors. Returns NULL when out of memory. */
char *gate_metrics_render(gate_ctx *g, gate_rt *rt, size_t *len);

#endif
