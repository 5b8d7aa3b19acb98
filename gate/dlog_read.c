/* dlog_read.c — the read side of the decision log for /v1/kpis, /ui and /metrics.
 *
 * Nothing here scans the decisions table: KPIs sum the per-day counters of their window
 * (`daily`, kept on write by dlog.c and dlog_kpi.c), blocked deals come from `deals` through
 * its partial index on blocked deals, recent decisions read the newest rows of the time (or
 * owner) index. Each call runs on the log's reader pool inside one read transaction, so the
 * figures it returns are one consistent snapshot. Definitions: docs/kpis.md.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config/money.h"
#include "gate/dlog_sqlite.h"

#define READ_LIMIT_DEFAULT 100
#define READ_LIMIT_MAX 500
#define READ_SCAN_MAX 100000
#define READ_COUNT_CAP 5000 /* blocked deals counted through a cloud/reason filter */

/* ---- helpers ------------------------------------------------------------------------------ */

/* 1 if s is "YYYY-MM-DD" with a plausible month and day. */
static int valid_day(const char *s)
{
    if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-') return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9')) return 0;
    int m = (s[5] - '0') * 10 + (s[6] - '0'), d = (s[8] - '0') * 10 + (s[9] - '0');
    return m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

static int clamp_limit(int limit, int dflt)
{
    if (limit <= 0) return dflt;
    return limit > READ_LIMIT_MAX ? READ_LIMIT_MAX : limit;
}

static void bind_txt(sqlite3_stmt *st, const char *name, const char *v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i > 0) sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
}

static void bind_i64(sqlite3_stmt *st, const char *name, int64_t v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i > 0) sqlite3_bind_int64(st, i, v);
}

/* Adds a copy of column i as a string member (null for SQL NULL). */
static void add_col_str(cJSON *o, const char *k, sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    if (s)
        cJSON_AddStringToObject(o, k, s);
    else
        cJSON_AddNullToObject(o, k);
}

static void add_col_int(cJSON *o, const char *k, sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        cJSON_AddNullToObject(o, k);
    else
        cJSON_AddNumberToObject(o, k, (double)sqlite3_column_int64(st, i));
}

/* Prints o into *json (takes o). DG_OK or DG_ENOMEM. */
static dg_err finish_json(cJSON *o, char **json, char *err, size_t errlen)
{
    char *t = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (t == NULL) return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    *json = t;
    return DG_OK;
}

/* Exact decimal string of minor units of ccy. */
static void money_text(int64_t minor, const char *ccy, char *buf, size_t n)
{
    int e = dg_ccy_exponent(ccy);
    dg_amount_format(minor, e < 0 ? 2 : e, buf, n);
}

/* ---- KPIs --------------------------------------------------------------------------------- */

/* One summed counter of the window. */
typedef struct {
    char *metric, *key;
    int64_t n;
} kpi_sum;

typedef struct {
    const dlog_kpi_query *q;
    int reps;   /* 1: only the per-rep commission counters */
    kpi_sum *v; /* the sums, in first-seen order */
    size_t n, cap;
    size_t *slot, nslot; /* open-addressing index into v (+1; 0 = empty), nslot a power of 2 */
    int oom;
    char err[256];
} kpi_read;

static uint64_t hash2(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (; *a; a++)
        h = (h ^ (unsigned char)*a) * 1099511628211u;
    h = (h ^ 0xff) * 1099511628211u;
    for (; *b; b++)
        h = (h ^ (unsigned char)*b) * 1099511628211u;
    return h;
}

/* Adds n to the sum of (metric, key). Returns 0, or -1 when out of memory. */
static int sum_add(kpi_read *kr, const char *metric, const char *key, int64_t n)
{
    if (kr->n + 1 > kr->nslot / 2) { /* grow the index (and rehash) at half load */
        size_t ns = kr->nslot ? kr->nslot * 2 : 1024;
        size_t *slot = calloc(ns, sizeof *slot);
        if (slot == NULL) return -1;
        for (size_t i = 0; i < kr->n; i++) {
            size_t j = (size_t)hash2(kr->v[i].metric, kr->v[i].key) & (ns - 1);
            while (slot[j])
                j = (j + 1) & (ns - 1);
            slot[j] = i + 1;
        }
        free(kr->slot);
        kr->slot = slot;
        kr->nslot = ns;
    }
    size_t j = (size_t)hash2(metric, key) & (kr->nslot - 1);
    while (kr->slot[j]) {
        kpi_sum *s = &kr->v[kr->slot[j] - 1];
        if (strcmp(s->key, key) == 0 && strcmp(s->metric, metric) == 0) {
            s->n += n;
            return 0;
        }
        j = (j + 1) & (kr->nslot - 1);
    }
    if (kr->n == kr->cap) {
        size_t cap = kr->cap ? kr->cap * 2 : 256;
        kpi_sum *v = realloc(kr->v, cap * sizeof *v);
        if (v == NULL) return -1;
        kr->v = v;
        kr->cap = cap;
    }
    kpi_sum *s = &kr->v[kr->n];
    s->metric = strdup(metric);
    s->key = strdup(key);
    s->n = n;
    if (s->metric == NULL || s->key == NULL) {
        free(s->metric);
        free(s->key);
        return -1;
    }
    kr->slot[j] = ++kr->n;
    return 0;
}

/* Sums the window's counters in C (a hash by metric and key) rather than with GROUP BY,
 * which would sort every row of the window. Only the keys a figure can use are read: those
 * of the cloud asked for ("*" for all), plus the per-cloud revenue and the codes. */
static dg_err read_sums(sqlite3 *db, void *arg)
{
    kpi_read *kr = arg;
    sqlite3_stmt *st = NULL;
    dg_err rc = DG_EDB;
    const char *sql =
        kr->reps ? "SELECT metric, key, count FROM daily WHERE day >= :since AND day <= :until"
                   " AND metric IN ('k_comp_rep', 'k_comp_rep_short')"
                 : "SELECT metric, key, count FROM daily WHERE day >= :since AND day <= :until"
                   " AND (metric GLOB 'k_*' OR metric = 'reason')"
                   " AND (metric IN ('reason', 'k_revenue') OR key = :who"
                   " OR substr(key, 1, :wlen) = :wprefix)";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) goto done;
    bind_txt(st, ":since", kr->q->since_day);
    bind_txt(st, ":until", kr->q->until_day);
    if (!kr->reps) {
        const char *who = kr->q->cloud ? kr->q->cloud : "*";
        char prefix[128];
        snprintf(prefix, sizeof prefix, "%s|", who);
        bind_txt(st, ":who", who);
        bind_txt(st, ":wprefix", prefix);
        bind_i64(st, ":wlen", (int64_t)strlen(prefix));
    }
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *m = (const char *)sqlite3_column_text(st, 0);
        const char *k = (const char *)sqlite3_column_text(st, 1);
        if (sum_add(kr, m ? m : "", k ? k : "", sqlite3_column_int64(st, 2)) != 0) {
            kr->oom = 1;
            break;
        }
    }
    if (!kr->oom && src != SQLITE_DONE) goto done;
    rc = kr->oom ? DG_ENOMEM : DG_OK;
done:
    if (rc == DG_EDB) snprintf(kr->err, sizeof kr->err, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc;
}

static void kpi_read_free(kpi_read *kr)
{
    for (size_t i = 0; i < kr->n; i++) {
        free(kr->v[i].metric);
        free(kr->v[i].key);
    }
    free(kr->v);
    free(kr->slot);
}

/* The sum of (metric, key), 0 when absent. */
static int64_t sum_of(const kpi_read *kr, const char *metric, const char *key)
{
    if (kr->nslot == 0) return 0;
    size_t j = (size_t)hash2(metric, key) & (kr->nslot - 1);
    while (kr->slot[j]) {
        const kpi_sum *s = &kr->v[kr->slot[j] - 1];
        if (strcmp(s->key, key) == 0 && strcmp(s->metric, metric) == 0) return s->n;
        j = (j + 1) & (kr->nslot - 1);
    }
    return 0;
}

/* If key is "<prefix>|rest", returns rest, else NULL. */
static const char *after_prefix(const char *key, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(key, prefix, n) == 0 && key[n] == '|' ? key + n + 1 : NULL;
}

static void add_rate(cJSON *o, const char *k, int64_t num, int64_t den)
{
    if (den <= 0)
        cJSON_AddNullToObject(o, k);
    else
        cJSON_AddNumberToObject(o, k, (double)num / (double)den);
}

typedef struct {
    int64_t days, n;
} day_count;

static int day_count_cmp(const void *a, const void *b)
{
    const day_count *x = a, *y = b;
    return (x->days > y->days) - (x->days < y->days);
}

/* Median of the close-day histogram of `who` ("*" or a cloud); null when empty. */
static dg_err add_median(cJSON *o, const kpi_read *kr, const char *who)
{
    day_count *h = NULL;
    size_t nh = 0;
    int64_t total = 0;
    for (size_t i = 0; i < kr->n; i++) {
        if (strcmp(kr->v[i].metric, DLOG_K_CLOSE_DAYS) != 0 || kr->v[i].n <= 0) continue;
        const char *rest = after_prefix(kr->v[i].key, who);
        char *end = NULL;
        long long d = rest ? strtoll(rest, &end, 10) : 0;
        if (rest == NULL || end == rest || *end != '\0') continue;
        day_count *nv = realloc(h, (nh + 1) * sizeof *h);
        if (nv == NULL) {
            free(h);
            return DG_ENOMEM;
        }
        h = nv;
        h[nh].days = d;
        h[nh++].n = kr->v[i].n;
        total += kr->v[i].n;
    }
    if (total == 0) {
        cJSON_AddNullToObject(o, "median_days_registration_to_close");
        free(h);
        return DG_OK;
    }
    qsort(h, nh, sizeof *h, day_count_cmp);
    /* the values at 0-based ranks (total-1)/2 and total/2 (equal when total is odd) */
    int64_t lo_rank = (total - 1) / 2, hi_rank = total / 2, seen = 0, lo = 0, hi = 0;
    for (size_t i = 0; i < nh; i++) {
        if (lo_rank >= seen && lo_rank < seen + h[i].n) lo = h[i].days;
        if (hi_rank >= seen && hi_rank < seen + h[i].n) hi = h[i].days;
        seen += h[i].n;
    }
    free(h);
    cJSON_AddNumberToObject(o, "median_days_registration_to_close", (double)(lo + hi) / 2.0);
    return DG_OK;
}

/* Adds {"CCY": "decimal"} members to o for every (metric, "<who>|CCY") sum that is not 0. */
static void add_money_by_ccy(cJSON *o, const kpi_read *kr, const char *metric, const char *who)
{
    for (size_t i = 0; i < kr->n; i++) {
        if (strcmp(kr->v[i].metric, metric) != 0 || kr->v[i].n == 0) continue;
        const char *ccy = after_prefix(kr->v[i].key, who);
        if (ccy == NULL || !dg_ccy_valid(ccy)) continue;
        char amt[DG_MONEY_STRLEN];
        money_text(kr->v[i].n, ccy, amt, sizeof amt);
        cJSON_AddStringToObject(o, ccy, amt);
    }
}

dg_err dlog_kpis(dlog *l, const dlog_kpi_query *q, char **json, char *err, size_t errlen)
{
    if (json) *json = NULL;
    if (l == NULL || q == NULL || json == NULL)
        return dg_errf(err, errlen, DG_EINVAL, "decision log: no log");
    if (!valid_day(q->since_day) || !valid_day(q->until_day))
        return dg_errf(err, errlen, DG_EINVAL, "since and until must be dates (YYYY-MM-DD)");
    if (strcmp(q->since_day, q->until_day) > 0)
        return dg_errf(err, errlen, DG_EINVAL, "until is before since");
    if (q->cloud && (*q->cloud == '\0' || strchr(q->cloud, '|') || strcmp(q->cloud, "*") == 0))
        return dg_errf(err, errlen, DG_EINVAL, "invalid cloud");

    kpi_read kr = {.q = q};
    dg_err rc = dlog_read_call(l, read_sums, &kr);
    if (rc != DG_OK) {
        kpi_read_free(&kr);
        if (rc == DG_ENOMEM) return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
        return dg_errf(err, errlen, DG_EDB, "decision log: kpis: %s", kr.err);
    }
    const char *who = q->cloud ? q->cloud : "*";
    char key[128];
    cJSON *o = cJSON_CreateObject();

    int64_t reached = sum_of(&kr, DLOG_K_REACHED, who);
    int64_t verified = sum_of(&kr, DLOG_K_REACHED_VER, who);
    int64_t first = sum_of(&kr, DLOG_K_FIRST_PASS, who);
    add_rate(o, "registration_rate", verified, reached);
    add_rate(o, "first_pass_rate", first, reached);
    cJSON_AddNumberToObject(o, "late_registrations", (double)(reached - first));

    int64_t wr, lr, wu, lu;
    snprintf(key, sizeof key, "%s|reg", who);
    wr = sum_of(&kr, DLOG_K_WON, key);
    lr = sum_of(&kr, DLOG_K_LOST, key);
    snprintf(key, sizeof key, "%s|unreg", who);
    wu = sum_of(&kr, DLOG_K_WON, key);
    lu = sum_of(&kr, DLOG_K_LOST, key);
    add_rate(o, "win_rate_registered", wr, wr + lr);
    add_rate(o, "win_rate_unregistered", wu, wu + lu);

    add_rate(o, "inbound_share", sum_of(&kr, DLOG_K_VREG_IN, who), sum_of(&kr, DLOG_K_VREG, who));

    /* attributed revenue: {"cloud": {"CCY": "decimal"}} */
    cJSON *rev = cJSON_AddObjectToObject(o, "attributed_revenue");
    for (size_t i = 0; rev && i < kr.n; i++) {
        if (strcmp(kr.v[i].metric, DLOG_K_REVENUE) != 0 || kr.v[i].n == 0) continue;
        const char *bar = strrchr(kr.v[i].key, '|');
        if (bar == NULL || !dg_ccy_valid(bar + 1)) continue;
        size_t cn = (size_t)(bar - kr.v[i].key);
        if (cn == 0 || cn >= sizeof key) continue;
        memcpy(key, kr.v[i].key, cn);
        key[cn] = '\0';
        if (q->cloud && strcmp(key, q->cloud) != 0) continue;
        cJSON *per = cJSON_GetObjectItemCaseSensitive(rev, key);
        if (per == NULL) per = cJSON_AddObjectToObject(rev, key);
        char amt[DG_MONEY_STRLEN];
        money_text(kr.v[i].n, bar + 1, amt, sizeof amt);
        if (per) cJSON_AddStringToObject(per, bar + 1, amt);
    }

    if (add_median(o, &kr, who) != DG_OK) {
        cJSON_Delete(o);
        kpi_read_free(&kr);
        return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    }

    cJSON *blocks = cJSON_AddObjectToObject(o, "blocks_by_code");
    for (size_t i = 0; blocks && i < kr.n; i++) {
        if (kr.v[i].n <= 0) continue;
        const char *code = NULL;
        if (q->cloud == NULL && strcmp(kr.v[i].metric, "reason") == 0)
            code = kr.v[i].key;
        else if (q->cloud && strcmp(kr.v[i].metric, DLOG_K_BLOCK) == 0)
            code = after_prefix(kr.v[i].key, q->cloud);
        if (code && *code) cJSON_AddNumberToObject(blocks, code, (double)kr.v[i].n);
    }

    if (q->comp) {
        cJSON_AddNumberToObject(o, "comp_violations", (double)sum_of(&kr, DLOG_K_COMP_VIOL, who));
        cJSON *sh = cJSON_AddObjectToObject(o, "comp_total_shortfall");
        if (sh) add_money_by_ccy(sh, &kr, DLOG_K_COMP_SHORT, who);
    } else {
        cJSON_AddNullToObject(o, "comp_violations");
        cJSON_AddNullToObject(o, "comp_total_shortfall");
    }
    kpi_read_free(&kr);
    return finish_json(o, json, err, errlen);
}

/* ---- commission violations by rep -------------------------------------------------------- */

typedef struct {
    char *rep;
    int64_t violations;
    cJSON *shortfall; /* {"CCY": "decimal"} */
} rep_row;

static int rep_cmp(const void *a, const void *b)
{
    const rep_row *x = a, *y = b;
    if (x->violations != y->violations) return x->violations < y->violations ? 1 : -1;
    return strcmp(x->rep, y->rep);
}

dg_err dlog_comp_by_rep(dlog *l, const dlog_kpi_query *q, int limit, char **json, char *err,
                        size_t errlen)
{
    if (json) *json = NULL;
    if (l == NULL || q == NULL || json == NULL)
        return dg_errf(err, errlen, DG_EINVAL, "decision log: no log");
    if (!valid_day(q->since_day) || !valid_day(q->until_day))
        return dg_errf(err, errlen, DG_EINVAL, "since and until must be dates (YYYY-MM-DD)");
    kpi_read kr = {.q = q, .reps = 1};
    dg_err rc = dlog_read_call(l, read_sums, &kr);
    if (rc != DG_OK) {
        kpi_read_free(&kr);
        return dg_errf(err, errlen, rc == DG_ENOMEM ? DG_ENOMEM : DG_EDB,
                       "decision log: comp by rep: %s", kr.err);
    }
    rep_row *reps = NULL;
    size_t nreps = 0;
    int oom = 0;
    /* keys are "CCY|rep" for both metrics */
    for (size_t i = 0; !oom && i < kr.n; i++) {
        int is_count = strcmp(kr.v[i].metric, DLOG_K_COMP_REP) == 0;
        int is_short = strcmp(kr.v[i].metric, DLOG_K_COMP_REP_SHORT) == 0;
        const char *bar = strchr(kr.v[i].key, '|');
        if ((!is_count && !is_short) || bar == NULL || kr.v[i].n == 0) continue;
        const char *rep = bar + 1;
        rep_row *r = NULL;
        for (size_t k = 0; k < nreps && !r; k++)
            if (strcmp(reps[k].rep, rep) == 0) r = &reps[k];
        if (r == NULL) {
            rep_row *nv = realloc(reps, (nreps + 1) * sizeof *reps);
            if (nv == NULL) {
                oom = 1;
                break;
            }
            reps = nv;
            r = &reps[nreps];
            r->rep = strdup(rep);
            r->violations = 0;
            r->shortfall = cJSON_CreateObject();
            if (r->rep == NULL || r->shortfall == NULL) {
                free(r->rep);
                cJSON_Delete(r->shortfall);
                oom = 1;
                break;
            }
            nreps++;
        }
        if (is_count) {
            r->violations += kr.v[i].n;
        } else {
            char ccy[4] = "";
            size_t cn = (size_t)(bar - kr.v[i].key);
            if (cn != 3) continue;
            memcpy(ccy, kr.v[i].key, 3);
            char amt[DG_MONEY_STRLEN];
            money_text(kr.v[i].n, ccy, amt, sizeof amt);
            cJSON_AddStringToObject(r->shortfall, ccy, amt);
        }
    }
    kpi_read_free(&kr);
    cJSON *o = oom ? NULL : cJSON_CreateObject();
    cJSON *arr = o ? cJSON_AddArrayToObject(o, "reps") : NULL;
    if (reps) qsort(reps, nreps, sizeof *reps, rep_cmp);
    int lim = clamp_limit(limit, READ_LIMIT_DEFAULT);
    for (size_t i = 0; i < nreps; i++) {
        if (arr && i < (size_t)lim && reps[i].violations > 0) {
            cJSON *it = cJSON_CreateObject();
            cJSON_AddStringToObject(it, "rep", reps[i].rep);
            cJSON_AddNumberToObject(it, "violations", (double)reps[i].violations);
            cJSON_AddItemToObject(it, "shortfall", reps[i].shortfall);
            reps[i].shortfall = NULL;
            cJSON_AddItemToArray(arr, it);
        }
        cJSON_Delete(reps[i].shortfall);
        free(reps[i].rep);
    }
    free(reps);
    return finish_json(o, json, err, errlen);
}

/* ---- blocked now and recent decisions ---------------------------------------------------- */

typedef struct {
    const dlog_ui_filter *f;
    int scan;
    cJSON *out;
    char err[256];
} ui_read;

/* The WHERE fragments for the filters on a row with `clouds` and `reasons` JSON columns. */
static void filter_sql(char *sql, size_t cap, const dlog_ui_filter *f, const char *owner_col,
                       const char *clouds_col, const char *reasons_col)
{
    size_t len = strlen(sql);
    if (f->owner) len += (size_t)snprintf(sql + len, cap - len, " AND %s = :owner", owner_col);
    if (len < cap && f->cloud)
        len += (size_t)snprintf(sql + len, cap - len,
                                " AND instr(%s, :cloudq) > 0 AND EXISTS (SELECT 1 FROM"
                                " json_each(%s) WHERE value = :cloud)",
                                clouds_col, clouds_col);
    if (len < cap && f->reason)
        snprintf(sql + len, cap - len,
                 " AND instr(%s, :reason) > 0 AND EXISTS (SELECT 1 FROM json_each(%s)"
                 " WHERE json_extract(value, '$.code') = :reason)",
                 reasons_col, reasons_col);
}

static void bind_filter(sqlite3_stmt *st, const dlog_ui_filter *f)
{
    if (f->owner) bind_txt(st, ":owner", f->owner);
    if (f->cloud) {
        char q[160];
        snprintf(q, sizeof q, "\"%s\"", f->cloud); /* a pre-filter only; json_each decides */
        bind_txt(st, ":cloudq", q);
        bind_txt(st, ":cloud", f->cloud);
    }
    if (f->reason) bind_txt(st, ":reason", f->reason);
}

/* Adds one blocked deal (a row of BLOCKED_COLS) to arr. DG_OK or DG_ENOMEM. */
static dg_err blocked_item(cJSON *arr, sqlite3_stmt *st)
{
    cJSON *it = cJSON_CreateObject();
    if (it == NULL || arr == NULL) {
        cJSON_Delete(it);
        return DG_ENOMEM;
    }
    cJSON_AddItemToArray(arr, it);
    add_col_str(it, "opportunity_id", st, 0);
    add_col_str(it, "name", st, 1);
    add_col_str(it, "account", st, 2);
    add_col_str(it, "owner", st, 3);
    add_col_int(it, "amount", st, 4);
    add_col_str(it, "currency", st, 5);
    const char *cl = (const char *)sqlite3_column_text(st, 6);
    cJSON *clouds = cl ? cJSON_Parse(cl) : NULL;
    if (!cJSON_IsArray(clouds)) {
        cJSON_Delete(clouds);
        clouds = cJSON_CreateArray();
    }
    cJSON_AddItemToObject(it, "clouds", clouds);
    add_col_str(it, "stage", st, 7);
    add_col_str(it, "message", st, 8);
    cJSON *codes = cJSON_AddArrayToObject(it, "codes");
    const char *rs = (const char *)sqlite3_column_text(st, 9);
    cJSON *reasons = rs ? cJSON_Parse(rs) : NULL;
    const cJSON *r;
    cJSON_ArrayForEach(r, reasons)
    {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(r, "code");
        if (codes && cJSON_IsString(code))
            cJSON_AddItemToArray(codes, cJSON_CreateString(code->valuestring));
    }
    cJSON_Delete(reasons);
    add_col_int(it, "since", st, 10);
    add_col_str(it, "decision_id", st, 11);
    add_col_int(it, "time", st, 12);
    return DG_OK;
}

#define BLOCKED_COLS                                                                               \
    "SELECT d.opp_id, d.name, d.account, d.owner, d.amount, d.currency, d.clouds,"                 \
    " coalesce(k.last_to, d.last_stage), d.last_message, d.last_reasons,"                          \
    " coalesce(k.blocked_since_ms, d.last_time_ms), d.last_decision_id, d.last_time_ms"            \
    " FROM deals d LEFT JOIN deal_kpi k ON k.opp_id = d.opp_id"
#define BLOCKED_ORDER " ORDER BY d.last_time_ms DESC, d.opp_id DESC"

/* Without a cloud or reason filter the total is counted on the partial index (no row is
 * read) and the page read with LIMIT. With one, the rows must be read to test them: one
 * scan, newest first, counts the matches (up to READ_COUNT_CAP) and keeps the first page's
 * ids, which are then read in full by primary key. */
static dg_err read_blocked(sqlite3 *db, void *arg)
{
    ui_read *u = arg;
    const dlog_ui_filter *f = u->f;
    sqlite3_stmt *st = NULL;
    dg_err rc = DG_EDB;
    int lim = clamp_limit(f->limit, READ_LIMIT_DEFAULT), src;
    char where[1024] = "d.blocked = 1";
    filter_sql(where, sizeof where, f, "d.owner", "d.clouds", "d.last_reasons");
    char sql[2048], **ids = NULL;
    int64_t total = 0;
    size_t nids = 0;
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) goto done;
    cJSON *arr = cJSON_AddArrayToObject(u->out, "deals");
    if (arr == NULL) {
        rc = DG_ENOMEM;
        goto done;
    }

    if (f->cloud == NULL && f->reason == NULL) {
        /* by owner: test the owner on the covering index, not on every blocked deal's row */
        snprintf(sql, sizeof sql, "SELECT count(*) FROM deals d%s WHERE %s",
                 f->owner ? " INDEXED BY deals_blocked_filter" : "", where);
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) goto done;
        bind_filter(st, f);
        if (sqlite3_step(st) != SQLITE_ROW) goto done;
        total = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        snprintf(sql, sizeof sql, BLOCKED_COLS " WHERE %s" BLOCKED_ORDER " LIMIT :lim", where);
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) goto done;
        bind_filter(st, f);
        bind_i64(st, ":lim", lim);
        while ((src = sqlite3_step(st)) == SQLITE_ROW)
            if ((rc = blocked_item(arr, st)) != DG_OK) goto done;
        rc = DG_EDB;
        if (src != SQLITE_DONE) goto done;
    } else {
        snprintf(sql, sizeof sql,
                 "SELECT d.opp_id FROM deals d WHERE %s" BLOCKED_ORDER " LIMIT :cap", where);
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) goto done;
        bind_filter(st, f);
        bind_i64(st, ":cap", READ_COUNT_CAP + 1);
        if ((ids = calloc((size_t)lim, sizeof *ids)) == NULL) {
            rc = DG_ENOMEM;
            goto done;
        }
        while ((src = sqlite3_step(st)) == SQLITE_ROW) {
            if (total++ < lim) {
                const char *id = (const char *)sqlite3_column_text(st, 0);
                if (id && (ids[nids++] = strdup(id)) == NULL) {
                    rc = DG_ENOMEM;
                    goto done;
                }
            }
        }
        if (src != SQLITE_DONE) goto done;
        sqlite3_finalize(st);
        st = NULL;
        if (total > READ_COUNT_CAP) {
            total = READ_COUNT_CAP;
            cJSON_AddTrueToObject(u->out, "more");
        }
        if (sqlite3_prepare_v2(db, BLOCKED_COLS " WHERE d.opp_id = ?1", -1, &st, NULL) != SQLITE_OK)
            goto done;
        for (size_t i = 0; i < nids; i++) {
            sqlite3_bind_text(st, 1, ids[i], -1, SQLITE_STATIC);
            src = sqlite3_step(st);
            if (src == SQLITE_ROW && (rc = blocked_item(arr, st)) != DG_OK) goto done;
            rc = DG_EDB;
            if (src != SQLITE_ROW && src != SQLITE_DONE) goto done;
            sqlite3_reset(st);
        }
    }
    cJSON_AddNumberToObject(u->out, "total", (double)total);
    rc = DG_OK;
done:
    if (rc == DG_EDB) snprintf(u->err, sizeof u->err, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    for (size_t i = 0; i < nids; i++)
        free(ids[i]);
    free(ids);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    return rc;
}

dg_err dlog_blocked(dlog *l, const dlog_ui_filter *f, char **json, char *err, size_t errlen)
{
    static const dlog_ui_filter none = {0};
    if (json) *json = NULL;
    if (l == NULL || json == NULL) return dg_errf(err, errlen, DG_EINVAL, "decision log: no log");
    ui_read u = {.f = f ? f : &none, .out = cJSON_CreateObject()};
    if (u.out == NULL) return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    dg_err rc = dlog_read_call(l, read_blocked, &u);
    if (rc != DG_OK) {
        cJSON_Delete(u.out);
        return dg_errf(err, errlen, rc, "decision log: blocked deals: %s",
                       rc == DG_ENOMEM ? "out of memory" : u.err);
    }
    return finish_json(u.out, json, err, errlen);
}

static dg_err read_recent(sqlite3 *db, void *arg)
{
    ui_read *u = arg;
    const dlog_ui_filter *f = u->f;
    sqlite3_stmt *st = NULL;
    dg_err rc = DG_EDB;
    /* the owner filter picks the owner index; cloud and reason look at the newest `scan` */
    dlog_ui_filter outer = *f;
    outer.owner = NULL;
    char where[1024] = "1";
    filter_sql(where, sizeof where, &outer, "owner", "clouds", "reasons");
    if (f->reason) {
        size_t len = strlen(where);
        snprintf(where + len, sizeof where - len, " AND outcome = 'block'");
    }
    char sql[2048];
    snprintf(sql, sizeof sql,
             "SELECT decision_json FROM (SELECT time_ms, id, decision_json, clouds, reasons,"
             " outcome FROM decisions%s ORDER BY time_ms DESC, id DESC LIMIT :scan)"
             " WHERE %s ORDER BY time_ms DESC, id DESC LIMIT :lim",
             f->owner ? " WHERE owner = :owner" : "", where);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) goto done;
    bind_filter(st, f);
    bind_i64(st, ":scan", u->scan);
    bind_i64(st, ":lim", clamp_limit(f->limit, READ_LIMIT_DEFAULT));
    cJSON *arr = cJSON_AddArrayToObject(u->out, "decisions");
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        cJSON *d = t ? cJSON_Parse(t) : NULL;
        if (d == NULL || arr == NULL) {
            cJSON_Delete(d);
            continue; /* validated as a JSON object on append */
        }
        cJSON_AddItemToArray(arr, d);
    }
    if (src != SQLITE_DONE) goto done;
    rc = DG_OK;
done:
    if (rc == DG_EDB) snprintf(u->err, sizeof u->err, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc;
}

dg_err dlog_recent(dlog *l, const dlog_ui_filter *f, int scan, char **json, char *err,
                   size_t errlen)
{
    static const dlog_ui_filter none = {0};
    if (json) *json = NULL;
    if (l == NULL || json == NULL) return dg_errf(err, errlen, DG_EINVAL, "decision log: no log");
    if (scan <= 0 || scan > READ_SCAN_MAX) scan = READ_SCAN_MAX;
    if (f == NULL) f = &none;
    if (f->cloud == NULL && f->reason == NULL) scan = clamp_limit(f->limit, READ_LIMIT_DEFAULT);
    ui_read u = {.f = f, .scan = scan, .out = cJSON_CreateObject()};
    if (u.out == NULL) return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    dg_err rc = dlog_read_call(l, read_recent, &u);
    if (rc != DG_OK) {
        cJSON_Delete(u.out);
        return dg_errf(err, errlen, rc, "decision log: recent decisions: %s", u.err);
    }
    return finish_json(u.out, json, err, errlen);
}

/* ---- write-back queue depth ------------------------------------------------------------- */

static dg_err read_wb_pending(sqlite3 *db, void *arg)
{
    uint64_t *n = arg;
    sqlite3_stmt *st = NULL;
    dg_err rc = DG_EDB;
    /* the partial index writebacks_due holds exactly the pending jobs */
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM writebacks WHERE state = 'pending'", -1, &st,
                           NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        *n = (uint64_t)sqlite3_column_int64(st, 0);
        rc = DG_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

dg_err dlog_wb_pending(dlog *l, uint64_t *pending)
{
    *pending = 0;
    if (l == NULL) return DG_EDB;
    return dlog_read_call(l, read_wb_pending, pending);
}
