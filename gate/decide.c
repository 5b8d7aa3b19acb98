/* decide.c — the request pipeline: idempotency, facts, rules, durable log, answer. */
#include "gate/decide.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gate/dlog_overrides.h"
#include "gate/metrics.h"
#include "gate/writeback.h"
#include "rules/rules.h"

static void result_error(gate_result *res, int status, const char *code, const char *msg)
{
    res->status = status;
    res->err_code = code;
    snprintf(res->message, sizeof res->message, "%s", msg);
}

static cJSON *reasons_json(const dg_reason *r, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "rule", r[i].rule ? r[i].rule : "");
        cJSON_AddStringToObject(o, "code", r[i].code ? r[i].code : "");
        if (r[i].cloud)
            cJSON_AddStringToObject(o, "cloud", r[i].cloud);
        else
            cJSON_AddNullToObject(o, "cloud");
        cJSON_AddStringToObject(o, "message", r[i].message ? r[i].message : "");
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

/* 1 if the decision did not rest on this cloud's registration being verified: a reason
 * names the cloud, or it passed only by a failure policy or report mode. An unlinked
 * registration (warning registration_unlinked) still counts as verified. */
static int cloud_unverified(const dg_decision *d, const char *cloud)
{
    for (size_t i = 0; i < d->nreasons; i++)
        if (d->reasons[i].cloud && strcmp(d->reasons[i].cloud, cloud) == 0) return 1;
    for (size_t i = 0; i < d->nwarnings; i++) {
        const dg_reason *w = &d->warnings[i];
        if (w->cloud && strcmp(w->cloud, cloud) == 0 && w->code &&
            (strcmp(w->code, "report_only") == 0 || strcmp(w->code, "lookup_failed_allowed") == 0))
            return 1;
    }
    return 0;
}

static void add_str_or_null(cJSON *o, const char *k, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

static cJSON *registrations_json(const dg_decision *d, const dg_facts *f)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < f->nregs; i++) {
        const dg_reg_fact *r = &f->regs[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "cloud", r->cloud ? r->cloud : "");
        add_str_or_null(o, "id", r->id);
        add_str_or_null(o, "status", r->status);
        int verified = r->lookup == DG_LOOKUP_FOUND && r->source && strcmp(r->source, "none") &&
                       !cloud_unverified(d, r->cloud ? r->cloud : "");
        cJSON_AddBoolToObject(o, "verified", verified);
        add_str_or_null(o, "source", r->source);
        add_str_or_null(o, "created_at", r->created_at);
        add_str_or_null(o, "origin", r->origin);
        const char *lk = r->lookup == DG_LOOKUP_FOUND       ? "found"
                         : r->lookup == DG_LOOKUP_NOT_FOUND ? "not_found"
                         : r->lookup == DG_LOOKUP_FAILED    ? "failed"
                                                            : "skipped";
        cJSON_AddStringToObject(o, "lookup", lk);
        if (r->lookup == DG_LOOKUP_FAILED && r->error)
            cJSON_AddStringToObject(o, "error", r->error);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static void rfc3339(int64_t ms, char *buf, size_t n)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static cJSON *decision_json(const char *id, int64_t now_ms, const struct cfg *c, const dg_event *ev,
                            const dg_decision *d, const dg_facts *f, const char *adapter)
{
    char ts[32];
    rfc3339(now_ms, ts, sizeof ts);
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "decision_id", id);
    cJSON_AddBoolToObject(o, "allowed", d->allowed);
    cJSON_AddStringToObject(o, "outcome", rules_outcome_name(d->outcome));
    cJSON_AddStringToObject(o, "mode", d->mode ? d->mode : "enforce");
    cJSON_AddStringToObject(o, "message", d->message ? d->message : "");
    cJSON_AddItemToObject(o, "reasons", reasons_json(d->reasons, d->nreasons));
    cJSON_AddItemToObject(o, "warnings", reasons_json(d->warnings, d->nwarnings));
    cJSON_AddItemToObject(o, "registrations", registrations_json(d, f));
    add_str_or_null(o, "revert_to", d->revert_to);
    add_str_or_null(o, "revert_to_value", d->revert_to ? d->revert_to_raw : NULL);
    cJSON_AddStringToObject(o, "opportunity_id", ev->opp_id);
    add_str_or_null(o, "pipeline", d->pipeline);
    add_str_or_null(o, "from_stage", d->from_stage);
    add_str_or_null(o, "to_stage", d->to_stage);
    add_str_or_null(o, "from_value", ev->from_stage);
    add_str_or_null(o, "to_value", ev->to_stage);
    cJSON_AddBoolToObject(o, "gated", d->gated);
    add_str_or_null(o, "owner", ev->owner);
    add_str_or_null(o, "name", ev->name);
    cJSON_AddStringToObject(o, "adapter", adapter);
    add_str_or_null(o, "event_id", ev->event_id);
    cJSON_AddStringToObject(o, "time", ts);
    cJSON_AddStringToObject(o, "config_version", c->version);
    return o;
}

/* Adds "override_id" to each `override` warning: the override rules_decide applied. */
static void tag_overrides(cJSON *decision, const dg_facts *f, int64_t now)
{
    cJSON *w;
    cJSON_ArrayForEach(w, cJSON_GetObjectItem(decision, "warnings"))
    {
        const cJSON *code = cJSON_GetObjectItem(w, "code"), *rule = cJSON_GetObjectItem(w, "rule");
        if (!cJSON_IsString(code) || strcmp(code->valuestring, "override") != 0 ||
            !cJSON_IsString(rule))
            continue;
        const dg_override *o = rules_override_find(f, rule->valuestring, now);
        if (o && o->id) cJSON_AddStringToObject(w, "override_id", o->id);
    }
}

static char *print_json(const cJSON *j)
{
    return j ? cJSON_PrintUnformatted(j) : NULL;
}

/* Looks for a logged decision for this event; 1 when res is filled (replay or conflict). */
static int idempotent_replay(gate_ctx *g, const dg_event *ev, const char *adapter,
                             const char *body_hash, int dedupe_window_s, gate_result *res)
{
    char *json = NULL, *hash = NULL;
    dg_err rc;
    if (!g->log) return 0;
    if (ev->event_id) {
        rc = dlog_find_event(g->log, adapter, ev->event_id, &json, &hash);
        if (rc == DG_OK && hash && strcmp(hash, body_hash) != 0) {
            free(json);
            free(hash);
            result_error(res, 409, "idempotency_conflict",
                         "this event id was already used with a different body");
            return 1;
        }
        free(hash);
    } else if (dedupe_window_s > 0) {
        rc = dlog_find_recent_body(g->log, ev->opp_id, body_hash,
                                   gate_now_ms() - (int64_t)dedupe_window_s * 1000, &json);
    } else {
        return 0;
    }
    if (rc == DG_OK && json) {
        res->decision = cJSON_Parse(json);
        free(json);
        if (res->decision) {
            res->status = 200;
            res->replay = 1;
            return 1;
        }
    }
    free(json);
    if (rc != DG_OK && rc != DG_ENOTFOUND) {
        result_error(res, 503, "log_unavailable", "the decision log cannot be read");
        res->retry_after_s = 5;
        return 1;
    }
    return 0;
}

void gate_decide(gate_ctx *g, gate_rt *rt, const dg_event *ev, const char *adapter,
                 const char *body_hash, int dedupe_window_s, gate_result *res)
{
    const struct cfg *c = rt->cfg;
    int64_t t0 = gate_now_ms();
    struct timespec m0, m1;
    clock_gettime(CLOCK_MONOTONIC, &m0);
    dg_facts facts = {0};
    dg_decision d = {0};
    const char **clouds = NULL;
    size_t nclouds = 0;
    char *dec_text = NULL, *reasons_t = NULL, *warnings_t = NULL, *regs_t = NULL, *clouds_t = NULL;
    char *wb_payload = NULL;
    char err[256] = "";

    memset(res, 0, sizeof *res);
    if (idempotent_replay(g, ev, adapter, body_hash, dedupe_window_s, res)) return;

    if (g->log) {
        dg_err rc = dlog_deal_state(g->log, ev->opp_id, &facts.last_stage, &facts.last_stage_raw,
                                    &facts.retry_since);
        if (rc != DG_OK && rc != DG_ENOTFOUND) {
            result_error(res, 503, "log_unavailable", "the decision log cannot be read");
            res->retry_after_s = 5;
            goto done;
        }
        /* deal-desk overrides live now; the rules judge expiry by the same `now` */
        if (dlog_overrides_live(g->log, ev->opp_id, t0, &facts.overrides, &facts.noverrides) !=
            DG_OK) {
            result_error(res, 503, "log_unavailable", "the decision log cannot be read");
            res->retry_after_s = 5;
            goto done;
        }
    }
    if (rules_lookup_clouds(c, ev, facts.last_stage, &clouds, &nclouds) != DG_OK) {
        result_error(res, 503, "overloaded", "out of memory");
        goto done;
    }
    if (nclouds > 0 && conn_lookup(rt->conns, ev, clouds, nclouds, c->server.decision_budget_ms,
                                   &facts) != DG_OK) {
        result_error(res, 503, "overloaded", "out of memory");
        goto done;
    }
    dg_err rc = rules_decide(c, ev, &facts, t0 / 1000, &d, err, sizeof err);
    if (rc == DG_EINVAL) {
        result_error(res, 422, "invalid_field", err);
        goto done;
    } else if (rc != DG_OK) {
        result_error(res, 503, "overloaded", "out of memory");
        goto done;
    }
    if (d.outcome == DG_OUTCOME_RETRY) {
        if (g->log) dlog_note_retry(g->log, ev->opp_id, t0 / 1000);
        result_error(res, 503, "lookup_retry",
                     d.message && *d.message ? d.message
                                             : "the co-sell system could not be reached; retry");
        res->retry_after_s = d.retry_after_s > 0 ? d.retry_after_s : 30;
        goto done;
    }
    /* The CRM value to revert to: the raw value the deal last arrived with for that stage. */
    if (g->log && d.revert_to &&
        !(ev->from_stage && d.from_stage && strcmp(d.from_stage, d.revert_to) == 0)) {
        char *raw = NULL;
        if (dlog_stage_raw(g->log, ev->opp_id, d.revert_to, &raw) == DG_OK && raw) {
            free(d.revert_to_raw);
            d.revert_to_raw = raw;
        }
    }
    char id[40];
    gate_new_id("dg_", id, sizeof id);
    res->decision = decision_json(id, t0, c, ev, &d, &facts, adapter);
    if (!res->decision) {
        result_error(res, 503, "overloaded", "out of memory");
        goto done;
    }
    tag_overrides(res->decision, &facts, t0 / 1000);
    clock_gettime(CLOCK_MONOTONIC, &m1);
    int64_t latency_us =
        (int64_t)(m1.tv_sec - m0.tv_sec) * 1000000 + (m1.tv_nsec - m0.tv_nsec) / 1000;
    cJSON_AddNumberToObject(res->decision, "latency_ms", (double)(latency_us / 1000));
    if (g->log) {
        dec_text = print_json(res->decision);
        reasons_t = print_json(cJSON_GetObjectItem(res->decision, "reasons"));
        warnings_t = print_json(cJSON_GetObjectItem(res->decision, "warnings"));
        regs_t = print_json(cJSON_GetObjectItem(res->decision, "registrations"));
        cJSON *cl = cJSON_CreateArray();
        for (size_t i = 0; cl && i < ev->nclouds; i++)
            cJSON_AddItemToArray(cl, cJSON_CreateString(ev->clouds[i]));
        clouds_t = print_json(cl);
        cJSON_Delete(cl);
        /* the CRM write-back this block calls for is queued with the decision, atomically */
        dg_err wrc = gate_writeback_payload(c, adapter, res->decision, &wb_payload);
        if (!dec_text || !reasons_t || !warnings_t || !regs_t || !clouds_t || wrc != DG_OK) {
            cJSON_Delete(res->decision);
            res->decision = NULL;
            result_error(res, 503, "overloaded", "out of memory");
            goto done;
        }
        const cfg_pipeline *p = cfg_pipeline_find(c, d.pipeline);
        int won = 0, lost = 0;
        for (size_t i = 0; p && d.to_stage && i < p->won.n; i++)
            won |= strcmp(p->won.v[i], d.to_stage) == 0;
        for (size_t i = 0; p && d.to_stage && i < p->lost.n; i++)
            lost |= strcmp(p->lost.v[i], d.to_stage) == 0;
        dlog_decision row = {
            .id = id,
            .time_ms = t0,
            .adapter = adapter,
            .event_id = ev->event_id,
            .body_hash = body_hash,
            .opp_id = ev->opp_id,
            .pipeline = d.pipeline,
            .name = ev->name,
            .account = ev->account,
            .owner = ev->owner,
            .has_amount = ev->has_amount,
            .amount = ev->amount,
            .currency = ev->currency,
            .clouds_json = clouds_t,
            .from_stage = d.from_stage,
            .from_raw = ev->from_stage,
            .to_stage = d.to_stage,
            .to_raw = ev->to_stage,
            .outcome = rules_outcome_name(d.outcome),
            .mode = d.mode,
            .message = d.message,
            .reasons_json = reasons_t,
            .warnings_json = warnings_t,
            .registrations_json = regs_t,
            .config_version = c->version,
            .latency_us = latency_us,
            .gated = d.gated,
            .won = won,
            .lost = lost,
            .decision_json = dec_text,
            .writeback_crm = wb_payload ? adapter : NULL,
            .writeback_payload_json = wb_payload,
        };
        rc = dlog_append(g->log, &row, err, sizeof err);
        if (rc == DG_EEXISTS) {
            /* A concurrent request with the same event id won the race: answer its decision. */
            cJSON_Delete(res->decision);
            res->decision = NULL;
            if (!idempotent_replay(g, ev, adapter, body_hash, 0, res))
                result_error(res, 503, "log_unavailable", "the decision log cannot be read");
            goto done;
        }
        if (rc != DG_OK) {
            cJSON_Delete(res->decision);
            res->decision = NULL;
            fprintf(stderr, "{\"event\":\"log_write_failed\",\"error\":\"%s\"}\n", dg_err_name(rc));
            result_error(res, 503, "log_unavailable",
                         "the decision could not be recorded; nothing was decided, retry");
            res->retry_after_s = 5;
            goto done;
        }
        res->text = dec_text; /* the decision as logged, for the answer */
        dec_text = NULL;
    }
    res->status = 200;
done:
    gate_observe_decision(g, res, &d, &facts, ev->opp_id); /* metrics, upstream-failure log */
    free(dec_text);
    free(reasons_t);
    free(warnings_t);
    free(regs_t);
    free(clouds_t);
    free(wb_payload);
    free(clouds);
    dg_facts_free(&facts);
    dg_decision_free(&d);
}

void gate_result_free(gate_result *res)
{
    cJSON_Delete(res->decision);
    res->decision = NULL;
    free(res->text);
    res->text = NULL;
}
