/* dlog_reverify.c — re-verification state in the decision log (table `deal_lapses`).
 *
 * One row per deal the re-verification job has looked at: when it was last re-checked
 * (the job takes the longest-unchecked deals first, a bounded batch per run), and whether a
 * registration it had passed the gate with has lapsed since (which cloud, registration,
 * state, code, message, when, and the decision-log entry recording it). A lapse is
 * recorded once, on the change from "fine" to "lapsed", and cleared (restored_ms) when a
 * later re-check finds the deal registered again. The per-day counter `lapsed` (in
 * `daily`, keys "*" and the cloud) counts lapses for the KPIs; it is not a `k_*` counter,
 * so a KPI rebuild (dlog_kpi.c) leaves it alone. Candidates are read from `deals`, whose
 * state the writer keeps current, with the registrations of the deal's newest allowed gated
 * move (or, once that decision is pruned, the verified registrations the KPI state kept).
 */
#include "gate/dlog_overrides.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "gate/dlog_internal.h"

#define LAPSE_LIMIT_DEFAULT 100
#define LAPSE_LIMIT_MAX 500

static int bind_txt(sqlite3_stmt *st, int i, const char *s)
{
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
}

static char *dup_col(sqlite3_stmt *st, int col, int *oom)
{
    const char *s = (const char *)sqlite3_column_text(st, col);
    if (s == NULL) return NULL;
    char *d = strdup(s);
    if (d == NULL) *oom = 1;
    return d;
}

void dlog_reverify_deal_free(dlog_reverify_deal *d)
{
    if (d == NULL) return;
    char *f[] = {d->opp_id,    d->pipeline,           d->name,        d->account,
                 d->owner,     d->currency,           d->clouds_json, d->stage,
                 d->stage_raw, d->registrations_json, d->crm};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        free(f[i]);
    memset(d, 0, sizeof *d);
}

/* ---- candidates ------------------------------------------------------------------------- */

typedef struct {
    int64_t before_ms;
    size_t max;
    dlog_reverify_deal *out;
    size_t n;
} cand_arg;

static const char cand_sql[] =
    "SELECT d.opp_id, d.pipeline, d.name, d.account, d.owner, d.amount, d.currency,"
    " d.clouds, d.last_stage, d.last_raw,"
    " (SELECT x.registrations FROM decisions x WHERE x.opp_id = d.opp_id"
    "   AND x.gated = 1 AND x.outcome = 'allow' ORDER BY x.time_ms DESC, x.id DESC"
    "   LIMIT 1),"
    " (SELECT json_group_array(json_object('cloud', r.cloud, 'id', r.reg_id,"
    "   'verified', json('true'))) FROM deal_regs r WHERE r.opp_id = d.opp_id),"
    " (SELECT x.adapter FROM decisions x WHERE x.opp_id = d.opp_id"
    "   AND x.adapter IN ('salesforce', 'hubspot') ORDER BY x.time_ms DESC, x.id DESC"
    "   LIMIT 1),"
    " l.lapsed_ms IS NOT NULL"
    " FROM deals d LEFT JOIN deal_lapses l ON l.opp_id = d.opp_id"
    " WHERE d.last_outcome = 'allow' AND d.first_allowed_ms IS NOT NULL"
    " AND d.won_ms IS NULL AND d.lost_ms IS NULL AND d.last_stage IS NOT NULL"
    " AND max(coalesce(l.checked_ms, 0), d.first_allowed_ms) <= ?1"
    " ORDER BY coalesce(l.checked_ms, 0), d.opp_id LIMIT ?2";

static dg_err cand_rows(sqlite3_stmt *st, void *argp)
{
    cand_arg *a = argp;
    sqlite3_bind_int64(st, 1, a->before_ms);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)a->max);
    int src;
    while (a->n < a->max && (src = sqlite3_step(st)) == SQLITE_ROW) {
        dlog_reverify_deal *d = &a->out[a->n++];
        int oom = 0;
        memset(d, 0, sizeof *d);
        d->opp_id = dup_col(st, 0, &oom);
        d->pipeline = dup_col(st, 1, &oom);
        d->name = dup_col(st, 2, &oom);
        d->account = dup_col(st, 3, &oom);
        d->owner = dup_col(st, 4, &oom);
        if ((d->has_amount = sqlite3_column_type(st, 5) == SQLITE_INTEGER))
            d->amount = sqlite3_column_int64(st, 5);
        d->currency = dup_col(st, 6, &oom);
        d->clouds_json = dup_col(st, 7, &oom);
        d->stage = dup_col(st, 8, &oom);
        d->stage_raw = dup_col(st, 9, &oom);
        d->registrations_json = dup_col(st, 10, &oom);
        if (d->registrations_json == NULL) d->registrations_json = dup_col(st, 11, &oom);
        d->crm = dup_col(st, 12, &oom);
        d->lapsed = sqlite3_column_int(st, 13);
        if (oom || d->opp_id == NULL) return DG_ENOMEM;
    }
    return DG_OK;
}

dg_err dlog_reverify_candidates(dlog *l, int64_t checked_before_ms, size_t max,
                                dlog_reverify_deal *deals, size_t *n)
{
    *n = 0;
    if (l == NULL || deals == NULL) return DG_EINVAL;
    if (max == 0) return DG_OK;
    cand_arg a = {.before_ms = checked_before_ms, .max = max, .out = deals};
    dg_err rc = dlog_read_query(l, cand_sql, cand_rows, &a);
    if (rc != DG_OK) {
        for (size_t i = 0; i < a.n; i++)
            dlog_reverify_deal_free(&deals[i]);
        return rc;
    }
    *n = a.n;
    return DG_OK;
}

/* ---- recording a re-check --------------------------------------------------------------- */

typedef struct {
    const char *opp_id;
    int64_t now_ms;
    dlog_recheck what;
    const dlog_lapse *lapse;
    int recorded;
} note_arg;

static void utc_day(int64_t ms, char out[16])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&s, &tm) == NULL) {
        snprintf(out, 16, "0000-00-00");
        return;
    }
    snprintf(out, 16, "%04d-%02d-%02d", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
             tm.tm_mday % 100);
}

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW;
}

static dg_err note_fn(sqlite3 *db, void *argp, char *err, size_t errlen)
{
    note_arg *a = argp;
    sqlite3_stmt *st = NULL;
    dg_err rc = DG_EDB;
    int was_lapsed = 0;
    if (sqlite3_prepare_v2(db, "SELECT lapsed_ms IS NOT NULL FROM deal_lapses WHERE opp_id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        goto fail;
    bind_txt(st, 1, a->opp_id);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        was_lapsed = sqlite3_column_int(st, 0);
    else if (src != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(st);
    st = NULL;

    if (a->what == DLOG_RECHECK_LAPSED && !was_lapsed) {
        const dlog_lapse *x = a->lapse;
        if (sqlite3_prepare_v2(db,
                               "INSERT INTO deal_lapses (opp_id, checked_ms, lapsed_ms, cloud,"
                               " reg_id, status, code, message, decision_id)"
                               " VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                               " ON CONFLICT (opp_id) DO UPDATE SET checked_ms = ?2,"
                               " lapsed_ms = ?2, cloud = ?3, reg_id = ?4, status = ?5, code = ?6,"
                               " message = ?7, decision_id = ?8",
                               -1, &st, NULL) != SQLITE_OK)
            goto fail;
        bind_txt(st, 1, a->opp_id);
        sqlite3_bind_int64(st, 2, a->now_ms);
        bind_txt(st, 3, x->cloud);
        bind_txt(st, 4, x->reg_id);
        bind_txt(st, 5, x->status);
        bind_txt(st, 6, x->code);
        bind_txt(st, 7, x->message);
        bind_txt(st, 8, x->decision_id);
        if (!step_done(st)) goto fail;
        sqlite3_finalize(st);
        st = NULL;
        char day[16];
        utc_day(a->now_ms, day);
        if (sqlite3_prepare_v2(db,
                               "INSERT INTO daily (day, metric, key, count) VALUES (?1, 'lapsed',"
                               " ?2, 1) ON CONFLICT (day, metric, key)"
                               " DO UPDATE SET count = count + 1",
                               -1, &st, NULL) != SQLITE_OK)
            goto fail;
        const char *keys[2] = {"*", x->cloud};
        for (int i = 0; i < 2; i++) {
            if (keys[i] == NULL || *keys[i] == '\0') continue;
            bind_txt(st, 1, day);
            bind_txt(st, 2, keys[i]);
            if (!step_done(st)) goto fail;
            sqlite3_reset(st);
        }
        a->recorded = 1;
    } else {
        /* checked; an OK check clears a lapse */
        if (sqlite3_prepare_v2(db,
                               "INSERT INTO deal_lapses (opp_id, checked_ms) VALUES (?1, ?2)"
                               " ON CONFLICT (opp_id) DO UPDATE SET checked_ms = ?2,"
                               " restored_ms = CASE WHEN ?3 AND lapsed_ms IS NOT NULL THEN ?2"
                               "  ELSE restored_ms END,"
                               " lapsed_ms = CASE WHEN ?3 THEN NULL ELSE lapsed_ms END",
                               -1, &st, NULL) != SQLITE_OK)
            goto fail;
        bind_txt(st, 1, a->opp_id);
        sqlite3_bind_int64(st, 2, a->now_ms);
        sqlite3_bind_int(st, 3, a->what == DLOG_RECHECK_OK);
        if (!step_done(st)) goto fail;
    }
    rc = DG_OK;
    goto done;
fail:
    rc = dg_errf(err, errlen, DG_EDB, "decision log: re-verification: %s", sqlite3_errmsg(db));
done:
    sqlite3_finalize(st);
    return rc;
}

dg_err dlog_reverify_note(dlog *l, const char *opp_id, int64_t now_ms, dlog_recheck what,
                          const dlog_lapse *lapse, int *recorded)
{
    if (recorded) *recorded = 0;
    if (l == NULL || opp_id == NULL || (what == DLOG_RECHECK_LAPSED && lapse == NULL))
        return DG_EINVAL;
    note_arg a = {.opp_id = opp_id, .now_ms = now_ms, .what = what, .lapse = lapse};
    char err[256];
    dg_err rc = dlog_write_call(l, note_fn, &a, err, sizeof err);
    if (rc == DG_OK && recorded) *recorded = a.recorded;
    return rc;
}

/* ---- reads ------------------------------------------------------------------------------ */

typedef struct {
    const char *opp_id;
    int lapsed;
} is_arg;

static dg_err is_row(sqlite3_stmt *st, void *argp)
{
    is_arg *a = argp;
    bind_txt(st, 1, a->opp_id);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) a->lapsed = sqlite3_column_int(st, 0);
    return src == SQLITE_ROW || src == SQLITE_DONE ? DG_OK : DG_EDB;
}

dg_err dlog_reverify_is_lapsed(dlog *l, const char *opp_id, int *lapsed)
{
    *lapsed = 0;
    if (l == NULL || opp_id == NULL) return DG_EINVAL;
    is_arg a = {.opp_id = opp_id};
    dg_err rc = dlog_read_query(
        l, "SELECT lapsed_ms IS NOT NULL FROM deal_lapses WHERE opp_id = ?1", is_row, &a);
    *lapsed = a.lapsed;
    return rc;
}

typedef struct {
    const char *owner;
    int limit;
    char *json;
    dg_err rc;
} lapsed_arg;

#define LAPSED_WHERE                                                                               \
    " FROM deal_lapses l JOIN deals d ON d.opp_id = l.opp_id"                                      \
    " WHERE l.lapsed_ms IS NOT NULL AND d.won_ms IS NULL AND d.lost_ms IS NULL"                    \
    " AND (?1 IS NULL OR d.owner = ?1)"

static void add_col(cJSON *o, const char *key, sqlite3_stmt *st, int col)
{
    const char *s = (const char *)sqlite3_column_text(st, col);
    if (s)
        cJSON_AddStringToObject(o, key, s);
    else
        cJSON_AddNullToObject(o, key);
}

static dg_err lapsed_fn(sqlite3 *db, void *argp)
{
    lapsed_arg *a = argp;
    sqlite3_stmt *st = NULL;
    cJSON *root = cJSON_CreateObject();
    a->rc = DG_EDB;
    if (root == NULL) {
        a->rc = DG_ENOMEM;
        goto done;
    }
    if (sqlite3_prepare_v2(db, "SELECT count(*)" LAPSED_WHERE, -1, &st, NULL) != SQLITE_OK)
        goto done;
    bind_txt(st, 1, a->owner);
    if (sqlite3_step(st) != SQLITE_ROW) goto done;
    cJSON_AddNumberToObject(root, "total", (double)sqlite3_column_int64(st, 0));
    sqlite3_finalize(st);
    st = NULL;
    cJSON *arr = cJSON_AddArrayToObject(root, "deals");
    if (arr == NULL ||
        sqlite3_prepare_v2(
            db,
            "SELECT d.opp_id, d.name, d.account, d.owner, d.last_stage, l.cloud,"
            " l.reg_id, l.status, l.code, l.message, l.lapsed_ms, l.decision_id" LAPSED_WHERE
            " ORDER BY l.lapsed_ms DESC, d.opp_id LIMIT ?2",
            -1, &st, NULL) != SQLITE_OK)
        goto done;
    bind_txt(st, 1, a->owner);
    sqlite3_bind_int(st, 2, a->limit);
    int src;
    static const char *const keys[] = {"opportunity_id", "name",   "account",         "owner",
                                       "stage",          "cloud",  "registration_id", "status",
                                       "code",           "message"};
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        if (o == NULL) {
            a->rc = DG_ENOMEM;
            goto done;
        }
        for (int i = 0; i < 10; i++)
            add_col(o, keys[i], st, i);
        cJSON_AddNumberToObject(o, "since", (double)sqlite3_column_int64(st, 10));
        add_col(o, "decision_id", st, 11);
        cJSON_AddItemToArray(arr, o);
    }
    if (src != SQLITE_DONE) goto done;
    a->json = cJSON_PrintUnformatted(root);
    a->rc = a->json ? DG_OK : DG_ENOMEM;
done:
    sqlite3_finalize(st);
    cJSON_Delete(root);
    return a->rc;
}

dg_err dlog_lapsed_deals(dlog *l, const char *owner, int limit, char **json)
{
    *json = NULL;
    if (l == NULL) return DG_EINVAL;
    lapsed_arg a = {.owner = owner};
    a.limit = limit <= 0 ? LAPSE_LIMIT_DEFAULT : limit > LAPSE_LIMIT_MAX ? LAPSE_LIMIT_MAX : limit;
    dlog_read_call(l, lapsed_fn, &a);
    *json = a.json;
    return a.rc;
}

typedef struct {
    const char *since, *until, *cloud;
    int64_t count;
} count_arg;

static dg_err count_row(sqlite3_stmt *st, void *argp)
{
    count_arg *a = argp;
    bind_txt(st, 1, a->cloud ? a->cloud : "*");
    bind_txt(st, 2, a->since);
    bind_txt(st, 3, a->until);
    if (sqlite3_step(st) != SQLITE_ROW) return DG_EDB;
    a->count = sqlite3_column_int64(st, 0);
    return DG_OK;
}

dg_err dlog_lapse_count(dlog *l, const char *since_day, const char *until_day, const char *cloud,
                        int64_t *count)
{
    *count = 0;
    if (l == NULL || since_day == NULL || until_day == NULL) return DG_EINVAL;
    count_arg a = {.since = since_day, .until = until_day, .cloud = cloud};
    dg_err rc = dlog_read_query(l,
                                "SELECT coalesce(sum(count), 0) FROM daily WHERE metric = 'lapsed'"
                                " AND key = ?1 AND day >= ?2 AND day <= ?3",
                                count_row, &a);
    *count = a.count;
    return rc;
}

dg_err dlog_kpis_add_lapses(dlog *l, const dlog_kpi_query *q, char **json)
{
    if (l == NULL || q == NULL || json == NULL || *json == NULL) return DG_EINVAL;
    int64_t n = 0;
    dg_err rc = dlog_lapse_count(l, q->since_day, q->until_day, q->cloud, &n);
    if (rc != DG_OK) return rc;
    cJSON *o = cJSON_Parse(*json);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return DG_OK;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(o, "registrations_lapsed");
    char *text = cJSON_AddNumberToObject(o, "registrations_lapsed", (double)n)
                     ? cJSON_PrintUnformatted(o)
                     : NULL;
    cJSON_Delete(o);
    if (text == NULL) return DG_ENOMEM;
    free(*json);
    *json = text;
    return DG_OK;
}
