/* dlog_writeback.c — the write-back queue of the decision log (table `writebacks`).
 *
 * The SQL of the queue lives here, next to its one feature; it runs through the log's
 * writer thread and reader pool (dlog_internal.h), so a queue write shares the writer's
 * transactions and a claim is atomic with respect to every other write. A claim is one
 * UPDATE ... RETURNING that bumps attempts and pushes next_at_ms out by the lease: there is
 * no "running" state to get stuck in after a crash, the job simply comes due again.
 * Schema: docs/internals/decision-log.md ("Write-back queue").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "gate/dlog.h"
#include "gate/dlog_internal.h"

#define WB_STATE_MAX 16

void dlog_wb_job_free(dlog_wb_job *j)
{
    if (!j) return;
    free(j->decision_id);
    free(j->crm);
    free(j->opp_id);
    free(j->payload_json);
    memset(j, 0, sizeof *j);
}

static int bind_text0(sqlite3_stmt *st, int i, const char *s)
{
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
}

static dg_err sql_fail(sqlite3 *db, const char *what, char *err, size_t errlen)
{
    return dg_errf(err, errlen, DG_EDB, "decision log: write-back %s: %s", what,
                   sqlite3_errmsg(db));
}

static char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? strdup((const char *)t) : NULL;
}

/* ---- enqueue ------------------------------------------------------------------------------ */

typedef struct {
    const char *decision_id, *crm, *opp_id, *payload;
    int64_t now_ms;
} wb_enqueue_args;

static dg_err do_enqueue(sqlite3 *db, void *arg, char *err, size_t errlen)
{
    const wb_enqueue_args *a = arg;
    sqlite3_stmt *st = NULL;
    static const char sql[] =
        "INSERT INTO writebacks (decision_id, crm, opp_id, payload_json, state, attempts,"
        " next_at_ms, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5, ?5)"
        " ON CONFLICT (decision_id, crm) DO NOTHING";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return sql_fail(db, "enqueue", err, errlen);
    bind_text0(st, 1, a->decision_id);
    bind_text0(st, 2, a->crm);
    bind_text0(st, 3, a->opp_id);
    bind_text0(st, 4, a->payload);
    sqlite3_bind_int64(st, 5, a->now_ms);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? DG_OK : sql_fail(db, "enqueue", err, errlen);
}

dg_err dlog_wb_enqueue(dlog *l, const char *decision_id, const char *crm, const char *opp_id,
                       const char *payload_json, int64_t now_ms, char *err, size_t errlen)
{
    if (!decision_id || !crm || !opp_id || !payload_json)
        return dg_errf(err, errlen, DG_EINVAL, "decision log: write-back job is incomplete");
    wb_enqueue_args a = {decision_id, crm, opp_id, payload_json, now_ms};
    return dlog_write_call(l, do_enqueue, &a, err, errlen);
}

/* ---- due? ---------------------------------------------------------------------------------- */

typedef struct {
    int64_t now_ms;
    int due;
} wb_due_args;

static dg_err do_due(sqlite3 *db, void *arg)
{
    wb_due_args *a = arg;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT 1 FROM writebacks WHERE state = 'pending' AND next_at_ms <= ?1"
                           " LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return DG_EDB;
    sqlite3_bind_int64(st, 1, a->now_ms);
    int rc = sqlite3_step(st);
    a->due = rc == SQLITE_ROW;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? DG_OK : DG_EDB;
}

int dlog_wb_due(dlog *l, int64_t now_ms)
{
    wb_due_args a = {now_ms, 0};
    return dlog_read_call(l, do_due, &a) == DG_OK && a.due;
}

/* ---- claim --------------------------------------------------------------------------------- */

typedef struct {
    int64_t now_ms, lease_ms;
    dlog_wb_job *jobs;
    size_t max, n;
} wb_claim_args;

static dg_err do_claim(sqlite3 *db, void *arg, char *err, size_t errlen)
{
    wb_claim_args *a = arg;
    sqlite3_stmt *st = NULL;
    static const char sql[] =
        "UPDATE writebacks SET attempts = attempts + 1, next_at_ms = ?2, updated_ms = ?1"
        " WHERE id IN (SELECT id FROM writebacks WHERE state = 'pending' AND next_at_ms <= ?1"
        " ORDER BY next_at_ms, id LIMIT ?3)"
        " RETURNING id, decision_id, crm, opp_id, payload_json, attempts";
    a->n = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return sql_fail(db, "claim", err, errlen);
    sqlite3_bind_int64(st, 1, a->now_ms);
    sqlite3_bind_int64(st, 2, a->now_ms + a->lease_ms);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)a->max);
    int rc;
    dg_err out = DG_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (a->n == a->max) continue; /* cannot happen: LIMIT max */
        dlog_wb_job *j = &a->jobs[a->n];
        memset(j, 0, sizeof *j);
        j->id = sqlite3_column_int64(st, 0);
        j->decision_id = col_text(st, 1);
        j->crm = col_text(st, 2);
        j->opp_id = col_text(st, 3);
        j->payload_json = col_text(st, 4);
        j->attempts = sqlite3_column_int(st, 5);
        a->n++;
        if (!j->decision_id || !j->crm || !j->opp_id || !j->payload_json) out = DG_ENOMEM;
    }
    if (rc != SQLITE_DONE && out == DG_OK) out = sql_fail(db, "claim", err, errlen);
    sqlite3_finalize(st);
    if (out == DG_ENOMEM) dg_errf(err, errlen, out, "out of memory");
    if (out != DG_OK) {
        for (size_t i = 0; i < a->n; i++)
            dlog_wb_job_free(&a->jobs[i]);
        a->n = 0;
    }
    return out;
}

dg_err dlog_wb_claim(dlog *l, int64_t now_ms, int64_t lease_ms, dlog_wb_job *jobs, size_t max,
                     size_t *n)
{
    *n = 0;
    if (max == 0) return DG_OK;
    char err[256];
    wb_claim_args a = {now_ms, lease_ms, jobs, max, 0};
    dg_err rc = dlog_write_call(l, do_claim, &a, err, sizeof err);
    if (rc != DG_OK) {
        /* the writer's commit failed after do_claim filled jobs: nothing was claimed */
        for (size_t i = 0; i < a.n; i++)
            dlog_wb_job_free(&jobs[i]);
        return rc;
    }
    *n = a.n;
    return DG_OK;
}

/* ---- finish -------------------------------------------------------------------------------- */

typedef struct {
    int64_t id;
    const char *state, *note;
    int64_t next_at_ms, now_ms;
} wb_finish_args;

static dg_err do_finish(sqlite3 *db, void *arg, char *err, size_t errlen)
{
    const wb_finish_args *a = arg;
    sqlite3_stmt *st = NULL;
    static const char sql[] = "UPDATE writebacks SET state = ?2, next_at_ms = ?3, last_error = ?4,"
                              " updated_ms = ?5 WHERE id = ?1";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return sql_fail(db, "finish", err, errlen);
    sqlite3_bind_int64(st, 1, a->id);
    bind_text0(st, 2, a->state);
    sqlite3_bind_int64(st, 3, a->next_at_ms);
    bind_text0(st, 4, a->note);
    sqlite3_bind_int64(st, 5, a->now_ms);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? DG_OK : sql_fail(db, "finish", err, errlen);
}

dg_err dlog_wb_finish(dlog *l, int64_t job_id, const char *state, int64_t next_at_ms,
                      const char *note, int64_t now_ms)
{
    if (!state) return DG_EINVAL;
    char err[256];
    wb_finish_args a = {job_id, state, note, next_at_ms, now_ms};
    return dlog_write_call(l, do_finish, &a, err, sizeof err);
}

/* ---- retry --------------------------------------------------------------------------------- */

typedef struct {
    const char *decision_id;
    int64_t now_ms;
    char state[WB_STATE_MAX];
} wb_retry_args;

static dg_err do_retry(sqlite3 *db, void *arg, char *err, size_t errlen)
{
    wb_retry_args *a = arg;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT state FROM writebacks WHERE decision_id = ?1 ORDER BY id"
                           " LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return sql_fail(db, "retry", err, errlen);
    bind_text0(st, 1, a->decision_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(a->state, sizeof a->state, "%s", t ? (const char *)t : "");
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE) return dg_errf(err, errlen, DG_ENOTFOUND, "no write-back queued");
    if (rc != SQLITE_ROW) return sql_fail(db, "retry", err, errlen);
    if (strcmp(a->state, "failed") != 0 && strcmp(a->state, "pending") != 0)
        return dg_errf(err, errlen, DG_ECONFLICT, "the write-back is %s", a->state);
    if (sqlite3_prepare_v2(db,
                           "UPDATE writebacks SET state = 'pending', attempts = 0,"
                           " next_at_ms = ?2, updated_ms = ?2 WHERE decision_id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return sql_fail(db, "retry", err, errlen);
    bind_text0(st, 1, a->decision_id);
    sqlite3_bind_int64(st, 2, a->now_ms);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? DG_OK : sql_fail(db, "retry", err, errlen);
}

dg_err dlog_wb_retry(dlog *l, const char *decision_id, int64_t now_ms, char *state, size_t statelen)
{
    if (statelen) state[0] = '\0';
    if (!decision_id) return DG_EINVAL;
    char err[256];
    wb_retry_args a = {decision_id, now_ms, ""};
    dg_err rc = dlog_write_call(l, do_retry, &a, err, sizeof err);
    if (statelen) snprintf(state, statelen, "%s", a.state);
    return rc;
}

/* ---- read ---------------------------------------------------------------------------------- */

static void rfc3339_ms(int64_t ms, char *buf, size_t n)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, n, "%s.%03dZ", base, (int)(ms % 1000));
}

typedef struct {
    const char *decision_id;
    cJSON *out;
    int found;
} wb_get_args;

static dg_err do_get(sqlite3 *db, void *arg)
{
    wb_get_args *a = arg;
    sqlite3_stmt *st = NULL;
    static const char sql[] =
        "SELECT crm, state, attempts, next_at_ms, last_error, created_ms, updated_ms,"
        " json_extract(payload_json, '$.stage_value') FROM writebacks WHERE decision_id = ?1"
        " ORDER BY id LIMIT 1";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return DG_EDB;
    bind_text0(st, 1, a->decision_id);
    int rc = sqlite3_step(st);
    dg_err out = DG_OK;
    if (rc == SQLITE_ROW) {
        a->found = 1;
        cJSON *o = cJSON_CreateObject();
        const char *state = (const char *)sqlite3_column_text(st, 1);
        const char *note = (const char *)sqlite3_column_text(st, 4);
        const char *stage = (const char *)sqlite3_column_text(st, 7);
        char t[48];
        int pending = state && strcmp(state, "pending") == 0;
        cJSON_AddStringToObject(o, "crm", (const char *)sqlite3_column_text(st, 0));
        cJSON_AddStringToObject(o, "state", state ? state : "");
        cJSON_AddNumberToObject(o, "attempts", sqlite3_column_int(st, 2));
        if (stage) cJSON_AddStringToObject(o, "stage_value", stage);
        if (pending) {
            rfc3339_ms(sqlite3_column_int64(st, 3), t, sizeof t);
            cJSON_AddStringToObject(o, "next_attempt_at", t);
        } else {
            cJSON_AddNullToObject(o, "next_attempt_at");
        }
        /* an upstream error for failed (and pending retries); a note for done/superseded */
        int is_error = pending || (state && strcmp(state, "failed") == 0);
        if (note) {
            cJSON_AddStringToObject(o, is_error ? "error" : "detail", note);
        } else {
            cJSON_AddNullToObject(o, is_error ? "error" : "detail");
        }
        rfc3339_ms(sqlite3_column_int64(st, 5), t, sizeof t);
        cJSON_AddStringToObject(o, "created_at", t);
        rfc3339_ms(sqlite3_column_int64(st, 6), t, sizeof t);
        cJSON_AddStringToObject(o, "updated_at", t);
        a->out = o;
        if (!o) out = DG_ENOMEM;
    } else if (rc != SQLITE_DONE) {
        out = DG_EDB;
    }
    sqlite3_finalize(st);
    return out;
}

dg_err dlog_wb_get(dlog *l, const char *decision_id, char **json)
{
    *json = NULL;
    if (!decision_id) return DG_EINVAL;
    wb_get_args a = {decision_id, NULL, 0};
    dg_err rc = dlog_read_call(l, do_get, &a);
    if (rc != DG_OK) {
        cJSON_Delete(a.out);
        return rc;
    }
    if (!a.found) return DG_ENOTFOUND;
    *json = cJSON_PrintUnformatted(a.out);
    cJSON_Delete(a.out);
    return *json ? DG_OK : DG_ENOMEM;
}

dg_err dlog_wb_attach(dlog *l, const char *id, char **decision_json)
{
    char *wb = NULL;
    dg_err rc = dlog_wb_get(l, id, &wb);
    if (rc == DG_ENOTFOUND) return DG_OK;
    if (rc != DG_OK) return rc;
    cJSON *d = cJSON_Parse(*decision_json);
    cJSON *w = cJSON_Parse(wb);
    free(wb);
    char *text = NULL;
    if (d && w && cJSON_IsObject(d)) {
        cJSON_DeleteItemFromObjectCaseSensitive(d, "writeback");
        cJSON_AddItemToObject(d, "writeback", w);
        w = NULL;
        text = cJSON_PrintUnformatted(d);
    }
    cJSON_Delete(d);
    cJSON_Delete(w);
    if (!text) return DG_ENOMEM;
    free(*decision_json);
    *decision_json = text;
    return DG_OK;
}
