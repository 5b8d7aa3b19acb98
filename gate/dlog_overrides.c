/* dlog_overrides.c — deal-desk overrides in the decision log (table `overrides`).
 *
 * An override is one row: deal, rule, reason, approver, expiry, when it was granted and,
 * once revoked, when. Rows are never deleted by the API (a revocation is a time stamp), so
 * the table is the audit trail; retention prunes only overrides that ended long ago.
 * Expiry is not a state: an override is live while it is not revoked and now < expires_ms,
 * and every reader passes its `now`, so an expired override stops applying by itself. The
 * decisions an override let through carry its id in their `override` warning
 * ("override_id"), which is how `used` and `last_used_at` are counted (an indexed scan of
 * the deal's own decisions). Writes run on the log's writer thread (dlog_write_call),
 * reads on its reader pool (dlog_read_call).
 */
#include "gate/dlog_overrides.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "gate/dlog_internal.h"

#define OV_LIMIT_DEFAULT 100
#define OV_LIMIT_MAX 500
#define OV_ID_MAX 64
#define OV_LIVE_MAX 64 /* live overrides read for one deal */

/* ---- helpers --------------------------------------------------------------------------- */

static int bind_txt(sqlite3_stmt *st, int i, const char *s)
{
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
}

static void rfc3339(int64_t ms, char out[32])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    if (ms < 0 || gmtime_r(&s, &tm) == NULL) {
        snprintf(out, 32, "1970-01-01T00:00:00Z");
        return;
    }
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02dZ", (tm.tm_year + 1900) % 10000,
             (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
             tm.tm_sec % 100);
}

static void add_time(cJSON *o, const char *key, sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL) {
        cJSON_AddNullToObject(o, key);
        return;
    }
    char t[32];
    rfc3339(sqlite3_column_int64(st, col), t);
    cJSON_AddStringToObject(o, key, t);
}

static const char *col_txt(sqlite3_stmt *st, int col)
{
    const char *s = (const char *)sqlite3_column_text(st, col);
    return s ? s : "";
}

/* The columns every override query selects, in this order (then used, last_used). */
#define OV_COLS                                                                                    \
    "o.id, o.opp_id, o.rule, o.reason, o.approved_by, o.expires_ms, o.created_ms, o.revoked_ms,"   \
    " (SELECT count(*) FROM decisions d WHERE d.opp_id = o.opp_id"                                 \
    "   AND instr(d.warnings, '\"override_id\":\"' || o.id || '\"') > 0),"                         \
    " (SELECT max(d.time_ms) FROM decisions d WHERE d.opp_id = o.opp_id"                           \
    "   AND instr(d.warnings, '\"override_id\":\"' || o.id || '\"') > 0)"

/* The JSON object of the current row of a query selecting OV_COLS. NULL when out of memory. */
static cJSON *row_json(sqlite3_stmt *st, int64_t now_ms)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) return NULL;
    int revoked = sqlite3_column_type(st, 7) != SQLITE_NULL;
    int64_t expires = sqlite3_column_int64(st, 5);
    cJSON_AddStringToObject(o, "id", col_txt(st, 0));
    cJSON_AddStringToObject(o, "opportunity_id", col_txt(st, 1));
    cJSON_AddStringToObject(o, "rule", col_txt(st, 2));
    cJSON_AddStringToObject(o, "reason", col_txt(st, 3));
    cJSON_AddStringToObject(o, "approved_by", col_txt(st, 4));
    add_time(o, "expires_at", st, 5);
    add_time(o, "created_at", st, 6);
    add_time(o, "revoked_at", st, 7);
    cJSON_AddBoolToObject(o, "active", !revoked && now_ms < expires);
    cJSON_AddNumberToObject(o, "used", (double)sqlite3_column_int64(st, 8));
    add_time(o, "last_used_at", st, 9);
    return o;
}

/* ---- add / revoke ---------------------------------------------------------------------- */

typedef struct {
    dlog *l;
    const dlog_override *o;
    int exists;
} add_arg;

static dg_err add_fn(sqlite3 *db, void *argp, char *err, size_t errlen)
{
    add_arg *a = argp;
    const dlog_override *o = a->o;
    sqlite3_stmt *st = NULL;
    dg_err rc = DG_EDB;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO overrides (id, opp_id, rule, reason, approved_by,"
                           " expires_ms, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                           -1, &st, NULL) != SQLITE_OK) {
        dg_errf(err, errlen, DG_EDB, "decision log: overrides: %s", sqlite3_errmsg(db));
        goto done;
    }
    bind_txt(st, 1, o->id);
    bind_txt(st, 2, o->opp_id);
    bind_txt(st, 3, o->rule);
    bind_txt(st, 4, o->reason);
    bind_txt(st, 5, o->approved_by);
    sqlite3_bind_int64(st, 6, o->expires_ms);
    sqlite3_bind_int64(st, 7, o->created_ms);
    int src = sqlite3_step(st);
    if (src == SQLITE_CONSTRAINT) {
        a->exists = 1;
        rc = dg_errf(err, errlen, DG_EEXISTS, "override %s exists already", o->id);
        goto done;
    }
    if (src != SQLITE_DONE) {
        dg_errf(err, errlen, DG_EDB, "decision log: overrides: %s", sqlite3_errmsg(db));
        goto done;
    }
    dlog_ovr_note(a->l, o->opp_id); /* before the commit: the gate reads it from then on */
    rc = DG_OK;
done:
    sqlite3_finalize(st);
    return rc;
}

static int nonempty(const char *s)
{
    return s != NULL && *s != '\0';
}

dg_err dlog_override_add(dlog *l, const dlog_override *o, char *err, size_t errlen)
{
    if (l == NULL || o == NULL) return dg_errf(err, errlen, DG_EINVAL, "decision log: no log");
    if (!nonempty(o->id) || strlen(o->id) > OV_ID_MAX || !nonempty(o->opp_id) ||
        !nonempty(o->rule) || !nonempty(o->reason) || !nonempty(o->approved_by))
        return dg_errf(err, errlen, DG_EINVAL,
                       "decision log: an override needs id, opp_id, rule, reason, approved_by");
    add_arg a = {.l = l, .o = o};
    dg_err rc = dlog_write_call(l, add_fn, &a, err, errlen);
    if (rc != DG_OK && a.exists) return DG_EEXISTS;
    return rc;
}

typedef struct {
    const char *id;
    int64_t now_ms;
    int found, already;
} revoke_arg;

static dg_err revoke_fn(sqlite3 *db, void *argp, char *err, size_t errlen)
{
    revoke_arg *a = argp;
    sqlite3_stmt *st = NULL;
    dg_err rc = DG_EDB;
    if (sqlite3_prepare_v2(db, "SELECT revoked_ms FROM overrides WHERE id = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        goto fail;
    bind_txt(st, 1, a->id);
    int src = sqlite3_step(st);
    if (src == SQLITE_DONE) {
        rc = DG_OK; /* not found: reported through a->found */
        goto done;
    }
    if (src != SQLITE_ROW) goto fail;
    a->found = 1;
    a->already = sqlite3_column_type(st, 0) != SQLITE_NULL;
    sqlite3_finalize(st);
    st = NULL;
    if (!a->already) {
        if (sqlite3_prepare_v2(db, "UPDATE overrides SET revoked_ms = ?2 WHERE id = ?1", -1, &st,
                               NULL) != SQLITE_OK)
            goto fail;
        bind_txt(st, 1, a->id);
        sqlite3_bind_int64(st, 2, a->now_ms);
        if (sqlite3_step(st) != SQLITE_DONE) goto fail;
    }
    rc = DG_OK;
    goto done;
fail:
    rc = dg_errf(err, errlen, DG_EDB, "decision log: overrides: %s", sqlite3_errmsg(db));
done:
    sqlite3_finalize(st);
    return rc;
}

dg_err dlog_override_revoke(dlog *l, const char *id, int64_t now_ms, int *already)
{
    if (already) *already = 0;
    if (l == NULL || !nonempty(id)) return DG_EINVAL;
    revoke_arg a = {.id = id, .now_ms = now_ms};
    char err[256];
    dg_err rc = dlog_write_call(l, revoke_fn, &a, err, sizeof err);
    if (rc != DG_OK) return rc;
    if (!a.found) return DG_ENOTFOUND;
    if (already) *already = a.already;
    return DG_OK;
}

/* ---- reads ----------------------------------------------------------------------------- */

typedef struct {
    const char *id;
    int64_t now_ms;
    char *json;
} get_arg;

static dg_err get_row(sqlite3_stmt *st, void *argp)
{
    get_arg *a = argp;
    bind_txt(st, 1, a->id);
    int src = sqlite3_step(st);
    if (src == SQLITE_DONE) return DG_ENOTFOUND;
    if (src != SQLITE_ROW) return DG_EDB;
    cJSON *o = row_json(st, a->now_ms);
    a->json = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return a->json ? DG_OK : DG_ENOMEM;
}

dg_err dlog_override_get(dlog *l, const char *id, int64_t now_ms, char **json)
{
    *json = NULL;
    if (l == NULL || !nonempty(id)) return DG_EINVAL;
    get_arg a = {.id = id, .now_ms = now_ms};
    dg_err rc =
        dlog_read_query(l, "SELECT " OV_COLS " FROM overrides o WHERE o.id = ?1", get_row, &a);
    *json = a.json;
    return rc;
}

/* Cursor: "<created_ms>.<id>" of the last row of a page (ids are Crockford base32). */
static int cursor_parse(const char *cur, int64_t *ms, char *id, size_t idlen)
{
    const char *dot = strchr(cur, '.');
    if (dot == NULL || dot == cur || dot - cur > 19) return 0;
    int64_t v = 0;
    for (const char *p = cur; p < dot; p++) {
        if (*p < '0' || *p > '9') return 0;
        v = v * 10 + (*p - '0');
    }
    size_t n = strlen(dot + 1);
    if (n == 0 || n >= idlen || n > OV_ID_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = dot[1 + i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              c == '_'))
            return 0;
    }
    memcpy(id, dot + 1, n + 1);
    *ms = v;
    return 1;
}

typedef struct {
    const dlog_override_filter *q;
    int limit;
    int has_cursor;
    int64_t cur_ms;
    char cur_id[OV_ID_MAX + 1];
    char *json;
} query_arg;

static dg_err query_rows(sqlite3_stmt *st, void *argp)
{
    query_arg *a = argp;
    const dlog_override_filter *q = a->q;
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "overrides");
    dg_err rc = DG_EDB;
    if (root == NULL || arr == NULL) {
        rc = DG_ENOMEM;
        goto done;
    }
    if (q->opportunity) bind_txt(st, sqlite3_bind_parameter_index(st, ":opp"), q->opportunity);
    if (q->active_only) sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":now"), q->now_ms);
    if (a->has_cursor) {
        sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":cms"), a->cur_ms);
        bind_txt(st, sqlite3_bind_parameter_index(st, ":cid"), a->cur_id);
    }
    sqlite3_bind_int(st, sqlite3_bind_parameter_index(st, ":lim"), a->limit + 1);
    int n = 0, more = 0, src;
    int64_t last_ms = 0;
    char last_id[OV_ID_MAX + 1] = "";
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == a->limit) {
            more = 1;
            break;
        }
        cJSON *o = row_json(st, q->now_ms);
        if (o == NULL) {
            rc = DG_ENOMEM;
            goto done;
        }
        cJSON_AddItemToArray(arr, o);
        last_ms = sqlite3_column_int64(st, 6);
        snprintf(last_id, sizeof last_id, "%s", col_txt(st, 0));
        n++;
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE) goto done;
    if (more) {
        char cur[OV_ID_MAX + 32];
        snprintf(cur, sizeof cur, "%" PRId64 ".%s", last_ms, last_id);
        cJSON_AddStringToObject(root, "next_cursor", cur);
    } else {
        cJSON_AddNullToObject(root, "next_cursor");
    }
    a->json = cJSON_PrintUnformatted(root);
    rc = a->json ? DG_OK : DG_ENOMEM;
done:
    cJSON_Delete(root);
    return rc;
}

dg_err dlog_override_query(dlog *l, const dlog_override_filter *q, char **json, char *err,
                           size_t errlen)
{
    *json = NULL;
    if (l == NULL || q == NULL) return dg_errf(err, errlen, DG_EINVAL, "decision log: no log");
    query_arg a = {.q = q};
    a.limit = q->limit <= 0 ? OV_LIMIT_DEFAULT : q->limit > OV_LIMIT_MAX ? OV_LIMIT_MAX : q->limit;
    if (q->cursor) {
        if (!cursor_parse(q->cursor, &a.cur_ms, a.cur_id, sizeof a.cur_id))
            return dg_errf(err, errlen, DG_EINVAL, "invalid cursor");
        a.has_cursor = 1;
    }
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT " OV_COLS " FROM overrides o WHERE 1%s%s%s"
             " ORDER BY o.created_ms DESC, o.id DESC LIMIT :lim",
             q->opportunity ? " AND o.opp_id = :opp" : "",
             q->active_only ? " AND o.revoked_ms IS NULL AND o.expires_ms > :now" : "",
             a.has_cursor ? " AND (o.created_ms, o.id) < (:cms, :cid)" : "");
    dg_err rc = dlog_read_query(l, sql, query_rows, &a);
    if (rc == DG_EDB) dg_errf(err, errlen, DG_EDB, "decision log: overrides cannot be read");
    *json = a.json;
    return rc;
}

typedef struct {
    const char *opp_id;
    int64_t now_ms;
    dg_override *v;
    size_t n;
} live_arg;

static char *dup_col(sqlite3_stmt *st, int col, int *oom)
{
    char *s = strdup(col_txt(st, col));
    if (s == NULL) *oom = 1;
    return s;
}

static dg_err live_rows(sqlite3_stmt *st, void *argp)
{
    live_arg *a = argp;
    bind_txt(st, 1, a->opp_id);
    sqlite3_bind_int64(st, 2, a->now_ms);
    sqlite3_bind_int(st, 3, OV_LIVE_MAX);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (a->v == NULL && (a->v = calloc(OV_LIVE_MAX, sizeof *a->v)) == NULL) return DG_ENOMEM;
        dg_override *o = &a->v[a->n++];
        int oom = 0;
        o->id = dup_col(st, 0, &oom);
        o->rule = dup_col(st, 1, &oom);
        o->approved_by = dup_col(st, 2, &oom);
        o->reason = dup_col(st, 3, &oom);
        /* the rules compare seconds: round up, so it never outlives expires_ms */
        int64_t ms = sqlite3_column_int64(st, 4);
        o->expires_at = ms / 1000 + (ms % 1000 != 0);
        if (oom) return DG_ENOMEM;
    }
    return src == SQLITE_DONE ? DG_OK : DG_EDB;
}

dg_err dlog_overrides_live(dlog *l, const char *opp_id, int64_t now_ms, dg_override **out,
                           size_t *n)
{
    *out = NULL;
    *n = 0;
    if (l == NULL || opp_id == NULL) return DG_EINVAL;
    if (!dlog_ovr_maybe(l, opp_id)) return DG_OK; /* no override was ever granted this deal */
    live_arg a = {.opp_id = opp_id, .now_ms = now_ms};
    dg_err rc = dlog_read_query(l,
                                "SELECT id, rule, approved_by, reason, expires_ms FROM overrides"
                                " WHERE opp_id = ?1 AND revoked_ms IS NULL AND expires_ms > ?2"
                                " ORDER BY expires_ms DESC, id LIMIT ?3",
                                live_rows, &a);
    if (rc != DG_OK) {
        for (size_t i = 0; i < a.n; i++)
            dg_override_free(&a.v[i]);
        free(a.v);
        return rc;
    }
    *out = a.v;
    *n = a.n;
    return DG_OK;
}
