/* dlog_kpi.c — KPI state kept on write, so /v1/kpis and /ui read a few rows, not the log.
 *
 * Per-deal KPIs (registration rate, first pass, win rates, revenue, days to close, inbound
 * share) depend on a deal's whole history, and a later decision can change which day a deal
 * counts on (an older decision that arrives late, a reopened deal that is no longer won).
 * So each deal keeps, in `deal_kpi.accounted`, the list of counter increments it currently
 * contributes to `daily` ("day metric key n" lines). After every decision the deal's
 * contribution is computed afresh from its state (`deals`, `deal_regs`, the first allowed
 * gated move's registrations); when it differs from the stored list, the old list is taken
 * back out of `daily` and the new one added. The counters therefore always equal the sum of
 * every deal's current contribution, whatever order decisions arrive in, and a window's
 * KPIs are sums over its days. Per-decision counters (blocks by cloud and code) and
 * commission violations are plain increments. Definitions: docs/kpis.md.
 */
#include "gate/dlog_sqlite.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "config/money.h"

#define KPI_CLOUD_MAX 64 /* longest cloud key accounted (config keys are at most 64) */
#define KPI_MAX_CLOUDS 16
#define KPI_FRESH_MAX 64 /* registrations of one decision kept to account a new deal */
#define KPI_KEY_MAX 96
#define KPI_DAY_MS INT64_C(86400000)

enum { K_DEAL, K_STATE, K_STATE_PUT, K_REGS, K_REG_PUT, K_ADD, K_COUNT };

static const char *const ksql[K_COUNT] = {
    [K_DEAL] = "SELECT clouds, amount, currency, first_gated_ms, first_allowed_ms, won_ms, lost_ms"
               " FROM deals WHERE opp_id = ?1",
    [K_STATE] = "SELECT reach_checked, reach_verified, blocked_since_ms, last_to, last_ms, last_id,"
                " accounted FROM deal_kpi WHERE opp_id = ?1",
    [K_STATE_PUT] = "INSERT OR REPLACE INTO deal_kpi (opp_id, reach_checked, reach_verified,"
                    " blocked_since_ms, last_to, last_ms, last_id, accounted)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [K_REGS] = "SELECT cloud, verified_ms, created_ms, origin FROM deal_regs WHERE opp_id = ?1"
               " ORDER BY cloud",
    /* the earliest verification of a deal's registration in a cloud wins */
    [K_REG_PUT] = "INSERT INTO deal_regs (opp_id, cloud, reg_id, verified_ms, created_ms, origin)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (opp_id, cloud) DO UPDATE SET"
                  " reg_id = excluded.reg_id, verified_ms = excluded.verified_ms,"
                  " created_ms = excluded.created_ms, origin = excluded.origin"
                  " WHERE excluded.verified_ms < deal_regs.verified_ms",
    [K_ADD] = "INSERT INTO daily (day, metric, key, count) VALUES (?1, ?2, ?3, ?4)"
              " ON CONFLICT (day, metric, key) DO UPDATE SET count = count + excluded.count",
};

struct dlog_kpi {
    sqlite3 *db;
    sqlite3_stmt *st[K_COUNT];
    dlog_counts *counts; /* this batch's `daily` increments, written by dlog_kpi_flush */
};

/* ---- small sets of cloud keys ---------------------------------------------------------- */

typedef struct {
    char v[KPI_MAX_CLOUDS][KPI_CLOUD_MAX + 1];
    size_t n;
} cset;

static int cset_has(const cset *s, const char *c)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], c) == 0) return 1;
    return 0;
}

/* Adds c unless present, empty, too long or the set is full (such keys are not accounted). */
static void cset_add(cset *s, const char *c)
{
    if (c == NULL || *c == '\0' || strlen(c) > KPI_CLOUD_MAX || s->n == KPI_MAX_CLOUDS ||
        cset_has(s, c))
        return;
    snprintf(s->v[s->n++], KPI_CLOUD_MAX + 1, "%s", c);
}

/* Adds every string of a JSON array text (NULL or malformed: nothing). */
static void cset_add_json(cset *s, const char *json)
{
    cJSON *a = json ? cJSON_Parse(json) : NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, a)
    {
        if (cJSON_IsString(it)) cset_add(s, it->valuestring);
    }
    cJSON_Delete(a);
}

/* JSON array text of s (caller frees with free()); NULL when out of memory. */
static char *cset_json(const cset *s)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < s->n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(s->v[i]));
    char *t = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    return t;
}

/* ---- time --------------------------------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void dlog_kpi_day(int64_t time_ms, char out[16])
{
    time_t t = (time_t)floor_div(time_ms, 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL) {
        snprintf(out, 16, "0000-00-00");
        return;
    }
    snprintf(out, 16, "%04d-%02d-%02d", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
             tm.tm_mday % 100);
}

/* Reads n decimal digits at s. Returns -1 if any is not a digit. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Parses an RFC 3339 date ("2026-10-01") or date-time ("2026-10-01T09:00:00Z", fractions,
 * offsets) into unix ms. Returns 1, or 0 if s is not one. */
static int parse_time_ms(const char *s, int64_t *ms)
{
    if (s == NULL || strlen(s) < 10 || s[4] != '-' || s[7] != '-') return 0;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31) return 0;
    int64_t secs = days_from_civil(y, mo, d) * 86400;
    const char *p = s + 10;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        if (strlen(p) < 9 || p[3] != ':' || p[6] != ':') return 0;
        int h = digits(p + 1, 2), mi = digits(p + 4, 2), se = digits(p + 7, 2);
        if (h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 60) return 0;
        secs += h * 3600 + mi * 60 + se;
        p += 9;
        if (*p == '.')
            for (p++; *p >= '0' && *p <= '9'; p++) {
            }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if ((*p == '+' || *p == '-') && strlen(p) >= 6 && p[3] == ':') {
            int oh = digits(p + 1, 2), om = digits(p + 4, 2);
            if (oh < 0 || oh > 23 || om < 0 || om > 59) return 0;
            int off = (oh * 60 + om) * 60;
            secs -= *p == '+' ? off : -off;
            p += 6;
        } else {
            return 0;
        }
    }
    if (*p != '\0') return 0;
    *ms = secs * 1000;
    return 1;
}

/* ---- one deal's contribution -------------------------------------------------------------- */

typedef struct {
    char cloud[KPI_CLOUD_MAX + 1];
    int64_t verified_ms;
    int has_created;
    int64_t created_ms;
    int inbound; /* origin = cloud */
} kpi_reg;

typedef struct {
    cset clouds; /* every cloud the deal is known under: deals.clouds, reach, regs */
    int has_amount;
    int64_t amount;
    char ccy[8];
    int has_first_gated, has_first_allowed, has_won, has_lost;
    int64_t first_gated_ms, first_allowed_ms, won_ms, lost_ms;
    cset reach_checked, reach_verified;
    kpi_reg regs[KPI_MAX_CLOUDS];
    size_t nregs;
} deal_state;

typedef struct {
    char day[16];
    const char *metric; /* one of the DLOG_K_* constants */
    char key[KPI_KEY_MAX];
    int64_t n;
} kpi_item;

typedef struct {
    kpi_item *v;
    size_t n, cap;
    int oom;
} kpi_list;

static void list_add(kpi_list *l, const char *day, const char *metric, const char *key,
                     const char *key2, int64_t n)
{
    if (l->oom) return;
    kpi_item it = {.metric = metric, .n = n};
    snprintf(it.day, sizeof it.day, "%s", day);
    int k = snprintf(it.key, sizeof it.key, "%s%s%s", key, key2 ? "|" : "", key2 ? key2 : "");
    if (k < 0 || (size_t)k >= sizeof it.key) return; /* cannot happen: keys are bounded */
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        kpi_item *v = realloc(l->v, cap * sizeof *v);
        if (v == NULL) {
            l->oom = 1;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = it;
}

static int item_cmp(const void *a, const void *b)
{
    const kpi_item *x = a, *y = b;
    int c = strcmp(x->day, y->day);
    if (c == 0) c = strcmp(x->metric, y->metric);
    if (c == 0) c = strcmp(x->key, y->key);
    return c;
}

static const kpi_reg *reg_find(const deal_state *s, const char *cloud)
{
    for (size_t i = 0; i < s->nregs; i++)
        if (strcmp(s->regs[i].cloud, cloud) == 0) return &s->regs[i];
    return NULL;
}

/* The increments deal s contributes (docs/kpis.md says what each one means). */
static void contribution(const deal_state *s, kpi_list *out)
{
    char day[16], num[32];
    if (s->has_first_allowed && s->reach_checked.n > 0) {
        dlog_kpi_day(s->first_allowed_ms, day);
        int first_pass = s->has_first_gated && s->first_gated_ms == s->first_allowed_ms;
        int all = 1;
        for (size_t i = 0; i < s->reach_checked.n; i++)
            all &= cset_has(&s->reach_verified, s->reach_checked.v[i]);
        list_add(out, day, DLOG_K_REACHED, "*", NULL, 1);
        if (all) list_add(out, day, DLOG_K_REACHED_VER, "*", NULL, 1);
        if (first_pass) list_add(out, day, DLOG_K_FIRST_PASS, "*", NULL, 1);
        for (size_t i = 0; i < s->reach_checked.n; i++) {
            const char *c = s->reach_checked.v[i];
            list_add(out, day, DLOG_K_REACHED, c, NULL, 1);
            if (cset_has(&s->reach_verified, c)) list_add(out, day, DLOG_K_REACHED_VER, c, NULL, 1);
            if (first_pass) list_add(out, day, DLOG_K_FIRST_PASS, c, NULL, 1);
        }
    }
    if (s->has_won || s->has_lost) {
        int64_t t = s->has_won ? s->won_ms : s->lost_ms;
        const char *metric = s->has_won ? DLOG_K_WON : DLOG_K_LOST;
        dlog_kpi_day(t, day);
        list_add(out, day, metric, "*", s->nregs > 0 ? "reg" : "unreg", 1);
        for (size_t i = 0; i < s->clouds.n; i++) {
            const char *c = s->clouds.v[i];
            list_add(out, day, metric, c, reg_find(s, c) ? "reg" : "unreg", 1);
        }
        if (s->has_won && s->nregs > 0) {
            int64_t close_day = floor_div(t, KPI_DAY_MS), earliest = INT64_MAX;
            for (size_t i = 0; i < s->nregs; i++) {
                const kpi_reg *r = &s->regs[i];
                if (s->has_amount && dg_ccy_valid(s->ccy))
                    list_add(out, day, DLOG_K_REVENUE, r->cloud, s->ccy, s->amount);
                if (!r->has_created) continue;
                int64_t created_day = floor_div(r->created_ms, KPI_DAY_MS);
                if (created_day < earliest) earliest = created_day;
                snprintf(num, sizeof num, "%" PRId64, close_day - created_day);
                list_add(out, day, DLOG_K_CLOSE_DAYS, r->cloud, num, 1);
            }
            if (earliest != INT64_MAX) {
                snprintf(num, sizeof num, "%" PRId64, close_day - earliest);
                list_add(out, day, DLOG_K_CLOSE_DAYS, "*", num, 1);
            }
        }
    }
    for (size_t i = 0; i < s->nregs; i++) {
        const kpi_reg *r = &s->regs[i];
        dlog_kpi_day(r->verified_ms, day);
        list_add(out, day, DLOG_K_VREG, "*", NULL, 1);
        list_add(out, day, DLOG_K_VREG, r->cloud, NULL, 1);
        if (r->inbound) {
            list_add(out, day, DLOG_K_VREG_IN, "*", NULL, 1);
            list_add(out, day, DLOG_K_VREG_IN, r->cloud, NULL, 1);
        }
    }
    if (out->oom || out->n == 0) return;
    /* canonical: sorted, equal entries merged */
    qsort(out->v, out->n, sizeof *out->v, item_cmp);
    size_t w = 0;
    for (size_t i = 0; i < out->n; i++) {
        if (w > 0 && item_cmp(&out->v[w - 1], &out->v[i]) == 0)
            out->v[w - 1].n += out->v[i].n;
        else
            out->v[w++] = out->v[i];
    }
    out->n = w;
}

/* "day\tmetric\tkey\tn\n" lines (caller frees), NULL when out of memory. */
static char *list_text(const kpi_list *l)
{
    size_t cap = 1;
    for (size_t i = 0; i < l->n; i++)
        cap += strlen(l->v[i].day) + strlen(l->v[i].metric) + strlen(l->v[i].key) + 24 + 4;
    char *t = malloc(cap);
    if (t == NULL) return NULL;
    size_t len = 0;
    t[0] = '\0';
    for (size_t i = 0; i < l->n; i++) {
        int k = snprintf(t + len, cap - len, "%s\t%s\t%s\t%" PRId64 "\n", l->v[i].day,
                         l->v[i].metric, l->v[i].key, l->v[i].n);
        if (k < 0 || (size_t)k >= cap - len) break; /* cannot happen: sized above */
        len += (size_t)k;
    }
    return t;
}

/* ---- statements ---------------------------------------------------------------------------- */

static void st_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static int bind_txt(sqlite3_stmt *st, int i, const char *s)
{
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
}

static dg_err db_fail(dlog_kpi *k, const char *what, char *err, size_t errlen)
{
    return dg_errf(err, errlen, DG_EDB, "decision log: %s: %s", what, sqlite3_errmsg(k->db));
}

/* Adds n to a `daily` counter: into the batch's sums, written by dlog_kpi_flush. */
static dg_err add_daily(dlog_kpi *k, const char *day, const char *metric, const char *key,
                        int64_t n, char *err, size_t errlen)
{
    if (dlog_counts_add(k->counts, day, metric, key, n) != 0)
        return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    return DG_OK;
}

dlog_counts *dlog_kpi_counts(dlog_kpi *k)
{
    return k->counts;
}

dg_err dlog_kpi_flush(dlog_kpi *k, char *err, size_t errlen)
{
    return dlog_counts_flush(k->counts, k->st[K_ADD], err, errlen);
}

/* Takes the increments of an accounted text back out of `daily` (sign -1) or adds them. */
static dg_err apply_text(dlog_kpi *k, const char *text, int sign, char *err, size_t errlen)
{
    const char *p = text;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char line[256];
        if (n < sizeof line) {
            memcpy(line, p, n);
            line[n] = '\0';
            char *f[4] = {line, NULL, NULL, NULL};
            for (int i = 1; i < 4 && f[i - 1]; i++) {
                char *tab = strchr(f[i - 1], '\t');
                if (tab) {
                    *tab = '\0';
                    f[i] = tab + 1;
                }
            }
            if (f[3]) {
                char *end = NULL;
                long long v = strtoll(f[3], &end, 10);
                if (end != f[3] && *end == '\0' &&
                    add_daily(k, f[0], f[1], f[2], sign * (int64_t)v, err, errlen) != DG_OK)
                    return DG_EDB;
            }
        }
        p = nl ? nl + 1 : NULL;
    }
    return DG_OK;
}

/* Fills s from a deal's `deals` row. */
static void state_from_deal(deal_state *s, const dlog_kpi_deal *deal)
{
    cset_add_json(&s->clouds, deal->clouds_json);
    if ((s->has_amount = deal->has_amount)) s->amount = deal->amount;
    snprintf(s->ccy, sizeof s->ccy, "%s", deal->currency ? deal->currency : "");
    if ((s->has_first_gated = deal->has_first_gated)) s->first_gated_ms = deal->first_gated_ms;
    if ((s->has_first_allowed = deal->has_first_allowed))
        s->first_allowed_ms = deal->first_allowed_ms;
    if ((s->has_won = deal->has_won)) s->won_ms = deal->won_ms;
    if ((s->has_lost = deal->has_lost)) s->lost_ms = deal->lost_ms;
}

static int reg_cmp(const void *a, const void *b)
{
    return strcmp(((const kpi_reg *)a)->cloud, ((const kpi_reg *)b)->cloud);
}

/* Loads deal opp's state (its deals row: given as deal, or read when deal is NULL; its
 * registrations: read, or for a new deal the nnew this decision just stored, in new). *found
 * = the deals row exists. */
static dg_err load_state(dlog_kpi *k, const char *opp, const dlog_kpi_deal *deal,
                         const kpi_reg *fresh, size_t nfresh, deal_state *s, int *found, char *err,
                         size_t errlen)
{
    memset(s, 0, sizeof *s);
    *found = 0;
    sqlite3_stmt *st;
    int rc;
    if (deal != NULL) {
        *found = 1;
        state_from_deal(s, deal);
    } else {
        st = k->st[K_DEAL];
        bind_txt(st, 1, opp);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            dlog_kpi_deal row = {
                .clouds_json = (const char *)sqlite3_column_text(st, 0),
                .has_amount = sqlite3_column_type(st, 1) == SQLITE_INTEGER,
                .amount = sqlite3_column_int64(st, 1),
                .currency = (const char *)sqlite3_column_text(st, 2),
                .has_first_gated = sqlite3_column_type(st, 3) != SQLITE_NULL,
                .first_gated_ms = sqlite3_column_int64(st, 3),
                .has_first_allowed = sqlite3_column_type(st, 4) != SQLITE_NULL,
                .first_allowed_ms = sqlite3_column_int64(st, 4),
                .has_won = sqlite3_column_type(st, 5) != SQLITE_NULL,
                .won_ms = sqlite3_column_int64(st, 5),
                .has_lost = sqlite3_column_type(st, 6) != SQLITE_NULL,
                .lost_ms = sqlite3_column_int64(st, 6),
            };
            *found = 1;
            state_from_deal(s, &row);
        }
        st_done(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_fail(k, "kpi deal", err, errlen);
    }

    if (deal != NULL && deal->is_new && fresh != NULL) { /* as K_REGS reads them: by cloud */
        kpi_reg sorted[KPI_FRESH_MAX];
        memcpy(sorted, fresh, nfresh * sizeof *fresh);
        qsort(sorted, nfresh, sizeof sorted[0], reg_cmp);
        for (size_t i = 0; i < nfresh && s->nregs < KPI_MAX_CLOUDS; i++) {
            s->regs[s->nregs++] = sorted[i];
            cset_add(&s->clouds, sorted[i].cloud);
        }
        return DG_OK;
    }
    st = k->st[K_REGS];
    bind_txt(st, 1, opp);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && s->nregs < KPI_MAX_CLOUDS) {
        const char *c = (const char *)sqlite3_column_text(st, 0);
        if (c == NULL || strlen(c) > KPI_CLOUD_MAX) continue;
        kpi_reg *r = &s->regs[s->nregs++];
        snprintf(r->cloud, sizeof r->cloud, "%s", c);
        r->verified_ms = sqlite3_column_int64(st, 1);
        if ((r->has_created = sqlite3_column_type(st, 2) != SQLITE_NULL))
            r->created_ms = sqlite3_column_int64(st, 2);
        const char *o = (const char *)sqlite3_column_text(st, 3);
        r->inbound = o != NULL && strcmp(o, "cloud") == 0;
        cset_add(&s->clouds, r->cloud);
    }
    st_done(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_fail(k, "kpi registrations", err, errlen);
    return DG_OK;
}

/* The deal_kpi row as read (strings malloc'd). */
typedef struct {
    int found;
    char *reach_checked, *reach_verified, *last_to, *last_id, *accounted;
    int has_blocked_since;
    int64_t blocked_since_ms, last_ms;
} kpi_row;

static void kpi_row_free(kpi_row *r)
{
    free(r->reach_checked);
    free(r->reach_verified);
    free(r->last_to);
    free(r->last_id);
    free(r->accounted);
    memset(r, 0, sizeof *r);
}

static char *dup_col(sqlite3_stmt *st, int i, int *oom)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    if (s == NULL) return NULL;
    char *p = strdup(s);
    if (p == NULL) *oom = 1;
    return p;
}

static dg_err load_row(dlog_kpi *k, const char *opp, kpi_row *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    sqlite3_stmt *st = k->st[K_STATE];
    bind_txt(st, 1, opp);
    int rc = sqlite3_step(st), oom = 0;
    if (rc == SQLITE_ROW) {
        r->found = 1;
        r->reach_checked = dup_col(st, 0, &oom);
        r->reach_verified = dup_col(st, 1, &oom);
        if ((r->has_blocked_since = sqlite3_column_type(st, 2) != SQLITE_NULL))
            r->blocked_since_ms = sqlite3_column_int64(st, 2);
        r->last_to = dup_col(st, 3, &oom);
        r->last_ms = sqlite3_column_int64(st, 4);
        r->last_id = dup_col(st, 5, &oom);
        r->accounted = dup_col(st, 6, &oom);
    }
    st_done(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_fail(k, "kpi state", err, errlen);
    if (oom) {
        kpi_row_free(r);
        return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    }
    return DG_OK;
}

/* ---- accounting a decision --------------------------------------------------------------- */

/* Records the decision's verified registrations in deal_regs; fills the clouds it checked
 * and those verified into *checked / *verified, and what it stored (the first registration
 * per cloud: the earliest verification wins, and later ones of the same decision are no
 * earlier) into fresh[0..*nfresh) (KPI_FRESH_MAX room); *nfresh = KPI_FRESH_MAX + 1 when
 * there were more. */
static dg_err note_regs(dlog_kpi *k, const dlog_decision *d, cset *checked, cset *verified,
                        kpi_reg *fresh, size_t *nfresh, char *err, size_t errlen)
{
    *nfresh = 0;
    cJSON *a = d->registrations_json ? cJSON_Parse(d->registrations_json) : NULL;
    const cJSON *it;
    dg_err rc = DG_OK;
    cJSON_ArrayForEach(it, a)
    {
        const cJSON *cloud = cJSON_GetObjectItemCaseSensitive(it, "cloud");
        if (!cJSON_IsString(cloud) || strlen(cloud->valuestring) > KPI_CLOUD_MAX) continue;
        cset_add(checked, cloud->valuestring);
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "verified"))) continue;
        int again = cset_has(verified, cloud->valuestring);
        cset_add(verified, cloud->valuestring);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        const cJSON *created = cJSON_GetObjectItemCaseSensitive(it, "created_at");
        const cJSON *origin = cJSON_GetObjectItemCaseSensitive(it, "origin");
        int64_t created_ms = 0;
        int has_created =
            cJSON_IsString(created) && parse_time_ms(created->valuestring, &created_ms);
        sqlite3_stmt *st = k->st[K_REG_PUT];
        bind_txt(st, 1, d->opp_id);
        bind_txt(st, 2, cloud->valuestring);
        bind_txt(st, 3, cJSON_IsString(id) ? id->valuestring : NULL);
        sqlite3_bind_int64(st, 4, d->time_ms);
        if (has_created) sqlite3_bind_int64(st, 5, created_ms);
        bind_txt(st, 6, cJSON_IsString(origin) ? origin->valuestring : NULL);
        int src = sqlite3_step(st);
        st_done(st);
        if (src != SQLITE_DONE) {
            rc = db_fail(k, "kpi registrations", err, errlen);
            break;
        }
        if (!again && *nfresh == KPI_FRESH_MAX) *nfresh = KPI_FRESH_MAX + 1; /* too many */
        if (!again && *nfresh < KPI_FRESH_MAX) {
            kpi_reg *r = &fresh[(*nfresh)++];
            snprintf(r->cloud, sizeof r->cloud, "%s", cloud->valuestring);
            r->verified_ms = d->time_ms;
            r->has_created = has_created;
            r->created_ms = has_created ? created_ms : 0;
            r->inbound = cJSON_IsString(origin) && strcmp(origin->valuestring, "cloud") == 0;
        }
    }
    cJSON_Delete(a);
    return rc;
}

/* One count per distinct (cloud, code) of a blocked decision's reasons that name a cloud. */
static dg_err count_block_codes(dlog_kpi *k, const dlog_decision *d, char *err, size_t errlen)
{
    if (d->outcome == NULL || strcmp(d->outcome, "block") != 0 || d->reasons_json == NULL)
        return DG_OK;
    cJSON *a = cJSON_Parse(d->reasons_json);
    char day[16], seen[KPI_MAX_CLOUDS * 2][KPI_KEY_MAX];
    size_t nseen = 0;
    dg_err rc = DG_OK;
    dlog_kpi_day(d->time_ms, day);
    const cJSON *it;
    cJSON_ArrayForEach(it, a)
    {
        const cJSON *cloud = cJSON_GetObjectItemCaseSensitive(it, "cloud");
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(it, "code");
        if (!cJSON_IsString(cloud) || !cJSON_IsString(code)) continue;
        char key[KPI_KEY_MAX];
        int n = snprintf(key, sizeof key, "%s|%s", cloud->valuestring, code->valuestring);
        if (n < 0 || (size_t)n >= sizeof key) continue;
        int dup = 0;
        for (size_t i = 0; i < nseen; i++)
            dup |= strcmp(seen[i], key) == 0;
        if (dup || nseen == sizeof seen / sizeof seen[0]) continue;
        memcpy(seen[nseen++], key, (size_t)n + 1);
        if ((rc = add_daily(k, day, DLOG_K_BLOCK, key, 1, err, errlen)) != DG_OK) break;
    }
    cJSON_Delete(a);
    return rc;
}

dg_err dlog_kpi_decision(dlog_kpi *k, const dlog_decision *d, const dlog_kpi_deal *deal, char *err,
                         size_t errlen)
{
    dg_err rc = DG_EDB;
    kpi_row row = {0};
    kpi_list now = {0};
    char *text = NULL, *rc_json = NULL, *rv_json = NULL;
    cset checked = {0}, verified = {0};
    deal_state s;
    int found = 0;

    kpi_reg fresh[KPI_FRESH_MAX];
    size_t nfresh = 0;
    if ((rc = note_regs(k, d, &checked, &verified, fresh, &nfresh, err, errlen)) != DG_OK)
        goto done;
    if ((rc = count_block_codes(k, d, err, errlen)) != DG_OK) goto done;
    /* a new deal has no deal_kpi row yet (row stays empty: not found) */
    if ((deal == NULL || !deal->is_new) &&
        (rc = load_row(k, d->opp_id, &row, err, errlen)) != DG_OK)
        goto done;
    /* more registrations than fit: read them back as for a known deal */
    const kpi_reg *fr = nfresh <= KPI_FRESH_MAX ? fresh : NULL;
    if ((rc = load_state(k, d->opp_id, deal, fr, fr ? nfresh : 0, &s, &found, err, errlen)) !=
        DG_OK)
        goto done;

    /* the first allowed gated move fixes which clouds the deal reached the gate with */
    int allowed = d->outcome && strcmp(d->outcome, "allow") == 0;
    const char *reach_c = row.reach_checked, *reach_v = row.reach_verified;
    if (d->gated && allowed && s.has_first_allowed && s.first_allowed_ms == d->time_ms) {
        rc_json = cset_json(&checked);
        rv_json = cset_json(&verified);
        if (rc_json == NULL || rv_json == NULL) {
            rc = dg_errf(err, errlen, DG_ENOMEM, "out of memory");
            goto done;
        }
        reach_c = rc_json;
        reach_v = rv_json;
    }
    cset_add_json(&s.reach_checked, reach_c);
    cset_add_json(&s.reach_verified, reach_v);
    for (size_t i = 0; i < s.reach_checked.n; i++)
        cset_add(&s.clouds, s.reach_checked.v[i]);

    /* the newest decision (by time, then id) moves the blocked streak and the stage tried */
    int latest =
        !row.found || d->time_ms > row.last_ms ||
        (d->time_ms == row.last_ms && (row.last_id == NULL || strcmp(d->id, row.last_id) >= 0));
    int has_since = row.has_blocked_since;
    int64_t since = row.blocked_since_ms, last_ms = row.last_ms;
    const char *last_to = row.last_to, *last_id = row.last_id;
    if (latest) {
        if (allowed) {
            has_since = 0;
        } else if (!row.has_blocked_since) {
            has_since = 1;
            since = d->time_ms;
        }
        last_to = d->to_stage ? d->to_stage : d->to_raw;
        last_ms = d->time_ms;
        last_id = d->id;
    }

    if (found) contribution(&s, &now);
    if (now.oom || (text = list_text(&now)) == NULL) {
        rc = dg_errf(err, errlen, DG_ENOMEM, "out of memory");
        goto done;
    }
    if (strcmp(text, row.accounted ? row.accounted : "") != 0) {
        if ((rc = apply_text(k, row.accounted, -1, err, errlen)) != DG_OK) goto done;
        if ((rc = apply_text(k, text, 1, err, errlen)) != DG_OK) goto done;
    }

    sqlite3_stmt *st = k->st[K_STATE_PUT];
    bind_txt(st, 1, d->opp_id);
    bind_txt(st, 2, reach_c);
    bind_txt(st, 3, reach_v);
    if (has_since) sqlite3_bind_int64(st, 4, since);
    bind_txt(st, 5, last_to);
    sqlite3_bind_int64(st, 6, last_ms);
    bind_txt(st, 7, last_id);
    bind_txt(st, 8, text);
    int src = sqlite3_step(st);
    st_done(st);
    if (src != SQLITE_DONE) {
        rc = db_fail(k, "kpi state", err, errlen);
        goto done;
    }
    rc = DG_OK;
done:
    free(text);
    free(rc_json);
    free(rv_json);
    free(now.v);
    kpi_row_free(&row);
    return rc;
}

dg_err dlog_kpi_comp(dlog_kpi *k, const dlog_comp_line *c, char *err, size_t errlen)
{
    if (!c->violation) return DG_OK;
    char day[16], key[KPI_KEY_MAX + 320];
    dlog_kpi_day(c->time_ms, day);
    const char *ccy = c->currency && dg_ccy_valid(c->currency) ? c->currency : "";
    int64_t minor = 0;
    int has_short = *ccy && c->shortfall &&
                    dg_amount_parse(c->shortfall, strlen(c->shortfall), dg_ccy_exponent(ccy), 0,
                                    &minor, NULL, 0) == DG_OK;
    int cloud_ok = c->cloud && *c->cloud && strlen(c->cloud) <= KPI_CLOUD_MAX;
    if (add_daily(k, day, DLOG_K_COMP_VIOL, "*", 1, err, errlen) != DG_OK) return DG_EDB;
    if (cloud_ok && add_daily(k, day, DLOG_K_COMP_VIOL, c->cloud, 1, err, errlen) != DG_OK)
        return DG_EDB;
    if (has_short) {
        snprintf(key, sizeof key, "*|%s", ccy);
        if (add_daily(k, day, DLOG_K_COMP_SHORT, key, minor, err, errlen) != DG_OK) return DG_EDB;
        if (cloud_ok) {
            snprintf(key, sizeof key, "%s|%s", c->cloud, ccy);
            if (add_daily(k, day, DLOG_K_COMP_SHORT, key, minor, err, errlen) != DG_OK)
                return DG_EDB;
        }
    }
    /* by rep: "CCY|rep" (the rep may contain anything; the currency never has a '|') */
    snprintf(key, sizeof key, "%s|%s", ccy, c->rep ? c->rep : "");
    if (add_daily(k, day, DLOG_K_COMP_REP, key, 1, err, errlen) != DG_OK) return DG_EDB;
    if (has_short && add_daily(k, day, DLOG_K_COMP_REP_SHORT, key, minor, err, errlen) != DG_OK)
        return DG_EDB;
    return DG_OK;
}

/* ---- rebuild ------------------------------------------------------------------------------ */

static dg_err exec(dlog_kpi *k, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(k->db, sql, NULL, NULL, &msg) == SQLITE_OK) return DG_OK;
    dg_errf(err, errlen, DG_EDB, "decision log: kpi rebuild: %s", msg ? msg : "error");
    sqlite3_free(msg);
    return DG_EDB;
}

dg_err dlog_kpi_rebuild(dlog_kpi *k, char *err, size_t errlen)
{
    dlog_counts_reset(k->counts);
    dg_err rc = exec(k,
                     "DELETE FROM deal_kpi; DELETE FROM deal_regs;"
                     " DELETE FROM daily WHERE metric GLOB 'k_*'",
                     err, errlen);
    if (rc != DG_OK) return rc;
    sqlite3_stmt *st = NULL;
    /* in log order, so each decision is the newest so far (blocked streaks come out right) */
    if (sqlite3_prepare_v2(k->db,
                           "SELECT id, time_ms, opp_id, outcome, gated, to_stage, to_raw, reasons,"
                           " registrations FROM decisions ORDER BY time_ms, id",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(k, "kpi rebuild", err, errlen);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        dlog_decision d = {
            .id = (const char *)sqlite3_column_text(st, 0),
            .time_ms = sqlite3_column_int64(st, 1),
            .opp_id = (const char *)sqlite3_column_text(st, 2),
            .outcome = (const char *)sqlite3_column_text(st, 3),
            .gated = sqlite3_column_int(st, 4),
            .to_stage = (const char *)sqlite3_column_text(st, 5),
            .to_raw = (const char *)sqlite3_column_text(st, 6),
            .reasons_json = (const char *)sqlite3_column_text(st, 7),
            .registrations_json = (const char *)sqlite3_column_text(st, 8),
        };
        if (d.id == NULL || d.opp_id == NULL) continue;
        if ((rc = dlog_kpi_decision(k, &d, NULL, err, errlen)) != DG_OK) break;
    }
    sqlite3_finalize(st);
    if (rc != DG_OK) return rc;
    if (src != SQLITE_DONE) return db_fail(k, "kpi rebuild", err, errlen);

    if (sqlite3_prepare_v2(k->db,
                           "SELECT time_ms, cloud, currency, rep, shortfall FROM comp_checks"
                           " WHERE violation = 1",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(k, "kpi rebuild", err, errlen);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        dlog_comp_line c = {
            .time_ms = sqlite3_column_int64(st, 0),
            .cloud = (const char *)sqlite3_column_text(st, 1),
            .currency = (const char *)sqlite3_column_text(st, 2),
            .rep = (const char *)sqlite3_column_text(st, 3),
            .shortfall = (const char *)sqlite3_column_text(st, 4),
            .violation = 1,
        };
        if ((rc = dlog_kpi_comp(k, &c, err, errlen)) != DG_OK) break;
    }
    sqlite3_finalize(st);
    if (rc != DG_OK) return rc;
    if (src != SQLITE_DONE) return db_fail(k, "kpi rebuild", err, errlen);
    return dlog_kpi_flush(k, err, errlen);
}

/* ---- open / close ------------------------------------------------------------------------- */

void dlog_kpi_close(dlog_kpi *k)
{
    if (k == NULL) return;
    for (int i = 0; i < K_COUNT; i++)
        sqlite3_finalize(k->st[i]);
    dlog_counts_free(k->counts);
    free(k);
}

/* 1 when the log has decisions or violating comp lines but no KPI state for them. */
static int needs_rebuild(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int need = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT (EXISTS (SELECT 1 FROM decisions)"
                           " AND NOT EXISTS (SELECT 1 FROM deal_kpi))"
                           " OR (EXISTS (SELECT 1 FROM comp_checks WHERE violation = 1)"
                           " AND NOT EXISTS (SELECT 1 FROM daily WHERE metric = 'k_comp_rep'))",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        need = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return need;
}

dg_err dlog_kpi_open(sqlite3 *db, dlog_kpi **out, char *err, size_t errlen)
{
    dg_err rc = DG_EDB;
    *out = NULL;
    dlog_kpi *k = calloc(1, sizeof *k);
    if (k == NULL) return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    k->db = db;
    if ((k->counts = dlog_counts_new()) == NULL) {
        dg_errf(err, errlen, DG_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < K_COUNT; i++) {
        if (sqlite3_prepare_v3(db, ksql[i], -1, SQLITE_PREPARE_PERSISTENT, &k->st[i], NULL) !=
            SQLITE_OK) {
            dg_errf(err, errlen, DG_EDB, "decision log: cannot prepare kpi statement %d: %s", i,
                    sqlite3_errmsg(db));
            goto done;
        }
    }
    if (needs_rebuild(db)) {
        if (exec(k, "BEGIN IMMEDIATE", err, errlen) != DG_OK) goto done;
        if (dlog_kpi_rebuild(k, err, errlen) != DG_OK || exec(k, "COMMIT", err, errlen) != DG_OK) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            goto done;
        }
    }
    *out = k;
    k = NULL;
    rc = DG_OK;
done:
    dlog_kpi_close(k);
    return rc;
}
