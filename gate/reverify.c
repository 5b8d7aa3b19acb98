/* reverify.c — the background thread: re-verification of deals past the gate, retention.
 *
 * A re-check asks the real question again: would the gate still let this deal sit where it
 * is? The deal's state from the log becomes an event "into its current stage, from before
 * every stage" (with its clouds, amount, pipeline and the registration ids it passed with),
 * rules_lookup_clouds() names what to look up, conn_lookup() looks it up as for a live
 * decision, and rules_decide() judges it with the deal's live overrides. A block reason on
 * a cloud whose registration was verified when the deal passed (not accepted, not found,
 * missing, another deal's, unlinked where a link is required) is a lapse; a failed look-up
 * or a retry proves nothing either way. See reverify.h for what a lapse records.
 */
#include "gate/reverify.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "gate/dlog_overrides.h"
#include "gate/event.h"
#include "gate/timeparse.h"
#include "rules/rules.h"

#define REVERIFY_WAIT_MAX_MS 60000 /* the thread re-reads the config at least this often */
#define REVERIFY_BATCH_MAX 10000

struct gate_reverify {
    gate_ctx *g;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int stop;
};

static const char *const lapse_codes[] = {"registration_not_accepted", "registration_not_found",
                                          "registration_missing", "registration_mismatch",
                                          "registration_unlinked"};

static int is_lapse_code(const char *code)
{
    for (size_t i = 0; i < sizeof lapse_codes / sizeof lapse_codes[0]; i++)
        if (code && strcmp(code, lapse_codes[i]) == 0) return 1;
    return 0;
}

static void log_line(cJSON *o)
{
    char *line = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (line) {
        fprintf(stderr, "%s\n", line);
        free(line);
    }
}

/* ---- the event and facts of one deal ------------------------------------------------- */

/* Whether JSON registrations text lists cloud (any case) with "verified": true. */
static int was_verified(const cJSON *regs, const char *cloud)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, regs)
    {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "cloud");
        if (cJSON_IsString(c) && strcasecmp(c->valuestring, cloud) == 0 &&
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "verified")))
            return 1;
    }
    return 0;
}

/* Builds the event "deal d moves into its current stage" on config c. Clouds and pipelines
 * the config no longer knows are left out (the rules then judge what is left). */
static dg_err deal_event(const struct cfg *c, const dlog_reverify_deal *d, const cJSON *regs,
                         dg_event *ev)
{
    char err[256];
    memset(ev, 0, sizeof *ev);
    if (!(ev->opp_id = strdup(d->opp_id)) || !(ev->to_stage = strdup(d->stage))) return DG_ENOMEM;
    ev->name = dg_strdup0(d->name);
    ev->account = dg_strdup0(d->account);
    ev->owner = dg_strdup0(d->owner);
    if (d->pipeline && *d->pipeline && strcmp(d->pipeline, "default") != 0)
        ev->pipeline = dg_strdup0(d->pipeline);
    memcpy(ev->currency, c->server.currency, sizeof ev->currency);
    if (d->has_amount && d->currency && strlen(d->currency) == 3) {
        memcpy(ev->currency, d->currency, 4);
        ev->has_amount = 1;
        ev->amount = d->amount;
    }
    cJSON *clouds = d->clouds_json ? cJSON_Parse(d->clouds_json) : NULL;
    const cJSON *it;
    dg_err rc = DG_OK;
    cJSON_ArrayForEach(it, clouds)
    {
        if (!cJSON_IsString(it) || !cfg_cloud_find(c, it->valuestring)) continue;
        if ((rc = gate_event_add_cloud(c, ev, it->valuestring, "clouds", err, sizeof err)) != DG_OK)
            break;
    }
    cJSON_Delete(clouds);
    cJSON_ArrayForEach(it, regs)
    {
        if (rc != DG_OK) break;
        const cJSON *cl = cJSON_GetObjectItemCaseSensitive(it, "cloud");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (!cJSON_IsString(cl) || !cJSON_IsString(id) || !*id->valuestring ||
            !cfg_cloud_find(c, cl->valuestring))
            continue;
        int dup = 0;
        for (size_t i = 0; i < ev->nregs; i++)
            dup |= strcasecmp(ev->regs[i].cloud, cl->valuestring) == 0;
        if (dup) continue;
        rc = gate_event_add_reg(c, ev, cl->valuestring, id->valuestring, "registrations", err,
                                sizeof err);
    }
    return rc;
}

static void add_str_or_null(cJSON *o, const char *k, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

/* The registrations of a re-check, shaped like a decision's. */
static cJSON *regs_json(const dg_facts *f, const char *lapsed_cloud)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < f->nregs; i++) {
        const dg_reg_fact *r = &f->regs[i];
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddStringToObject(o, "cloud", r->cloud ? r->cloud : "");
        add_str_or_null(o, "id", r->id);
        add_str_or_null(o, "status", r->status);
        int verified = r->lookup == DG_LOOKUP_FOUND && r->source && strcmp(r->source, "none") &&
                       !(lapsed_cloud && r->cloud && strcmp(r->cloud, lapsed_cloud) == 0);
        cJSON_AddBoolToObject(o, "verified", verified);
        add_str_or_null(o, "source", r->source);
        add_str_or_null(o, "created_at", r->created_at);
        add_str_or_null(o, "origin", r->origin);
        cJSON_AddStringToObject(o, "lookup",
                                r->lookup == DG_LOOKUP_FOUND       ? "found"
                                : r->lookup == DG_LOOKUP_NOT_FOUND ? "not_found"
                                : r->lookup == DG_LOOKUP_FAILED    ? "failed"
                                                                   : "skipped");
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static char *print_item(const cJSON *j)
{
    return j ? cJSON_PrintUnformatted(j) : NULL;
}

/* Records the lapse of deal d: a decision of adapter "reverify" (the deal stays where it
 * is) and, with the CRM's write-back on, a reason-only write-back. Fills *lapse's
 * decision_id from id. Returns DG_OK or the log's error. */
static dg_err record_lapse(gate_ctx *g, const struct cfg *c, const dlog_reverify_deal *d,
                           const dg_event *ev, const dg_facts *f, const dg_reason *why,
                           int64_t now_ms, char id[40], int *wb_queued)
{
    dg_err rc = DG_ENOMEM;
    char ts[32], msg[700];
    char *dec_t = NULL, *warn_t = NULL, *regs_t = NULL, *payload = NULL;
    gate_new_id("dg_", id, 40);
    gate_time_format(now_ms, ts);
    snprintf(msg, sizeof msg, "Registration lapsed: %s", why->message ? why->message : "");
    cJSON *o = cJSON_CreateObject(), *p = NULL;
    if (!o) goto done;
    cJSON_AddStringToObject(o, "decision_id", id);
    cJSON_AddBoolToObject(o, "allowed", 1);
    cJSON_AddStringToObject(o, "outcome", "allow");
    cJSON_AddStringToObject(o, "mode", "enforce");
    cJSON_AddStringToObject(o, "message", msg);
    cJSON_AddItemToObject(o, "reasons", cJSON_CreateArray());
    cJSON *warns = cJSON_AddArrayToObject(o, "warnings");
    cJSON *w = cJSON_CreateObject();
    if (!warns || !w) {
        cJSON_Delete(w);
        goto done;
    }
    cJSON_AddStringToObject(w, "rule", why->rule ? why->rule : "");
    cJSON_AddStringToObject(w, "code", "registration_lapsed");
    add_str_or_null(w, "cloud", why->cloud);
    cJSON_AddStringToObject(w, "message", msg);
    cJSON_AddStringToObject(w, "lapse_code", why->code);
    cJSON_AddItemToArray(warns, w);
    cJSON_AddItemToObject(o, "registrations", regs_json(f, why->cloud));
    cJSON_AddNullToObject(o, "revert_to");
    cJSON_AddNullToObject(o, "revert_to_value");
    cJSON_AddStringToObject(o, "opportunity_id", d->opp_id);
    add_str_or_null(o, "pipeline", d->pipeline);
    add_str_or_null(o, "from_stage", d->stage);
    add_str_or_null(o, "to_stage", d->stage);
    add_str_or_null(o, "from_value", d->stage_raw);
    add_str_or_null(o, "to_value", d->stage_raw);
    cJSON_AddBoolToObject(o, "gated", 0);
    add_str_or_null(o, "owner", d->owner);
    add_str_or_null(o, "name", d->name);
    cJSON_AddStringToObject(o, "adapter", "reverify");
    cJSON_AddNullToObject(o, "event_id");
    cJSON_AddStringToObject(o, "time", ts);
    cJSON_AddStringToObject(o, "config_version", c->version);
    cJSON_AddNumberToObject(o, "latency_ms", 0);
    dec_t = print_item(o);
    warn_t = print_item(warns);
    regs_t = print_item(cJSON_GetObjectItem(o, "registrations"));
    if (!dec_t || !warn_t || !regs_t) goto done;
    char err[256];
    dlog_decision row = {
        .id = id,
        .time_ms = now_ms,
        .adapter = "reverify",
        .opp_id = d->opp_id,
        .pipeline = d->pipeline,
        .name = d->name,
        .account = d->account,
        .owner = d->owner,
        .has_amount = ev->has_amount,
        .amount = ev->amount,
        .currency = ev->has_amount ? ev->currency : NULL,
        .clouds_json = d->clouds_json,
        .from_stage = d->stage,
        .from_raw = d->stage_raw,
        .to_stage = d->stage,
        .to_raw = d->stage_raw,
        .outcome = "allow",
        .mode = "enforce",
        .message = msg,
        .reasons_json = "[]",
        .warnings_json = warn_t,
        .registrations_json = regs_t,
        .config_version = c->version,
        .decision_json = dec_t,
    };
    if ((rc = dlog_append(g->log, &row, err, sizeof err)) != DG_OK) goto done;

    /* the CRM's reason field, without moving the deal: the write-back worker reads the
     * deal first and writes only while it is still at this stage value */
    int crm_on = d->crm && ((strcmp(d->crm, "salesforce") == 0 && c->salesforce.writeback) ||
                            (strcmp(d->crm, "hubspot") == 0 && c->hubspot.writeback));
    if (crm_on && d->stage_raw && *d->stage_raw) {
        p = cJSON_CreateObject();
        if (p && cJSON_AddStringToObject(p, "opportunity_id", d->opp_id) &&
            cJSON_AddStringToObject(p, "stage_value", d->stage_raw) &&
            cJSON_AddStringToObject(p, "blocked_value", d->stage_raw) &&
            cJSON_AddStringToObject(p, "reason", msg) &&
            cJSON_AddStringToObject(p, "kind", "reason_only") && (payload = print_item(p)) &&
            dlog_wb_enqueue(g->log, id, d->crm, d->opp_id, payload, now_ms, err, sizeof err) ==
                DG_OK)
            *wb_queued = 1;
    }
    rc = DG_OK;
done:
    cJSON_Delete(o);
    cJSON_Delete(p);
    free(dec_t);
    free(warn_t);
    free(regs_t);
    free(payload);
    return rc;
}

/* Re-checks one deal. */
static dg_err recheck(gate_ctx *g, gate_rt *rt, const dlog_reverify_deal *d, int64_t now_ms,
                      gate_reverify_stats *st)
{
    const struct cfg *c = rt->cfg;
    dg_event ev = {0};
    dg_facts facts = {0};
    dg_decision dec = {0};
    const char **clouds = NULL;
    size_t nclouds = 0;
    char err[256];
    dlog_recheck what = DLOG_RECHECK_INCONCLUSIVE;
    const dg_reason *why = NULL;
    dg_err rc = DG_ENOMEM;
    cJSON *regs = d->registrations_json ? cJSON_Parse(d->registrations_json) : NULL;

    if (deal_event(c, d, regs, &ev) != DG_OK) goto note;
    if (rules_lookup_clouds(c, &ev, NULL, &clouds, &nclouds) != DG_OK) goto done;
    int any_verified = 0;
    for (size_t i = 0; i < nclouds; i++)
        any_verified |= was_verified(regs, clouds[i]);
    if (!any_verified) goto note; /* nothing it passed with is checked at this stage */
    if (dlog_overrides_live(g->log, d->opp_id, now_ms, &facts.overrides, &facts.noverrides) !=
        DG_OK) {
        rc = DG_EDB;
        goto done;
    }
    if (conn_lookup(rt->conns, &ev, clouds, nclouds, c->server.decision_budget_ms, &facts) != DG_OK)
        goto done;
    if (rules_decide(c, &ev, &facts, now_ms / 1000, &dec, err, sizeof err) != DG_OK) goto note;
    if (dec.outcome == DG_OUTCOME_BLOCK) {
        for (size_t i = 0; i < dec.nreasons && !why; i++)
            if (is_lapse_code(dec.reasons[i].code) && dec.reasons[i].cloud &&
                was_verified(regs, dec.reasons[i].cloud))
                why = &dec.reasons[i];
        if (why) what = DLOG_RECHECK_LAPSED;
    } else if (dec.outcome == DG_OUTCOME_ALLOW) {
        what = DLOG_RECHECK_OK;
        for (size_t i = 0; i < dec.nwarnings; i++)
            if (dec.warnings[i].code && strcmp(dec.warnings[i].code, "lookup_failed_allowed") == 0)
                what = DLOG_RECHECK_INCONCLUSIVE;
    }
note:;
    dlog_lapse lapse = {0};
    char id[40] = "";
    int wb = 0;
    if (what == DLOG_RECHECK_LAPSED && !d->lapsed) {
        if ((rc = record_lapse(g, c, d, &ev, &facts, why, now_ms, id, &wb)) != DG_OK) goto done;
        const dg_reg_fact *f = NULL;
        for (size_t i = 0; i < facts.nregs; i++)
            if (facts.regs[i].cloud && strcmp(facts.regs[i].cloud, why->cloud) == 0)
                f = &facts.regs[i];
        lapse = (dlog_lapse){.cloud = why->cloud,
                             .reg_id = f ? f->id : NULL,
                             .status = f ? f->status : NULL,
                             .code = why->code,
                             .message = why->message,
                             .decision_id = id};
    } else if (what == DLOG_RECHECK_LAPSED) {
        lapse = (dlog_lapse){.cloud = why->cloud, .code = why->code, .message = why->message};
    }
    int recorded = 0;
    if ((rc = dlog_reverify_note(g->log, d->opp_id, now_ms, what, &lapse, &recorded)) != DG_OK)
        goto done;
    st->checked++;
    if (what == DLOG_RECHECK_INCONCLUSIVE) st->inconclusive++;
    if (what == DLOG_RECHECK_OK && d->lapsed) st->restored++;
    if (recorded) {
        st->lapsed++;
        st->writebacks += (unsigned)wb;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "event", "registration_lapsed");
        cJSON_AddStringToObject(o, "opportunity_id", d->opp_id);
        cJSON_AddStringToObject(o, "cloud", why->cloud);
        cJSON_AddStringToObject(o, "code", why->code);
        cJSON_AddStringToObject(o, "decision_id", id);
        cJSON_AddBoolToObject(o, "writeback", wb);
        log_line(o);
    }
    rc = DG_OK;
done:
    cJSON_Delete(regs);
    free(clouds);
    dg_decision_free(&dec);
    dg_facts_free(&facts);
    dg_event_free(&ev);
    return rc;
}

dg_err gate_reverify_run(gate_ctx *g, gate_rt *rt, int64_t now_ms, const atomic_int *stop,
                         gate_reverify_stats *stats)
{
    gate_reverify_stats st = {0};
    if (stats) *stats = st;
    if (!g->log || !rt) return DG_OK;
    const cfg_reverify *rv = &rt->cfg->reverify;
    size_t max = rv->batch > 0 && rv->batch <= REVERIFY_BATCH_MAX ? (size_t)rv->batch : 100;
    dlog_reverify_deal *deals = calloc(max, sizeof *deals);
    if (!deals) return DG_ENOMEM;
    size_t n = 0;
    dg_err rc =
        dlog_reverify_candidates(g->log, now_ms - (int64_t)rv->interval_s * 1000, max, deals, &n);
    for (size_t i = 0; rc == DG_OK && i < n; i++) {
        if (stop && atomic_load(stop)) break;
        if (i > 0 && rv->pause_ms > 0) {
            struct timespec ts = {rv->pause_ms / 1000, (long)(rv->pause_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        rc = recheck(g, rt, &deals[i], i == 0 ? now_ms : gate_now_ms(), &st);
    }
    for (size_t i = 0; i < n; i++)
        dlog_reverify_deal_free(&deals[i]);
    free(deals);
    if (stats) *stats = st;
    return rc;
}

dg_err gate_retention_run(gate_ctx *g, const struct cfg *c, int64_t now_ms, uint64_t *deleted,
                          char *err, size_t errlen)
{
    if (deleted) *deleted = 0;
    if (!g->log || c->server.retain_days <= 0) return DG_OK;
    int64_t before = now_ms - (int64_t)c->server.retain_days * 86400 * 1000;
    return dlog_prune(g->log, before, 0, deleted, err, errlen);
}

/* ---- the thread ---------------------------------------------------------------------- */

/* Sleeps until ms from now (or a stop); returns 1 when stopping. */
static int wait_ms(gate_reverify *r, int64_t ms)
{
    pthread_mutex_lock(&r->mu);
    if (!atomic_load(&r->stop) && ms > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)(ms / 1000);
        ts.tv_nsec += (long)(ms % 1000) * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
    }
    pthread_mutex_unlock(&r->mu);
    return atomic_load(&r->stop);
}

static void *thread_main(void *arg)
{
    gate_reverify *r = arg;
    pthread_setname_np(pthread_self(), "dg-reverify"); /* top -H, bench/gate.sh */
    int64_t next_prune = gate_now_ms(), next_run = 0;
    for (;;) {
        gate_rt *rt = gate_rt_acquire(r->g);
        int64_t now = gate_now_ms();
        if (rt && now >= next_prune) {
            uint64_t deleted = 0;
            char err[256] = "";
            dg_err rc = gate_retention_run(r->g, rt->cfg, now, &deleted, err, sizeof err);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "event", "retention");
            cJSON_AddNumberToObject(o, "retain_days", rt->cfg->server.retain_days);
            cJSON_AddNumberToObject(o, "deleted", (double)deleted);
            if (rc != DG_OK) cJSON_AddStringToObject(o, "error", err);
            if (rt->cfg->server.retain_days > 0)
                log_line(o);
            else
                cJSON_Delete(o);
            next_prune = now + REVERIFY_PRUNE_EVERY_MS;
        }
        int64_t interval = rt ? (int64_t)rt->cfg->reverify.interval_s * 1000 : 1000;
        if (rt && rt->cfg->reverify.enabled && now >= next_run) {
            gate_reverify_stats st;
            dg_err rc = gate_reverify_run(r->g, rt, now, &r->stop, &st);
            if (st.checked > 0 || rc != DG_OK) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "event", "reverify_run");
                cJSON_AddNumberToObject(o, "checked", st.checked);
                cJSON_AddNumberToObject(o, "lapsed", st.lapsed);
                cJSON_AddNumberToObject(o, "restored", st.restored);
                cJSON_AddNumberToObject(o, "inconclusive", st.inconclusive);
                cJSON_AddNumberToObject(o, "writebacks", st.writebacks);
                if (rc != DG_OK) cJSON_AddStringToObject(o, "error", dg_err_name(rc));
                log_line(o);
            }
            next_run = now + interval;
        }
        gate_rt_release(r->g, rt);
        now = gate_now_ms();
        int64_t wait = (next_run < next_prune ? next_run : next_prune) - now;
        if (wait > REVERIFY_WAIT_MAX_MS) wait = REVERIFY_WAIT_MAX_MS;
        if (wait < 10) wait = 10;
        if (wait_ms(r, wait)) break;
    }
    return NULL;
}

dg_err gate_reverify_start(gate_ctx *g, gate_reverify **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!g->log) return DG_OK;
    gate_reverify *r = calloc(1, sizeof *r);
    if (!r) return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    r->g = g;
    atomic_init(&r->stop, 0);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->thread, NULL, thread_main, r) != 0) {
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        free(r);
        return dg_errf(err, errlen, DG_EINTERNAL, "cannot start the re-verification thread");
    }
    *out = r;
    return DG_OK;
}

void gate_reverify_stop(gate_reverify *r)
{
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    atomic_store(&r->stop, 1);
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
