/* writeback.c — the write-back worker and POST /v1/decisions/{id}/writeback (see writeback.h).
 *
 * One thread polls the queue in the decision log every WB_POLL_MS (a due job is an indexed
 * look-up on a partial index, so polling costs nothing measurable), claims due jobs (which
 * leases them), and works them one by one on the current config snapshot. CRM clients are
 * opened lazily and reopened when the snapshot changes (SIGHUP), so a Salesforce token is
 * reused across jobs. Every outcome is one JSON line on stderr; none carries a secret.
 */
#include "gate/writeback.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/crm.h"
#include "gate/routes.h"

#define WB_CLAIM_MAX 1 /* one job per claim: the lease covers one job's calls */
#define WB_ERRLEN 400
#define WB_NCRM 2

struct gate_writeback {
    gate_ctx *g;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;          /* guarded by mu */
    atomic_int cancel; /* aborts an in-flight CRM call on stop */
    /* CRM clients for the snapshot `version` (worker thread only) */
    char version[sizeof(((struct cfg *)0)->version)];
    const crm_ops *ops[WB_NCRM];
    void *state[WB_NCRM];
};

static int crm_index(const char *crm)
{
    if (strcmp(crm, "salesforce") == 0) return 0;
    if (strcmp(crm, "hubspot") == 0) return 1;
    return -1;
}

static int crm_enabled(const struct cfg *c, int idx)
{
    return idx == 0 ? c->salesforce.writeback : idx == 1 ? c->hubspot.writeback : 0;
}

int gate_writeback_enabled(const struct cfg *c, const char *crm)
{
    int idx = c && crm ? crm_index(crm) : -1;
    return idx >= 0 && crm_enabled(c, idx);
}

dg_err gate_writeback_payload(const struct cfg *c, const char *crm, const cJSON *decision,
                              char **payload)
{
    *payload = NULL;
    if (!gate_writeback_enabled(c, crm) || !decision) return DG_OK;
    const cJSON *outcome = cJSON_GetObjectItemCaseSensitive(decision, "outcome");
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(decision, "mode");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(decision, "decision_id");
    const cJSON *opp = cJSON_GetObjectItemCaseSensitive(decision, "opportunity_id");
    const cJSON *revert = cJSON_GetObjectItemCaseSensitive(decision, "revert_to_value");
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(decision, "to_value");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(decision, "message");
    if (!cJSON_IsString(outcome) || strcmp(outcome->valuestring, "block") != 0) return DG_OK;
    if (cJSON_IsString(mode) && strcmp(mode->valuestring, "enforce") != 0) return DG_OK;
    if (!cJSON_IsString(id) || !cJSON_IsString(opp) || !cJSON_IsString(revert) ||
        !*revert->valuestring || !cJSON_IsString(to) ||
        strcmp(revert->valuestring, to->valuestring) == 0)
        return DG_OK;
    cJSON *p = cJSON_CreateObject();
    dg_err rc = DG_ENOMEM;
    if (p && cJSON_AddStringToObject(p, "opportunity_id", opp->valuestring) &&
        cJSON_AddStringToObject(p, "stage_value", revert->valuestring) &&
        cJSON_AddStringToObject(p, "blocked_value", to->valuestring) &&
        cJSON_AddStringToObject(p, "reason", cJSON_IsString(msg) ? msg->valuestring : "") &&
        (*payload = cJSON_PrintUnformatted(p)) != NULL)
        rc = DG_OK;
    cJSON_Delete(p);
    return rc;
}

dg_err gate_writeback_enqueue(gate_ctx *g, const struct cfg *c, const char *crm,
                              const cJSON *decision, int *queued)
{
    if (queued) *queued = 0;
    if (!g->log) return DG_OK;
    char *payload = NULL;
    dg_err rc = gate_writeback_payload(c, crm, decision, &payload);
    if (rc != DG_OK || payload == NULL) return rc;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(decision, "decision_id");
    const cJSON *opp = cJSON_GetObjectItemCaseSensitive(decision, "opportunity_id");
    char err[256];
    rc = dlog_wb_enqueue(g->log, id->valuestring, crm, opp->valuestring, payload, gate_now_ms(),
                         err, sizeof err);
    if (rc != DG_OK)
        fprintf(stderr,
                "{\"event\":\"writeback_enqueue_failed\",\"decision_id\":\"%s\",\"error\":"
                "\"%s\"}\n",
                id->valuestring, dg_err_name(rc));
    else if (queued)
        *queued = 1;
    free(payload);
    return rc;
}

/* ---- the worker ------------------------------------------------------------------------- */

static void clients_close(gate_writeback *w)
{
    for (int i = 0; i < WB_NCRM; i++) {
        if (w->ops[i] && w->state[i]) w->ops[i]->close(w->state[i]);
        w->ops[i] = NULL;
        w->state[i] = NULL;
    }
    w->version[0] = '\0';
}

/* The open client for CRM idx on rt's snapshot, or NULL with the reason in err. */
static void *client_for(gate_writeback *w, const gate_rt *rt, int idx, char *err, size_t errlen)
{
    if (strcmp(w->version, rt->cfg->version) != 0) {
        clients_close(w);
        snprintf(w->version, sizeof w->version, "%s", rt->cfg->version);
    }
    if (w->state[idx]) return w->state[idx];
    const crm_ops *ops = idx == 0 ? &crm_salesforce_ops : &crm_hubspot_ops;
    if (ops->open(rt->cfg, &w->state[idx], err, errlen) != DG_OK) return NULL;
    w->ops[idx] = ops;
    return w->state[idx];
}

static int retryable(dg_err rc)
{
    return rc == DG_EUPSTREAM || rc == DG_ETIMEOUT || rc == DG_EUNAVAILABLE ||
           rc == DG_ETHROTTLED || rc == DG_ENOMEM;
}

static int64_t backoff_ms(int attempts)
{
    int64_t d = WB_BACKOFF_FIRST_MS;
    for (int i = 1; i < attempts && d < WB_BACKOFF_MAX_MS; i++)
        d *= 2;
    return d < WB_BACKOFF_MAX_MS ? d : WB_BACKOFF_MAX_MS;
}

static void log_outcome(const dlog_wb_job *job, const char *state, const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "event", "writeback");
    cJSON_AddStringToObject(o, "decision_id", job->decision_id);
    cJSON_AddStringToObject(o, "crm", job->crm);
    cJSON_AddStringToObject(o, "state", state);
    cJSON_AddNumberToObject(o, "attempt", job->attempts);
    if (msg && *msg) cJSON_AddStringToObject(o, "detail", msg);
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (line) {
        fprintf(stderr, "%s\n", line);
        free(line);
    }
}

static void finish(gate_writeback *w, const dlog_wb_job *job, const char *state, int64_t next_at,
                   const char *msg)
{
    if (dlog_wb_finish(w->g->log, job->id, state, next_at, msg, gate_now_ms()) != DG_OK) {
        /* the lease runs out and the job comes back; the re-read keeps it from applying twice */
        log_outcome(job, "unrecorded", "the decision log refused the outcome");
        return;
    }
    log_outcome(job, strcmp(state, "pending") == 0 ? "retry" : state, msg);
}

/* A failed call: back off and retry when it may heal, else fail for good. */
static void failed_call(gate_writeback *w, const dlog_wb_job *job, dg_err rc, const char *msg)
{
    if (atomic_load(&w->cancel)) {
        finish(w, job, "pending", gate_now_ms(), "interrupted by shutdown");
        return;
    }
    if (retryable(rc) && job->attempts < WB_MAX_ATTEMPTS) {
        finish(w, job, "pending", gate_now_ms() + backoff_ms(job->attempts), msg);
        return;
    }
    finish(w, job, "failed", 0, msg);
}

static const char *pstr(const cJSON *p, const char *k)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(p, k);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static void work(gate_writeback *w, const dlog_wb_job *job)
{
    char err[WB_ERRLEN] = "";
    char *cur = NULL;
    gate_rt *rt = gate_rt_acquire(w->g);
    cJSON *p = cJSON_Parse(job->payload_json);
    const char *opp = pstr(p, "opportunity_id"), *stage = pstr(p, "stage_value");
    const char *blocked = pstr(p, "blocked_value"), *reason = pstr(p, "reason");
    int idx = crm_index(job->crm);
    if (!rt) {
        finish(w, job, "pending", gate_now_ms() + WB_BACKOFF_FIRST_MS, "no configuration yet");
        goto out;
    }
    if (!opp || !stage || !blocked || idx < 0) {
        finish(w, job, "failed", 0, "the queued job is malformed");
        goto out;
    }
    if (!crm_enabled(rt->cfg, idx)) {
        snprintf(err, sizeof err, "write-back is off ([%s] writeback = no)", job->crm);
        finish(w, job, "failed", 0, err);
        goto out;
    }
    void *st = client_for(w, rt, idx, err, sizeof err);
    if (!st) {
        finish(w, job, "failed", 0, err);
        goto out;
    }
    const crm_ops *ops = w->ops[idx];
    dg_err rc = ops->get_stage(st, opp, &w->cancel, &cur, err, sizeof err);
    if (rc != DG_OK) {
        failed_call(w, job, rc, err);
        goto out;
    }
    if (strcmp(cur, blocked) != 0) {
        /* Someone moved the deal since (or a first pass already wrote it back). */
        char note[WB_ERRLEN];
        int at_revert = strcmp(cur, stage) == 0;
        snprintf(note, sizeof note, "%s \"%.200s\"",
                 at_revert ? "the deal is already at" : "the deal has moved on to", cur);
        finish(w, job, at_revert ? "done" : "superseded", 0, note);
        goto out;
    }
    rc = ops->set_stage(st, opp, stage, reason ? reason : "", &w->cancel, err, sizeof err);
    if (rc != DG_OK) {
        failed_call(w, job, rc, err);
        goto out;
    }
    finish(w, job, "done", 0, NULL);
out:
    free(cur);
    cJSON_Delete(p);
    gate_rt_release(w->g, rt);
}

static int should_stop(gate_writeback *w, int wait_ms)
{
    pthread_mutex_lock(&w->mu);
    if (!w->stop && wait_ms > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)wait_ms * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
    int stop = w->stop;
    pthread_mutex_unlock(&w->mu);
    return stop;
}

static void *worker_main(void *arg)
{
    gate_writeback *w = arg;
    pthread_setname_np(pthread_self(), "dg-writeback"); /* top -H, bench/gate.sh */
    size_t n = 0; /* jobs of the last claim: while there are, the next claim comes at once */
    while (!should_stop(w, n ? 0 : WB_POLL_MS)) {
        dlog_wb_job jobs[WB_CLAIM_MAX];
        n = 0;
        if (!dlog_wb_due(w->g->log, gate_now_ms())) continue; /* a read: idle costs no write */
        if (dlog_wb_claim(w->g->log, gate_now_ms(), WB_LEASE_MS, jobs, WB_CLAIM_MAX, &n) != DG_OK)
            continue;
        for (size_t i = 0; i < n; i++) {
            if (should_stop(w, 0))
                finish(w, &jobs[i], "pending", gate_now_ms(), "interrupted by shutdown");
            else
                work(w, &jobs[i]);
            dlog_wb_job_free(&jobs[i]);
        }
    }
    clients_close(w);
    return NULL;
}

dg_err gate_writeback_start(gate_ctx *g, gate_writeback **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!g->log) return DG_OK;
    gate_writeback *w = calloc(1, sizeof *w);
    if (!w) return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    w->g = g;
    atomic_init(&w->cancel, 0);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return dg_errf(err, errlen, DG_EINTERNAL, "cannot start the write-back worker");
    }
    *out = w;
    return DG_OK;
}

void gate_writeback_stop(gate_writeback *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    atomic_store(&w->cancel, 1);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* ---- POST /v1/decisions/{id}/writeback ---------------------------------------------------- */

int gate_h_decision_writeback(gate_req *r)
{
    static const char prefix[] = "/v1/decisions/", suffix[] = "/writeback";
    const char *id = r->path + sizeof prefix - 1;
    const char *slash = strchr(id, '/');
    if (!slash || strcmp(slash, suffix) != 0 || slash == id || slash - id > 64)
        return gate_reply_error(r, 404, "not_found", "no such endpoint");
    char did[72];
    snprintf(did, sizeof did, "%.*s", (int)(slash - id), id);
    char state[16] = "", *json = NULL;
    dg_err rc = dlog_wb_retry(r->g->log, did, gate_now_ms(), state, sizeof state);
    if (rc == DG_ENOTFOUND)
        return gate_reply_error(r, 404, "not_found", "no write-back for this decision");
    if (rc == DG_ECONFLICT)
        return gate_reply_error(r, 409, "writeback_not_retryable",
                                "the write-back is %s; only a failed or pending one can be retried",
                                state);
    if (rc != DG_OK || dlog_wb_get(r->g->log, did, &json) != DG_OK)
        return gate_reply_error(r, 503, "log_unavailable", "the decision log cannot be written");
    cJSON *wb = cJSON_Parse(json);
    free(json);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "decision_id", did);
    if (wb) cJSON_AddItemToObject(o, "writeback", wb);
    snprintf(r->decision_id, sizeof r->decision_id, "%.39s", did);
    return gate_reply_json(r, 202, o, "");
}
