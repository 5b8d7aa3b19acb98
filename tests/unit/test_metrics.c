/* test_metrics.c — the lock-free metrics registry: exact counts under concurrent recording
 * (routes and codes claimed by many threads at once), status and latency buckets, decision
 * outcomes and codes, and the rendered text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/metrics.h"

#define THREADS 8
#define PER_THREAD 20000

static const char *const routes[] = {"/v1/gate/stage", "/v1/kpis", "/ui", "/metrics"};

typedef struct {
    gate_ctx *g;
    int id;
} targ;

static void *hammer(void *p)
{
    targ *t = p;
    char code[32];
    for (int i = 0; i < PER_THREAD; i++) {
        /* every route and status is first seen by several threads at once */
        gate_metrics_request(t->g->metrics, routes[i % 4], i % 5 == 0 ? 503 : 200,
                             (int64_t)(i % 3) * 20000); /* 0, 20 ms, 40 ms */
        if (i % 100 == 0) {
            snprintf(code, sizeof code, "code_%d", i % 7);
            dg_reason r[2] = {{.code = code}, {.code = code}}; /* the same code twice */
            dg_decision d = {.outcome = DG_OUTCOME_BLOCK, .reasons = r, .nreasons = 2};
            char text[] = "{\"decision_id\":\"dg_x\"}";
            gate_result res = {.status = 200, .text = text, .id = "dg_x"};
            gate_observe_decision(t->g, &res, &d, NULL, "OPP");
        }
    }
    return NULL;
}

/* The value of the sample line starting with prefix (up to the value), or -1. */
static long long sample(const char *text, const char *prefix)
{
    const char *p = text;
    size_t n = strlen(prefix);
    while ((p = strstr(p, prefix)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ') {
            char *end = NULL;
            long long v = strtoll(p + n + 1, &end, 10);
            return end != p + n + 1 ? v : -1;
        }
        p += n;
    }
    return -1;
}

static void test_concurrent_counts_are_exact(void **state)
{
    (void)state;
    gate_ctx g = {.started_ms = 1000};
    assert_int_equal(gate_metrics_new(&g.metrics), DG_OK);
    pthread_t th[THREADS];
    targ ta[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ta[i] = (targ){&g, i};
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &ta[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    gate_metrics_request(g.metrics, NULL, 404, 10);
    gate_metrics_request(g.metrics, "/ui", 418, 10); /* a status without its own slot */

    size_t len = 0;
    char *text = gate_metrics_render(&g, NULL, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    /* per route: PER_THREAD / 4 requests per thread, one in five of them a 503 */
    const long long per_route = (long long)THREADS * PER_THREAD / 4;
    long long c200 = sample(text, "dealgate_http_requests_total{route=\"/v1/kpis\",code=\"200\"}");
    long long c503 = sample(text, "dealgate_http_requests_total{route=\"/v1/kpis\",code=\"503\"}");
    assert_int_equal(c200 + c503, per_route);
    assert_int_equal(c503, (long long)THREADS * (PER_THREAD / 20));
    assert_int_equal(
        sample(text, "dealgate_http_request_duration_seconds_count{route=\"/v1/gate/stage\"}"),
        per_route);
    /* durations 0, 20 and 40 ms: the 25 ms bucket holds those of 0 and 20 ms */
    long long b001 = sample(text, "dealgate_http_request_duration_seconds_bucket{route=\"/ui\","
                                  "le=\"0.001\"}");
    long long b025 = sample(text, "dealgate_http_request_duration_seconds_bucket{route=\"/ui\","
                                  "le=\"0.025\"}");
    long long binf = sample(text, "dealgate_http_request_duration_seconds_bucket{route=\"/ui\","
                                  "le=\"+Inf\"}");
    assert_true(b001 > 0 && b001 < b025 && b025 < binf);
    assert_int_equal(binf, per_route + 1);
    assert_int_equal(sample(text, "dealgate_http_requests_total{route=\"/ui\",code=\"other\"}"), 1);
    assert_int_equal(sample(text, "dealgate_http_requests_total{route=\"unmatched\",code=\"404\"}"),
                     1);
    /* each route appears once, though many threads claimed it at the same moment */
    const char *needle = "dealgate_http_request_duration_seconds_count{route=\"/metrics\"}";
    const char *first = strstr(text, needle);
    assert_non_null(first);
    assert_null(strstr(first + 1, needle));
    /* decisions: PER_THREAD / 100 blocks per thread; each code once per decision */
    long long blocks = (long long)THREADS * (PER_THREAD / 100);
    assert_int_equal(sample(text, "dealgate_decisions_total{outcome=\"block\"}"), blocks);
    assert_int_equal(sample(text, "dealgate_decisions_total{outcome=\"allow\"}"), 0);
    long long codes = 0;
    for (int i = 0; i < 7; i++) {
        char p[96];
        snprintf(p, sizeof p, "dealgate_decision_reasons_total{code=\"code_%d\"}", i);
        long long v = sample(text, p);
        assert_true(v > 0);
        codes += v;
    }
    assert_int_equal(codes, blocks);
    free(text);
    gate_metrics_free(g.metrics);
}

static void test_retry_and_replay(void **state)
{
    (void)state;
    gate_ctx g = {0};
    assert_int_equal(gate_metrics_new(&g.metrics), DG_OK);
    dg_decision d = {0};
    gate_result retry = {.status = 503, .err_code = "lookup_retry"};
    gate_observe_decision(&g, &retry, &d, NULL, "OPP");
    char logged[] = "{}";
    gate_result replay = {.status = 200, .text = logged, .replay = 1};
    gate_observe_decision(&g, &replay, &d, NULL, "OPP"); /* not a new decision */
    gate_result other = {.status = 503, .err_code = "log_unavailable"};
    gate_observe_decision(&g, &other, &d, NULL, "OPP");
    size_t len = 0;
    char *text = gate_metrics_render(&g, NULL, &len);
    assert_int_equal(sample(text, "dealgate_decisions_total{outcome=\"retry\"}"), 1);
    assert_int_equal(sample(text, "dealgate_decisions_total{outcome=\"allow\"}"), 0);
    assert_int_equal(sample(text, "dealgate_decisions_total{outcome=\"block\"}"), 0);
    free(text);
    gate_metrics_free(g.metrics);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_counts_are_exact),
        cmocka_unit_test(test_retry_and_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
