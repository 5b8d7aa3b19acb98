/* decide.c — the request pipeline: idempotency, facts, rules, durable log, answer. */
#include "gate/decide.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/buf.h"
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

/* Appends reasons or warnings as a JSON array. An `override` warning names the override
 * rules_decide applied ("override_id"), judged at `now` as the rules judged it. */
static void put_reasons(dg_buf *b, const dg_reason *r, size_t n, const dg_facts *f, int64_t now)
{
    dg_buf_add(b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        dg_buf_str(b, i ? ",{\"rule\":" : "{\"rule\":");
        dg_buf_json_str(b, r[i].rule ? r[i].rule : "");
        dg_buf_str(b, ",\"code\":");
        dg_buf_json_str(b, r[i].code ? r[i].code : "");
        dg_buf_str(b, ",\"cloud\":");
        dg_buf_json_str(b, r[i].cloud);
        dg_buf_str(b, ",\"message\":");
        dg_buf_json_str(b, r[i].message ? r[i].message : "");
        if (f && r[i].code && r[i].rule && strcmp(r[i].code, "override") == 0) {
            const dg_override *o = rules_override_find(f, r[i].rule, now);
            if (o && o->id) {
                dg_buf_str(b, ",\"override_id\":");
                dg_buf_json_str(b, o->id);
            }
        }
        dg_buf_add(b, "}", 1);
    }
    dg_buf_add(b, "]", 1);
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

static void put_registrations(dg_buf *b, const dg_decision *d, const dg_facts *f)
{
    dg_buf_add(b, "[", 1);
    for (size_t i = 0; i < f->nregs; i++) {
        const dg_reg_fact *r = &f->regs[i];
        dg_buf_str(b, i ? ",{\"cloud\":" : "{\"cloud\":");
        dg_buf_json_str(b, r->cloud ? r->cloud : "");
        dg_buf_str(b, ",\"id\":");
        dg_buf_json_str(b, r->id);
        dg_buf_str(b, ",\"status\":");
        dg_buf_json_str(b, r->status);
        int verified = r->lookup == DG_LOOKUP_FOUND && r->source && strcmp(r->source, "none") &&
                       !cloud_unverified(d, r->cloud ? r->cloud : "");
        dg_buf_str(b,
                   verified ? ",\"verified\":true,\"source\":" : ",\"verified\":false,\"source\":");
        dg_buf_json_str(b, r->source);
        dg_buf_str(b, ",\"created_at\":");
        dg_buf_json_str(b, r->created_at);
        dg_buf_str(b, ",\"origin\":");
        dg_buf_json_str(b, r->origin);
        const char *lk = r->lookup == DG_LOOKUP_FOUND       ? "found"
                         : r->lookup == DG_LOOKUP_NOT_FOUND ? "not_found"
                         : r->lookup == DG_LOOKUP_FAILED    ? "failed"
                                                            : "skipped";
        dg_buf_str(b, ",\"lookup\":");
        dg_buf_json_str(b, lk);
        if (r->lookup == DG_LOOKUP_FAILED && r->error) {
            dg_buf_str(b, ",\"error\":");
            dg_buf_json_str(b, r->error);
        }
        dg_buf_add(b, "}", 1);
    }
    dg_buf_add(b, "]", 1);
}

static void rfc3339(int64_t ms, char *buf, size_t n)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A string member of a JSON object: its key, and its value (NULL for null). */
typedef struct {
    const char *key, *value;
} json_field;

/* Appends `,"key":value` for each field. */
static void put_fields(dg_buf *b, const json_field *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dg_buf_str(b, ",\"");
        dg_buf_str(b, f[i].key);
        dg_buf_str(b, "\":");
        dg_buf_json_str(b, f[i].value);
    }
}

/* Where the arrays the log keeps in columns of their own lie in a decision's text. */
typedef struct {
    size_t reasons[2], warnings[2], regs[2]; /* [start, end) */
} decision_spans;

/* Writes the decision as JSON text into b (the answer and the log's decision_json), once:
 * the log's reasons, warnings and registrations columns are spans of the same text. */
static void put_decision(dg_buf *b, decision_spans *sp, const char *id, int64_t now_ms,
                         const struct cfg *c, const dg_event *ev, const dg_decision *d,
                         const dg_facts *f, const char *adapter, int64_t latency_ms)
{
    char ts[32], num[48];
    rfc3339(now_ms, ts, sizeof ts);
    dg_buf_str(b, "{\"decision_id\":");
    dg_buf_json_str(b, id);
    dg_buf_str(b,
               d->allowed ? ",\"allowed\":true,\"outcome\":" : ",\"allowed\":false,\"outcome\":");
    dg_buf_json_str(b, rules_outcome_name(d->outcome));
    dg_buf_str(b, ",\"mode\":");
    dg_buf_json_str(b, d->mode ? d->mode : "enforce");
    dg_buf_str(b, ",\"message\":");
    dg_buf_json_str(b, d->message ? d->message : "");
    dg_buf_str(b, ",\"reasons\":");
    sp->reasons[0] = b->len;
    put_reasons(b, d->reasons, d->nreasons, NULL, 0);
    sp->reasons[1] = b->len;
    dg_buf_str(b, ",\"warnings\":");
    sp->warnings[0] = b->len;
    put_reasons(b, d->warnings, d->nwarnings, f, now_ms / 1000);
    sp->warnings[1] = b->len;
    dg_buf_str(b, ",\"registrations\":");
    sp->regs[0] = b->len;
    put_registrations(b, d, f);
    sp->regs[1] = b->len;
    const json_field before[] = {
        {"revert_to", d->revert_to},    {"revert_to_value", d->revert_to ? d->revert_to_raw : NULL},
        {"opportunity_id", ev->opp_id}, {"pipeline", d->pipeline},
        {"from_stage", d->from_stage},  {"to_stage", d->to_stage},
        {"from_value", ev->from_stage}, {"to_value", ev->to_stage},
    };
    const json_field after[] = {
        {"owner", ev->owner},       {"name", ev->name}, {"adapter", adapter},
        {"event_id", ev->event_id}, {"time", ts},       {"config_version", c->version},
    };
    put_fields(b, before, sizeof before / sizeof *before);
    dg_buf_str(b, d->gated ? ",\"gated\":true" : ",\"gated\":false");
    put_fields(b, after, sizeof after / sizeof *after);
    snprintf(num, sizeof num, ",\"latency_ms\":%lld}", (long long)latency_ms);
    dg_buf_str(b, num);
}

/* A copy of b's text in [span[0], span[1]), or NULL (out of memory). */
static char *span_dup(const dg_buf *b, const size_t span[2])
{
    return strndup(b->p + span[0], span[1] - span[0]);
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
    if (rc == DG_OK && json) { /* answered as logged, byte for byte */
        res->text = json;
        res->status = 200;
        res->replay = 1;
        return 1;
    }
    free(json);
    if (rc != DG_OK && rc != DG_ENOTFOUND) {
        result_error(res, 503, "log_unavailable", "the decision log cannot be read");
        res->retry_after_s = 5;
        return 1;
    }
    return 0;
}

/* Reads the deal's state from the log into f. Returns 1, or 0 with res filled (503). */
static int read_deal_state(gate_ctx *g, const dg_event *ev, dg_facts *f, gate_result *res)
{
    dg_err rc =
        dlog_deal_state(g->log, ev->opp_id, &f->last_stage, &f->last_stage_raw, &f->retry_since);
    if (rc == DG_OK || rc == DG_ENOTFOUND) return 1;
    result_error(res, 503, "log_unavailable", "the decision log cannot be read");
    res->retry_after_s = 5;
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
    char *reasons_t = NULL, *warnings_t = NULL, *regs_t = NULL, *clouds_t = NULL;
    char *wb_payload = NULL;
    char err[256] = "";

    memset(res, 0, sizeof *res);
    if (idempotent_replay(g, ev, adapter, body_hash, dedupe_window_s, res)) return;

    /* the deal's state in the log, read only when the rules need it: its last stage when the
     * event does not say where the move comes from, its retry start when a look-up failed
     * under a retry policy (below) */
    int have_state = 0;
    if (g->log && rules_needs_last_stage(c, ev)) {
        if (!read_deal_state(g, ev, &facts, res)) goto done;
        have_state = 1;
    }
    if (g->log) {
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
    if (g->log && !have_state && rules_needs_retry_since(c, &facts, clouds, nclouds) &&
        !read_deal_state(g, ev, &facts, res))
        goto done;
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
    gate_new_id("dg_", res->id, sizeof res->id);
    clock_gettime(CLOCK_MONOTONIC, &m1);
    int64_t latency_us =
        (int64_t)(m1.tv_sec - m0.tv_sec) * 1000000 + (m1.tv_nsec - m0.tv_nsec) / 1000;
    dg_buf text;
    decision_spans sp;
    dg_buf_init(&text, 0);
    dg_buf_reserve(&text, 2048); /* a decision's usual size: one allocation */
    put_decision(&text, &sp, res->id, t0, c, ev, &d, &facts, adapter, latency_us / 1000);
    if (dg_buf_failed(&text)) {
        dg_buf_free(&text);
        result_error(res, 503, "overloaded", "out of memory");
        goto done;
    }
    res->text = text.p;
    if (g->log) {
        reasons_t = span_dup(&text, sp.reasons);
        warnings_t = span_dup(&text, sp.warnings);
        regs_t = span_dup(&text, sp.regs);
        dg_buf cl;
        dg_buf_init(&cl, 0);
        dg_buf_add(&cl, "[", 1);
        for (size_t i = 0; i < ev->nclouds; i++) {
            if (i) dg_buf_add(&cl, ",", 1);
            dg_buf_json_str(&cl, ev->clouds[i]);
        }
        dg_buf_add(&cl, "]", 1);
        clouds_t = dg_buf_failed(&cl) ? NULL : cl.p;
        if (!clouds_t) dg_buf_free(&cl);
        /* the CRM write-back this block calls for is queued with the decision, atomically */
        dg_err wrc = DG_OK;
        if (d.outcome == DG_OUTCOME_BLOCK && gate_writeback_enabled(c, adapter)) {
            const cJSON *tree = gate_result_tree(res);
            wrc = tree ? gate_writeback_payload(c, adapter, tree, &wb_payload) : DG_ENOMEM;
        }
        if (!reasons_t || !warnings_t || !regs_t || !clouds_t || wrc != DG_OK) {
            gate_result_free(res);
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
            .id = res->id,
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
            .decision_json = res->text,
            .writeback_crm = wb_payload ? adapter : NULL,
            .writeback_payload_json = wb_payload,
        };
        rc = dlog_append(g->log, &row, err, sizeof err);
        if (rc == DG_EEXISTS) {
            /* A concurrent request with the same event id won the race: answer its decision. */
            gate_result_free(res);
            if (!idempotent_replay(g, ev, adapter, body_hash, 0, res))
                result_error(res, 503, "log_unavailable", "the decision log cannot be read");
            goto done;
        }
        if (rc != DG_OK) {
            gate_result_free(res);
            fprintf(stderr, "{\"event\":\"log_write_failed\",\"error\":\"%s\"}\n", dg_err_name(rc));
            result_error(res, 503, "log_unavailable",
                         "the decision could not be recorded; nothing was decided, retry");
            res->retry_after_s = 5;
            goto done;
        }
    }
    res->status = 200;
done:
    gate_observe_decision(g, res, &d, &facts, ev->opp_id); /* metrics, upstream-failure log */
    free(reasons_t);
    free(warnings_t);
    free(regs_t);
    free(clouds_t);
    free(wb_payload);
    free(clouds);
    dg_facts_free(&facts);
    dg_decision_free(&d);
}

cJSON *gate_result_tree(gate_result *res)
{
    if (res->decision == NULL && res->text != NULL) res->decision = cJSON_Parse(res->text);
    return res->decision;
}

void gate_result_free(gate_result *res)
{
    cJSON_Delete(res->decision);
    res->decision = NULL;
    free(res->text);
    res->text = NULL;
}
