/* metrics.c — lock-free counters of the request path, and GET /metrics.
 *
 * Request counters live in fixed slots: one per route (claimed by a compare-and-swap of the
 * route's static path pointer the first time it is answered), each with counts by status
 * and a latency histogram; reason and warning codes get a slot each the same way (a slot is
 * written once, then published with a release store). Increments are relaxed atomics. A
 * scrape reads each counter once; counters only grow, so a scrape racing with requests is
 * at worst one request behind. Gauges and the per-cloud and log figures are read from their
 * owners at scrape time. Prometheus text format 0.0.4.
 */
#include "gate/metrics.h"

#include <inttypes.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "gate/routes.h"

#define M_ROUTES 64   /* distinct routes (the table has fewer) */
#define M_CODES 64    /* distinct reason / warning codes */
#define M_CODE_MAX 64 /* longest code kept; longer ones count as "other" */
#define M_UNMATCHED "unmatched"

static const int m_statuses[] = {200, 201, 202, 204, 304, 400, 401, 403, 404,
                                 405, 409, 413, 415, 422, 429, 500, 502, 503};
#define M_NSTATUS (sizeof m_statuses / sizeof m_statuses[0]) /* + 1 slot: any other */

/* request latency bounds, microseconds; the text shows them in seconds */
static const int64_t m_http_bounds_us[] = {1000,    2500,    5000,    10000,  25000,
                                           50000,   100000,  250000,  500000, 1000000,
                                           2500000, 5000000, 10000000};
#define M_NHTTP (sizeof m_http_bounds_us / sizeof m_http_bounds_us[0]) /* + 1: +Inf */

typedef struct {
    _Atomic(const char *) route; /* NULL: free slot */
    _Atomic uint64_t status[M_NSTATUS + 1];
    _Atomic uint64_t bucket[M_NHTTP + 1];
    _Atomic uint64_t count, sum_us;
} route_slot;

typedef struct {
    atomic_int state; /* 0 free, 1 being named, 2 named */
    char name[M_CODE_MAX + 1];
    _Atomic uint64_t n;
} code_slot;

enum { OUT_ALLOW, OUT_BLOCK, OUT_RETRY, OUT_COUNT };
static const char *const out_names[OUT_COUNT] = {"allow", "block", "retry"};

struct gate_metrics {
    route_slot routes[M_ROUTES];
    _Atomic uint64_t outcome[OUT_COUNT];
    code_slot reasons[M_CODES], warnings[M_CODES];
    _Atomic uint64_t reasons_other, warnings_other;
};

dg_err gate_metrics_new(gate_metrics **out)
{
    *out = calloc(1, sizeof **out); /* all-zero bytes are valid atomics on every target */
    return *out ? DG_OK : DG_ENOMEM;
}

void gate_metrics_free(gate_metrics *m)
{
    free(m);
}

static void inc(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t get(_Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* The slot of route (static string), claiming a free one the first time. NULL when full. */
static route_slot *route_find(gate_metrics *m, const char *route)
{
    for (size_t i = 0; i < M_ROUTES; i++) {
        const char *cur = atomic_load_explicit(&m->routes[i].route, memory_order_acquire);
        if (cur == NULL) {
            const char *expect = NULL;
            if (atomic_compare_exchange_strong_explicit(&m->routes[i].route, &expect, route,
                                                        memory_order_acq_rel, memory_order_acquire))
                return &m->routes[i];
            cur = expect;
        }
        if (cur == route || strcmp(cur, route) == 0) return &m->routes[i];
    }
    return NULL;
}

void gate_metrics_request(gate_metrics *m, const char *route, int status, int64_t us)
{
    if (m == NULL) return;
    route_slot *s = route_find(m, route ? route : M_UNMATCHED);
    if (s == NULL) return;
    size_t k = 0;
    while (k < M_NSTATUS && m_statuses[k] != status)
        k++;
    inc(&s->status[k], 1);
    if (us < 0) us = 0;
    size_t b = 0;
    while (b < M_NHTTP && us > m_http_bounds_us[b])
        b++;
    inc(&s->bucket[b], 1);
    inc(&s->count, 1);
    inc(&s->sum_us, (uint64_t)us);
}

/* The counter of code in table t, naming a free slot the first time; `other` when the
 * code is unusable or the table is full. */
static _Atomic uint64_t *code_counter(code_slot *t, const char *code, _Atomic uint64_t *other)
{
    size_t len = code ? strlen(code) : 0;
    if (len == 0 || len > M_CODE_MAX) return other;
    for (size_t i = 0; i < M_CODES; i++) {
        int st = atomic_load_explicit(&t[i].state, memory_order_acquire);
        if (st == 0) {
            int expect = 0;
            if (atomic_compare_exchange_strong_explicit(
                    &t[i].state, &expect, 1, memory_order_acq_rel, memory_order_acquire)) {
                memcpy(t[i].name, code, len + 1);
                atomic_store_explicit(&t[i].state, 2, memory_order_release);
                return &t[i].n;
            }
            st = expect;
        }
        while (st == 1) { /* another thread is copying a name in: a few instructions */
            sched_yield();
            st = atomic_load_explicit(&t[i].state, memory_order_acquire);
        }
        if (strcmp(t[i].name, code) == 0) return &t[i].n;
    }
    return other;
}

/* One count per distinct code of reasons v[0..n). */
static void count_codes(code_slot *t, _Atomic uint64_t *other, const dg_reason *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int dup = 0;
        for (size_t j = 0; j < i && !dup; j++)
            dup = v[i].code && v[j].code && strcmp(v[i].code, v[j].code) == 0;
        if (!dup) inc(code_counter(t, v[i].code, other), 1);
    }
}

static void log_upstream_failure(const dg_reg_fact *r, const char *opp_id, const char *decision_id)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) return;
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON_AddStringToObject(o, "ts", ts);
    cJSON_AddStringToObject(o, "event", "upstream_failure");
    cJSON_AddStringToObject(o, "cloud", r->cloud ? r->cloud : "");
    cJSON_AddStringToObject(o, "connector", r->source ? r->source : "");
    cJSON_AddStringToObject(o, "error", r->error ? r->error : "look-up failed");
    cJSON_AddBoolToObject(o, "retryable", r->retryable);
    cJSON_AddStringToObject(o, "opportunity_id", opp_id ? opp_id : "");
    if (decision_id)
        cJSON_AddStringToObject(o, "decision_id", decision_id);
    else
        cJSON_AddNullToObject(o, "decision_id");
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (line) {
        fprintf(stderr, "%s\n", line);
        free(line);
    }
}

void gate_observe_decision(gate_ctx *g, const gate_result *res, const dg_decision *d,
                           const dg_facts *f, const char *opp_id)
{
    if (g == NULL || res == NULL) return;
    gate_metrics *m = g->metrics;
    const char *decision_id = NULL;
    if (res->status == 200 && res->text && !res->replay) {
        decision_id = res->id;
        if (m && d) {
            int blocked = d->outcome == DG_OUTCOME_BLOCK;
            inc(&m->outcome[blocked ? OUT_BLOCK : OUT_ALLOW], 1);
            if (blocked) count_codes(m->reasons, &m->reasons_other, d->reasons, d->nreasons);
            count_codes(m->warnings, &m->warnings_other, d->warnings, d->nwarnings);
        }
    } else if (m && res->status == 503 && res->err_code &&
               strcmp(res->err_code, "lookup_retry") == 0) {
        inc(&m->outcome[OUT_RETRY], 1);
    }
    for (size_t i = 0; f && i < f->nregs; i++)
        if (f->regs[i].lookup == DG_LOOKUP_FAILED)
            log_upstream_failure(&f->regs[i], opp_id, decision_id);
}

/* ---- rendering ----------------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} tbuf;

static void tb_printf(tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tb_printf(tbuf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 16384;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (np == NULL) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

/* A label value escaped per the text format (backslash, double quote, newline). */
static void label_value(const char *s, char *out, size_t n)
{
    size_t o = 0;
    for (; s && *s && o + 3 < n; s++) {
        if (*s == '\\' || *s == '"') {
            out[o++] = '\\';
            out[o++] = *s;
        } else if (*s == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *s;
        }
    }
    out[o] = '\0';
}

static void family(tbuf *b, const char *name, const char *type, const char *help)
{
    tb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_http(tbuf *b, gate_metrics *m)
{
    family(b, "dealgate_http_requests_total", "counter",
           "HTTP requests answered, by route pattern and status code.");
    for (size_t i = 0; i < M_ROUTES; i++) {
        const char *route = atomic_load_explicit(&m->routes[i].route, memory_order_acquire);
        if (route == NULL) break;
        char rl[160];
        label_value(route, rl, sizeof rl);
        for (size_t k = 0; k <= M_NSTATUS; k++) {
            uint64_t n = get(&m->routes[i].status[k]);
            if (n == 0) continue;
            if (k < M_NSTATUS)
                tb_printf(b, "dealgate_http_requests_total{route=\"%s\",code=\"%d\"} %" PRIu64 "\n",
                          rl, m_statuses[k], n);
            else
                tb_printf(b,
                          "dealgate_http_requests_total{route=\"%s\",code=\"other\"} %" PRIu64 "\n",
                          rl, n);
        }
    }
    family(b, "dealgate_http_request_duration_seconds", "histogram",
           "Time from routing a request to its last byte, by route pattern.");
    for (size_t i = 0; i < M_ROUTES; i++) {
        route_slot *s = &m->routes[i];
        const char *route = atomic_load_explicit(&s->route, memory_order_acquire);
        if (route == NULL) break;
        char rl[160];
        label_value(route, rl, sizeof rl);
        uint64_t cum = 0, bucket[M_NHTTP + 1];
        for (size_t k = 0; k <= M_NHTTP; k++)
            bucket[k] = get(&s->bucket[k]);
        for (size_t k = 0; k < M_NHTTP; k++) {
            cum += bucket[k];
            tb_printf(b,
                      "dealgate_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} "
                      "%" PRIu64 "\n",
                      rl, (double)m_http_bounds_us[k] / 1e6, cum);
        }
        cum += bucket[M_NHTTP];
        tb_printf(b,
                  "dealgate_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} "
                  "%" PRIu64 "\n",
                  rl, cum);
        tb_printf(b, "dealgate_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", rl,
                  (double)get(&s->sum_us) / 1e6);
        /* the count is the buckets' sum, so _count always equals the +Inf bucket */
        tb_printf(b, "dealgate_http_request_duration_seconds_count{route=\"%s\"} %" PRIu64 "\n", rl,
                  cum);
    }
}

static void render_codes(tbuf *b, const char *name, code_slot *t, _Atomic uint64_t *other)
{
    for (size_t i = 0; i < M_CODES; i++) {
        if (atomic_load_explicit(&t[i].state, memory_order_acquire) != 2) continue;
        char cl[2 * M_CODE_MAX + 2];
        label_value(t[i].name, cl, sizeof cl);
        tb_printf(b, "%s{code=\"%s\"} %" PRIu64 "\n", name, cl, get(&t[i].n));
    }
    uint64_t n = get(other);
    if (n) tb_printf(b, "%s{code=\"other\"} %" PRIu64 "\n", name, n);
}

static void render_decisions(tbuf *b, gate_metrics *m)
{
    family(b, "dealgate_decisions_total", "counter",
           "Decisions made (replays not counted), by outcome; retry = a 503 asking the CRM to "
           "try again.");
    for (int i = 0; i < OUT_COUNT; i++)
        tb_printf(b, "dealgate_decisions_total{outcome=\"%s\"} %" PRIu64 "\n", out_names[i],
                  get(&m->outcome[i]));
    family(b, "dealgate_decision_reasons_total", "counter",
           "Blocked decisions by reason code (once per distinct code of a decision).");
    render_codes(b, "dealgate_decision_reasons_total", m->reasons, &m->reasons_other);
    family(b, "dealgate_decision_warnings_total", "counter",
           "Decisions by warning code (once per distinct code of a decision).");
    render_codes(b, "dealgate_decision_warnings_total", m->warnings, &m->warnings_other);
}

static void render_lookups(tbuf *b, gate_rt *rt)
{
    size_t n = rt ? conn_cloud_stat(rt->conns, 0, NULL) : 0;
    conn_cloud_stats *cs = n ? calloc(n, sizeof *cs) : NULL;
    if (n && cs == NULL) {
        b->oom = 1;
        return;
    }
    for (size_t i = 0; i < n; i++)
        conn_cloud_stat(rt->conns, i, &cs[i]);
    struct {
        const char *name, *help;
        size_t off;
    } counters[] = {
        {"dealgate_lookup_calls_total", "Co-sell registry calls made, by cloud.",
         offsetof(conn_cloud_stats, calls)},
        {"dealgate_lookup_errors_total", "Co-sell registry calls that failed, by cloud.",
         offsetof(conn_cloud_stats, errors)},
        {"dealgate_lookup_cache_hits_total", "Look-ups answered from the cache, by cloud.",
         offsetof(conn_cloud_stats, hits)},
        {"dealgate_lookup_cache_misses_total",
         "Look-ups not answered from the cache (a call made or joined), by cloud.",
         offsetof(conn_cloud_stats, misses)},
    };
    for (size_t c = 0; c < sizeof counters / sizeof counters[0]; c++) {
        family(b, counters[c].name, "counter", counters[c].help);
        for (size_t i = 0; i < n; i++) {
            char cl[160], co[64];
            label_value(cs[i].cloud, cl, sizeof cl);
            label_value(cs[i].connector, co, sizeof co);
            uint64_t v;
            memcpy(&v, (const char *)&cs[i] + counters[c].off, sizeof v);
            tb_printf(b, "%s{cloud=\"%s\",connector=\"%s\"} %" PRIu64 "\n", counters[c].name, cl,
                      co, v);
        }
    }
    family(b, "dealgate_lookup_duration_seconds", "histogram",
           "Duration of co-sell registry calls, by cloud (file and none answer from memory).");
    for (size_t i = 0; i < n; i++) {
        char cl[160];
        label_value(cs[i].cloud, cl, sizeof cl);
        uint64_t cum = 0;
        for (size_t k = 0; k < CONN_LAT_BUCKETS; k++) {
            cum += cs[i].lat[k];
            tb_printf(
                b, "dealgate_lookup_duration_seconds_bucket{cloud=\"%s\",le=\"%g\"} %" PRIu64 "\n",
                cl, (double)conn_lat_bounds_us[k] / 1e6, cum);
        }
        cum += cs[i].lat[CONN_LAT_BUCKETS];
        tb_printf(b,
                  "dealgate_lookup_duration_seconds_bucket{cloud=\"%s\",le=\"+Inf\"} %" PRIu64 "\n",
                  cl, cum);
        tb_printf(b, "dealgate_lookup_duration_seconds_sum{cloud=\"%s\"} %.6f\n", cl,
                  (double)cs[i].lat_sum_us / 1e6);
        tb_printf(b, "dealgate_lookup_duration_seconds_count{cloud=\"%s\"} %" PRIu64 "\n", cl, cum);
    }
    free(cs);
}

static void render_log(tbuf *b, dlog *l)
{
    uint64_t commits = 0, rows = 0, hist[DLOG_BATCH_BUCKETS + 1];
    dlog_stats(l, &commits, &rows);
    dlog_batch_sizes(l, hist);
    family(b, "dealgate_log_commits_total", "counter", "Decision-log transactions committed.");
    tb_printf(b, "dealgate_log_commits_total %" PRIu64 "\n", commits);
    family(b, "dealgate_log_rows_total", "counter",
           "Decision and commission-check rows committed to the decision log.");
    tb_printf(b, "dealgate_log_rows_total %" PRIu64 "\n", rows);
    family(b, "dealgate_log_commit_batch_size", "histogram",
           "Rows written per decision-log commit (concurrent decisions share one sync).");
    uint64_t cum = 0;
    for (size_t k = 0; k < DLOG_BATCH_BUCKETS; k++) {
        cum += hist[k];
        tb_printf(b, "dealgate_log_commit_batch_size_bucket{le=\"%" PRIu64 "\"} %" PRIu64 "\n",
                  dlog_batch_bounds[k], cum);
    }
    cum += hist[DLOG_BATCH_BUCKETS];
    tb_printf(b, "dealgate_log_commit_batch_size_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
    tb_printf(b, "dealgate_log_commit_batch_size_sum %" PRIu64 "\n", rows);
    tb_printf(b, "dealgate_log_commit_batch_size_count %" PRIu64 "\n", cum);
    family(b, "dealgate_log_queue_depth", "gauge",
           "Writes waiting for the decision-log writer thread.");
    tb_printf(b, "dealgate_log_queue_depth %zu\n", dlog_queue_depth(l));
    family(b, "dealgate_log_healthy", "gauge", "1 if the decision log accepted its last write.");
    tb_printf(b, "dealgate_log_healthy %d\n", dlog_healthy(l));
    uint64_t pending = 0;
    if (l && dlog_wb_pending(l, &pending) == DG_OK) {
        family(b, "dealgate_writeback_queue_depth", "gauge",
               "CRM write-back jobs pending (queued or waiting for a retry).");
        tb_printf(b, "dealgate_writeback_queue_depth %" PRIu64 "\n", pending);
    }
}

char *gate_metrics_render(gate_ctx *g, gate_rt *rt, size_t *len)
{
    tbuf b = {0};
    family(&b, "dealgate_build_info", "gauge", "The running dealgate version and config.");
    char cv[64] = "";
    if (rt && rt->cfg) label_value(rt->cfg->version, cv, sizeof cv);
    tb_printf(&b, "dealgate_build_info{version=\"%s\",config_version=\"%s\"} 1\n", DG_VERSION, cv);
    family(&b, "dealgate_start_time_seconds", "gauge", "Unix time the service started.");
    tb_printf(&b, "dealgate_start_time_seconds %" PRId64 "\n", g->started_ms / 1000);
    if (g->metrics) {
        render_http(&b, g->metrics);
        render_decisions(&b, g->metrics);
    }
    render_lookups(&b, rt);
    if (g->log) render_log(&b, g->log);
    if (b.oom || b.p == NULL) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

int gate_h_metrics(gate_req *r)
{
    size_t len = 0;
    char *text = gate_metrics_render(r->g, r->rt, &len);
    if (text == NULL) return gate_reply_error(r, 503, "overloaded", "out of memory");
    int st = gate_reply_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, "");
    free(text);
    return st;
}
