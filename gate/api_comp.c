/* api_comp.c — commission checks over HTTP: POST /v1/commission/check (webhook tokens)
 * checks lines and logs every one of them; GET /v1/commission/checks (comp reader tokens)
 * reads them back. The checking itself is gate/comp_intake.c over rules/comp.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/comp_intake.h"
#include "gate/routes.h"

#define COMP_ID_LEN 40

int gate_h_comp_check(gate_req *r)
{
    char flag[8], err[320];
    int all = gate_query(r, "all", flag, sizeof flag) > 0 && strcmp(flag, "1") == 0;
    gate_comp_result *res = NULL;
    dg_err rc = gate_comp_check_body(r->rt->cfg, mg_get_header(r->conn, "Content-Type"), r->body,
                                     r->body_len, all, &res, err, sizeof err);
    if (rc != DG_OK || !res)
        return gate_reply_error(r, 503, "overloaded", "the check could not be run; retry");
    int status = res->status;
    if (status == 200 && res->nlines > 0) {
        char batch[COMP_ID_LEN];
        char(*ids)[COMP_ID_LEN] = calloc(res->nlines, COMP_ID_LEN);
        if (!ids) {
            gate_comp_result_free(res);
            return gate_reply_error(r, 503, "overloaded", "out of memory");
        }
        int64_t now = gate_now_ms();
        gate_new_id("cb_", batch, sizeof batch);
        for (size_t i = 0; i < res->nlines; i++) {
            gate_new_id("cc_", ids[i], COMP_ID_LEN);
            res->lines[i].id = ids[i];
            res->lines[i].time_ms = now;
            res->lines[i].batch_id = batch;
        }
        rc = dlog_append_comp(r->g->log, res->lines, res->nlines, err, sizeof err);
        free(ids);
        if (rc != DG_OK) {
            gate_comp_result_free(res);
            return gate_reply_error(r, 503, "log_unavailable",
                                    "the check could not be recorded; nothing was lost, retry");
        }
    }
    status = gate_reply_raw(r, status, "application/json", res->body, res->body_len, "");
    gate_comp_result_free(res);
    return status;
}

int gate_h_comp_checks(gate_req *r)
{
    char rep[256], flag[8], cursor[128], err[256];
    dlog_comp_filter q = {0};
    int n, st;
    if ((n = gate_query(r, "rep", rep, sizeof rep)) < 0)
        return gate_reply_error(r, 422, "invalid_field", "query parameter rep is too long");
    if (n > 0) q.rep = rep;
    if ((n = gate_query(r, "violations", flag, sizeof flag)) != 0) {
        if (n < 0 || (strcmp(flag, "1") != 0 && strcmp(flag, "0") != 0))
            return gate_reply_error(r, 422, "invalid_field",
                                    "query parameter violations must be 1 or 0");
        q.violations_only = flag[0] == '1';
    }
    if ((st = gate_time_param(r, "since", &q.since_ms)) != 0) return st;
    if ((st = gate_page_params(r, &q.limit, &q.cursor, cursor, sizeof cursor)) != 0) return st;
    char *json = NULL;
    dg_err rc = dlog_query_comp(r->g->log, &q, &json, err, sizeof err);
    return gate_reply_read(r, rc, json, err, NULL);
}
