/* kpis.c — GET /v1/kpis?since=&until=&cloud= : the co-sell KPIs of a window of UTC days.
 *
 * The figures are sums of per-day counters the decision log keeps on write (dlog_kpis), so
 * the answer costs a few hundred rows whatever the size of the log. The window is whole UTC
 * days: since's day through until's day, both included (defaults: the last 30 days, today
 * included). Commission figures need a comp reader token; without one they are null.
 * Definitions: docs/kpis.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gate/dlog_overrides.h"
#include "gate/routes.h"

#define KPI_DEFAULT_DAYS 30

static void day_of_ms(int64_t ms, char out[16])
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999) {
        snprintf(out, 16, "0000-00-00");
        return;
    }
    char tmp[48]; /* room for any int, to please -Wformat-truncation */
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    snprintf(out, 16, "%.10s", tmp);
}

int gate_kpi_window(gate_req *r, dlog_kpi_query *q, char since[16], char until[16],
                    char cloud[CFG_NAME_MAX + 1])
{
    int64_t since_ms = -1, until_ms = -1;
    int st;
    if ((st = gate_time_param(r, "since", &since_ms)) != 0) return st;
    if ((st = gate_time_param(r, "until", &until_ms)) != 0) return st;
    if (until_ms < 0) until_ms = gate_now_ms();
    if (since_ms < 0) since_ms = until_ms - (int64_t)(KPI_DEFAULT_DAYS - 1) * 86400000;
    day_of_ms(since_ms, since);
    day_of_ms(until_ms, until);
    if (strcmp(since, "0000-00-00") == 0 || strcmp(until, "0000-00-00") == 0)
        return gate_reply_error(r, 422, "invalid_field", "since and until must be years 1-9999");
    if (strcmp(since, until) > 0)
        return gate_reply_error(r, 422, "invalid_field", "until (%s) is before since (%s)", until,
                                since);
    char want[CFG_NAME_MAX + 2];
    int n = gate_query(r, "cloud", want, sizeof want);
    q->cloud = NULL;
    if (n < 0)
        return gate_reply_error(r, 422, "invalid_field", "query parameter cloud: unknown cloud");
    if (n > 0 && want[0] != '\0') {
        const struct cfg *c = r->rt->cfg;
        for (size_t i = 0; i < c->nclouds; i++) {
            if (strcasecmp(c->clouds[i].key, want) == 0) {
                snprintf(cloud, CFG_NAME_MAX + 1, "%s", c->clouds[i].key);
                q->cloud = cloud;
            }
        }
        if (q->cloud == NULL)
            return gate_reply_error(r, 422, "invalid_field",
                                    "query parameter cloud: unknown cloud \"%.64s\" (the keys "
                                    "of [cloud:*] sections)",
                                    want);
    }
    q->since_day = since;
    q->until_day = until;
    q->comp = gate_auth_check(r, &r->rt->comp_reader);
    return 0;
}

int gate_h_kpis(gate_req *r)
{
    dlog_kpi_query q = {0};
    char since[16], until[16], cloud[CFG_NAME_MAX + 1];
    int st = gate_kpi_window(r, &q, since, until, cloud);
    if (st != 0) return st;
    char *json = NULL, err[256];
    dg_err rc = dlog_kpis(r->g->log, &q, &json, err, sizeof err);
    if (rc == DG_OK) rc = dlog_kpis_add_lapses(r->g->log, &q, &json); /* re-verification */
    return gate_reply_read(r, rc, json, err, NULL);
}
