/* api.c — the canonical gate endpoint, the read API over the decision log, health. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/decide.h"
#include "gate/event.h"
#include "gate/json.h"
#include "gate/routes.h"

int gate_h_healthz(gate_req *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    cJSON_AddStringToObject(o, "version", DG_VERSION);
    return gate_reply_json(r, 200, o, "");
}

int gate_h_readyz(gate_req *r)
{
    int log_ok = r->g->log ? dlog_healthy(r->g->log) : 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", log_ok ? "ready" : "unavailable");
    cJSON_AddBoolToObject(o, "decision_log", log_ok);
    cJSON_AddStringToObject(o, "config_version", r->rt->cfg->version);
    /* Upstream details only for readers (they name systems and errors, never secrets). */
    if (gate_auth_check(r, &r->rt->reader)) {
        char buf[8192];
        size_t n = conn_health_json(r->rt->conns, buf, sizeof buf);
        cJSON *up = n > 0 && n < sizeof buf ? cJSON_Parse(buf) : NULL;
        if (up) cJSON_AddItemToObject(o, "upstreams", up);
    }
    return gate_reply_json(r, log_ok ? 200 : 503, o, log_ok ? "" : "Retry-After: 5\r\n");
}

/* Answers a pipeline result in the canonical shape. */
int gate_reply_result_error(gate_req *r, const gate_result *res)
{
    if (res->status == 503) {
        char hdr[64];
        snprintf(hdr, sizeof hdr, "Retry-After: %d\r\n",
                 res->retry_after_s > 0 ? res->retry_after_s : 5);
        cJSON *o = cJSON_CreateObject();
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(e, "code", res->err_code);
        cJSON_AddStringToObject(e, "message", res->message);
        return gate_reply_json(r, 503, o, hdr);
    }
    return gate_reply_error(r, res->status, res->err_code, "%s", res->message);
}

/* Answers res for adapter a: the decision in a's shape, or the pipeline error. A write-back
 * the decision calls for was queued with it (gate_decide). */
static int reply_result(gate_req *r, const gate_adapter *a, void *arg, gate_result *res)
{
    if (res->status != 200) return gate_reply_result_error(r, res);
    /* a new decision's answer is its logged text; a replay's or an adapter's needs the tree */
    const cJSON *tree = res->replay || a->answer ? gate_result_tree(res) : NULL;
    if ((res->replay || a->answer) && tree == NULL)
        return gate_reply_error(r, 503, "overloaded", "out of memory");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(tree, "decision_id");
    snprintf(r->decision_id, sizeof r->decision_id, "%s",
             cJSON_IsString(id) ? id->valuestring : res->id);
    const char *hdr = res->replay ? "X-Dealgate-Replay: 1\r\n" : "";
    if (a->answer) return gate_reply_json(r, 200, a->answer(tree, arg), hdr);
    return gate_reply_raw(r, 200, "application/json", res->text, strlen(res->text), hdr);
}

int gate_handle_event(gate_req *r, const gate_adapter *a, void *arg)
{
    if (!gate_content_type_is(r, "application/json"))
        return gate_reply_error(r, 415, "unsupported_media_type",
                                "send the %s as Content-Type: application/json", a->noun);
    char err[320];
    cJSON *root = NULL;
    dg_err rc = gate_json_parse(r->body, r->body_len, &root, err, sizeof err);
    if (rc == DG_EPARSE) return gate_reply_error(r, 400, "invalid_json", "%s", err);
    if (rc != DG_OK) return gate_reply_error(r, 422, "invalid_field", "%s", err);
    dg_event ev = {0}; /* the builders fill it; freed below whatever they got to */
    int dedupe_window_s = 0;
    rc = a->event(r->rt->cfg, root, arg, &ev, &dedupe_window_s, err, sizeof err);
    int status;
    char hash[65];
    if (rc != DG_OK) {
        status = rc == DG_EINVAL ? gate_reply_error(r, 422, "invalid_field", "%s", err)
                                 : gate_reply_error(r, 503, "overloaded", "out of memory");
    } else if (gate_json_hash(root, hash) != DG_OK) {
        status = gate_reply_error(r, 503, "overloaded", "out of memory");
    } else {
        gate_result res;
        gate_decide(r->g, r->rt, &ev, a->name, hash, dedupe_window_s, &res);
        status = reply_result(r, a, arg, &res);
        gate_result_free(&res);
    }
    dg_event_free(&ev);
    cJSON_Delete(root);
    return status;
}

static dg_err stage_event(const struct cfg *c, const cJSON *root, void *arg, dg_event *ev,
                          int *dedupe_window_s, char *err, size_t errlen)
{
    (void)arg, (void)dedupe_window_s;
    return gate_event_from_json(c, root, ev, err, errlen);
}

int gate_h_stage(gate_req *r)
{
    static const gate_adapter stage = {
        .name = "stage", .noun = "event", .event = stage_event, .answer = NULL};
    return gate_handle_event(r, &stage, NULL);
}

/* Parses an RFC 3339 date or date-time (Z or an offset), or unix milliseconds. */
static int64_t parse_since(const char *s, int *ok)
{
    *ok = 0;
    if (!*s) return 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end == '\0' && v >= 0) {
        *ok = 1;
        return v;
    }
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%d", &tm);
    if (!p) return 0;
    if (*p == 'T') {
        p = strptime(p + 1, "%H:%M:%S", &tm);
        if (!p) return 0;
        if (*p == '.')
            for (p++; *p >= '0' && *p <= '9'; p++) {
            }
        long off = 0;
        if (*p == 'Z') {
            p++;
        } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
            long hh = (p[1] - '0') * 10 + (p[2] - '0'), mm = (p[4] - '0') * 10 + (p[5] - '0');
            off = (hh * 60 + mm) * 60 * (*p == '-' ? -1 : 1);
            p += 6;
        } else {
            return 0;
        }
        if (*p) return 0;
        *ok = 1;
        return ((int64_t)timegm(&tm) - off) * 1000;
    }
    if (*p) return 0;
    *ok = 1;
    return (int64_t)timegm(&tm) * 1000;
}

int gate_time_param(gate_req *r, const char *name, int64_t *ms)
{
    char buf[64];
    int n = gate_query(r, name, buf, sizeof buf);
    if (n == 0) return 0;
    int ok = 0;
    if (n > 0) *ms = parse_since(buf, &ok);
    if (!ok)
        return gate_reply_error(r, 422, "invalid_field",
                                "query parameter %s must be an RFC 3339 date or time", name);
    return 0;
}

int gate_page_params(gate_req *r, int *limit, const char **cursor, char *cursor_buf,
                     size_t cursor_cap)
{
    char buf[16];
    int n;
    if ((n = gate_query(r, "limit", buf, sizeof buf)) != 0) {
        char *end;
        long v = n > 0 ? strtol(buf, &end, 10) : 0;
        if (n < 0 || *end != '\0' || v < 1 || v > 500)
            return gate_reply_error(r, 422, "invalid_field",
                                    "query parameter limit must be 1 to 500");
        *limit = (int)v;
    }
    if ((n = gate_query(r, "cursor", cursor_buf, cursor_cap)) < 0)
        return gate_reply_error(r, 422, "invalid_field", "query parameter cursor is invalid");
    if (n > 0) *cursor = cursor_buf;
    return 0;
}

int gate_h_decisions(gate_req *r)
{
    char outcome[16], owner[256], opp[160], cursor[128];
    dlog_filter q = {0};
    int n;
    if ((n = gate_query(r, "outcome", outcome, sizeof outcome)) < 0 ||
        (n > 0 && strcmp(outcome, "allow") != 0 && strcmp(outcome, "block") != 0))
        return gate_reply_error(r, 422, "invalid_field",
                                "query parameter outcome must be allow or block");
    if (n > 0) q.outcome = outcome;
    if ((n = gate_query(r, "owner", owner, sizeof owner)) < 0)
        return gate_reply_error(r, 422, "invalid_field", "query parameter owner is too long");
    if (n > 0) q.owner = owner;
    if ((n = gate_query(r, "opportunity", opp, sizeof opp)) < 0)
        return gate_reply_error(r, 422, "invalid_field", "query parameter opportunity is too long");
    if (n > 0) q.opportunity = opp;
    int st;
    if ((st = gate_time_param(r, "since", &q.since_ms)) != 0) return st;
    if ((st = gate_page_params(r, &q.limit, &q.cursor, cursor, sizeof cursor)) != 0) return st;
    char *json = NULL, err[256];
    dg_err rc = dlog_query(r->g->log, &q, &json, err, sizeof err);
    return gate_reply_read(r, rc, json, err, NULL);
}

int gate_h_decision(gate_req *r)
{
    const char *id = r->path + strlen("/v1/decisions/");
    if (strlen(id) > 64 || strchr(id, '/'))
        return gate_reply_error(r, 404, "not_found", "no such decision");
    char *json = NULL;
    dg_err rc = dlog_get(r->g->log, id, &json);
    return gate_reply_read(r, rc, json, NULL, "no such decision");
}
