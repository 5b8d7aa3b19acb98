/* overrides.c — the deal desk's exceptions: POST/GET /v1/overrides, GET/DELETE
 * /v1/overrides/{id} (desk tokens; DESIGN "Overrides").
 *
 * An override grants one deal an exception to one rule until it expires: while it is live,
 * the rule allows that deal with the warning `override` naming approver and reason (the
 * rules do it: rules_override_find; gate_decide reads the deal's live overrides from the
 * log before every decision). Requests are validated strictly, every refusal a 422 that
 * names the field: the rule must exist in the running configuration, the expiry must be an
 * RFC 3339 date-time in the future, reason and approver are required. Granting and revoking
 * each write one JSON line to stderr besides the row in the log; a revocation keeps the row
 * (the table is the audit trail). Docs: docs/overrides.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/dlog_overrides.h"
#include "gate/event.h"
#include "gate/json.h"
#include "gate/routes.h"
#include "gate/timeparse.h"

#define OV_PREFIX "/v1/overrides/"

static const cfg_rule *find_rule(const struct cfg *c, const char *name)
{
    for (size_t i = 0; i < c->nrules; i++)
        if (c->rules[i].name && strcmp(c->rules[i].name, name) == 0) return &c->rules[i];
    return NULL;
}

/* "a, b, c" of the configured rule names into buf. */
static void rule_names(const struct cfg *c, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < c->nrules && o + 1 < cap; i++) {
        int k = snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", c->rules[i].name);
        if (k < 0) break;
        o += (size_t)k;
    }
    if (c->nrules == 0) snprintf(buf, cap, "none configured");
}

/* A required, non-blank string field of at most max bytes without control characters.
 * Returns the value (borrowed), or NULL after answering 422. */
static const char *required_str(gate_req *r, const cJSON *root, const char *key, size_t max,
                                int *status)
{
    char err[320];
    const char *v = NULL;
    if (gate_json_str(root, "", key, 0, &v, err, sizeof err) != DG_OK) {
        *status = gate_reply_error(r, 422, "invalid_field", "%s: must be a string", key);
        return NULL;
    }
    const char *p = v;
    while (p && (*p == ' ' || *p == '\t'))
        p++;
    if (!p || !*p) {
        *status = gate_reply_error(r, 422, "invalid_field", "%s: required", key);
        return NULL;
    }
    if (strlen(v) > max) {
        *status = gate_reply_error(r, 422, "invalid_field", "%s: longer than %zu bytes", key, max);
        return NULL;
    }
    for (p = v; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7F) {
            *status =
                gate_reply_error(r, 422, "invalid_field", "%s: contains a control character", key);
            return NULL;
        }
    }
    return v;
}

/* One JSON line on stderr about an override (never a token). */
static void audit(const char *event, const char *json)
{
    cJSON *o = cJSON_Parse(json);
    cJSON *line = cJSON_CreateObject();
    if (o && line) {
        cJSON_AddStringToObject(line, "event", event);
        static const char *const keys[] = {"id",          "opportunity_id", "rule",
                                           "approved_by", "expires_at",     "revoked_at"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            cJSON *v = cJSON_GetObjectItemCaseSensitive(o, keys[i]);
            if (v && !cJSON_IsNull(v)) cJSON_AddItemToObject(line, keys[i], cJSON_Duplicate(v, 1));
        }
        char *text = cJSON_PrintUnformatted(line);
        if (text) {
            fprintf(stderr, "%s\n", text);
            free(text);
        }
    }
    cJSON_Delete(o);
    cJSON_Delete(line);
}

int gate_h_overrides_post(gate_req *r)
{
    if (!gate_content_type_is(r, "application/json"))
        return gate_reply_error(r, 415, "unsupported_media_type",
                                "send the override as Content-Type: application/json");
    if (!r->g->log)
        return gate_reply_error(r, 503, "log_unavailable", "the decision log is not open");
    char err[320];
    cJSON *root = NULL;
    dg_err rc = gate_json_parse(r->body, r->body_len, &root, err, sizeof err);
    if (rc == DG_EPARSE) return gate_reply_error(r, 400, "invalid_json", "%s", err);
    if (rc != DG_OK) return gate_reply_error(r, 422, "invalid_field", "%s", err);
    int status = 0;
    char *json = NULL;
    if (!cJSON_IsObject(root)) {
        status = gate_reply_error(r, 422, "invalid_field", "the body must be a JSON object");
        goto done;
    }
    static const char *const known[] = {"opportunity_id", "rule", "reason", "approved_by",
                                        "expires_at"};
    const cJSON *it;
    cJSON_ArrayForEach(it, root)
    {
        size_t k = 0;
        while (k < sizeof known / sizeof known[0] && strcmp(known[k], it->string) != 0)
            k++;
        if (k == sizeof known / sizeof known[0]) {
            status = gate_reply_error(r, 422, "invalid_field",
                                      "%.64s: unknown field (expected opportunity_id, rule, "
                                      "reason, approved_by, expires_at)",
                                      it->string);
            goto done;
        }
    }
    const char *opp = required_str(r, root, "opportunity_id", DG_ID_MAX, &status);
    if (!opp) goto done;
    if (gate_event_check_id(opp, "opportunity_id", err, sizeof err) != DG_OK) {
        status = gate_reply_error(r, 422, "invalid_field", "%s", err);
        goto done;
    }
    const char *rule = required_str(r, root, "rule", CFG_NAME_MAX, &status);
    if (!rule) goto done;
    if (!find_rule(r->rt->cfg, rule)) {
        char names[512];
        rule_names(r->rt->cfg, names, sizeof names);
        status = gate_reply_error(r, 422, "invalid_field",
                                  "rule: unknown rule \"%.64s\" (rules: %s)", rule, names);
        goto done;
    }
    const char *reason = required_str(r, root, "reason", DLOG_OVERRIDE_REASON_MAX, &status);
    if (!reason) goto done;
    const char *who = required_str(r, root, "approved_by", DLOG_OVERRIDE_WHO_MAX, &status);
    if (!who) goto done;
    const char *exp = required_str(r, root, "expires_at", 64, &status);
    if (!exp) goto done;
    int64_t expires_ms = 0, now = gate_now_ms();
    if (!gate_time_parse(exp, 0, &expires_ms)) {
        status = gate_reply_error(r, 422, "invalid_field",
                                  "expires_at: must be an RFC 3339 date-time with a time zone, "
                                  "like 2026-12-31T18:00:00Z");
        goto done;
    }
    if (expires_ms <= now) {
        status = gate_reply_error(r, 422, "invalid_field", "expires_at: is in the past");
        goto done;
    }
    char id[40];
    gate_new_id("ov_", id, sizeof id);
    dlog_override o = {.id = id,
                       .opp_id = opp,
                       .rule = rule,
                       .reason = reason,
                       .approved_by = who,
                       .expires_ms = expires_ms,
                       .created_ms = now};
    if (dlog_override_add(r->g->log, &o, err, sizeof err) != DG_OK ||
        dlog_override_get(r->g->log, id, now, &json) != DG_OK) {
        status = gate_reply_error(r, 503, "log_unavailable", "the override could not be recorded");
        goto done;
    }
    audit("override_granted", json);
    char loc[96];
    snprintf(loc, sizeof loc, "Location: " OV_PREFIX "%s\r\n", id);
    status = gate_reply_raw(r, 201, "application/json", json, strlen(json), loc);
done:
    free(json);
    cJSON_Delete(root);
    return status;
}

int gate_h_overrides_get(gate_req *r)
{
    char active[8], opp[DG_ID_MAX + 8], cursor[128];
    dlog_override_filter q = {.now_ms = gate_now_ms()};
    int n;
    if ((n = gate_query(r, "active", active, sizeof active)) != 0) {
        if (n > 0 && (strcmp(active, "1") == 0 || strcmp(active, "true") == 0))
            q.active_only = 1;
        else if (n < 0 || (strcmp(active, "0") != 0 && strcmp(active, "false") != 0))
            return gate_reply_error(r, 422, "invalid_field",
                                    "query parameter active must be 1 or 0");
    }
    if ((n = gate_query(r, "opportunity", opp, sizeof opp)) < 0)
        return gate_reply_error(r, 422, "invalid_field", "query parameter opportunity is too long");
    if (n > 0) q.opportunity = opp;
    int st = gate_page_params(r, &q.limit, &q.cursor, cursor, sizeof cursor);
    if (st != 0) return st;
    if (!r->g->log)
        return gate_reply_error(r, 503, "log_unavailable", "the decision log is not open");
    char *json = NULL, err[256];
    dg_err rc = dlog_override_query(r->g->log, &q, &json, err, sizeof err);
    return gate_reply_read(r, rc, json, "query parameter cursor is invalid", NULL);
}

/* The {id} of /v1/overrides/{id}, or NULL after answering 404. */
static const char *path_id(gate_req *r)
{
    const char *id = r->path + strlen(OV_PREFIX);
    size_t n = strlen(id);
    if (n == 0 || n > 64 || strchr(id, '/')) {
        gate_reply_error(r, 404, "not_found", "no such override");
        return NULL;
    }
    return id;
}

int gate_h_override_get(gate_req *r)
{
    const char *id = path_id(r);
    if (!id) return r->status;
    if (!r->g->log)
        return gate_reply_error(r, 503, "log_unavailable", "the decision log is not open");
    char *json = NULL;
    dg_err rc = dlog_override_get(r->g->log, id, gate_now_ms(), &json);
    return gate_reply_read(r, rc, json, NULL, "no such override");
}

int gate_h_override_delete(gate_req *r)
{
    const char *id = path_id(r);
    if (!id) return r->status;
    if (!r->g->log)
        return gate_reply_error(r, 503, "log_unavailable", "the decision log is not open");
    int64_t now = gate_now_ms();
    int already = 0;
    dg_err rc = dlog_override_revoke(r->g->log, id, now, &already);
    if (rc == DG_ENOTFOUND) return gate_reply_error(r, 404, "not_found", "no such override");
    char *json = NULL;
    if (rc != DG_OK || dlog_override_get(r->g->log, id, now, &json) != DG_OK)
        return gate_reply_error(r, 503, "log_unavailable", "the override could not be revoked");
    if (!already) audit("override_revoked", json);
    int st = gate_reply_raw(r, 200, "application/json", json, strlen(json), "");
    free(json);
    return st;
}
