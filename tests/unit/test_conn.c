/* test_conn.c — the connector set: cache, singleflight, budget, parallel look-ups, health.
 *
 * A test backend stands in for a co-sell system (conn_set_new_with overrides every cloud's
 * connector): its behaviour comes from the look-up key ("F..." found, "N..." not found,
 * "X..." fails, "bad..." has invalid syntax) and its delay from the cloud's endpoint
 * ("delay=200"). It counts its calls and remembers the last timeout it was given.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/backends.h"
#include "connectors/conn.h"

static atomic_int calls;
static atomic_int last_timeout;

typedef struct {
    int delay_ms;
} tstate;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static int t_valid(const char *id)
{
    return strncmp(id, "bad", 3) != 0;
}

static dg_err t_open(const cfg_cloud *cc, const char *state_dir, void **state, char *err,
                     size_t errlen)
{
    (void)state_dir;
    if (cc->endpoint && strcmp(cc->endpoint, "fail-open") == 0)
        return dg_errf(err, errlen, DG_EAUTH, "credentials refused");
    tstate *st = calloc(1, sizeof *st);
    if (st == NULL) return DG_ENOMEM;
    if (cc->endpoint && strncmp(cc->endpoint, "delay=", 6) == 0) {
        char *end;
        long v = strtol(cc->endpoint + 6, &end, 10);
        if (*end == '\0' && v >= 0 && v < 10000) st->delay_ms = (int)v;
    }
    *state = st;
    return DG_OK;
}

static void t_close(void *state)
{
    free(state);
}

static dg_err t_answer(tstate *st, const char *key, int timeout_ms, int by_crm, dg_reg_fact *out)
{
    atomic_fetch_add(&calls, 1);
    atomic_store(&last_timeout, timeout_ms);
    if (st->delay_ms) sleep_ms(st->delay_ms);
    if (key[0] == 'F') {
        out->lookup = DG_LOOKUP_FOUND;
        out->status = strdup("Approved");
        out->crm_id = strdup("006A");
        if (by_crm) out->id = strdup("O999");
        return DG_OK;
    }
    if (key[0] == 'N') {
        out->lookup = DG_LOOKUP_NOT_FOUND;
        return DG_OK;
    }
    out->lookup = DG_LOOKUP_FAILED;
    out->error = strdup("upstream said \"no\"");
    out->retryable = 1;
    return DG_EUPSTREAM;
}

static dg_err t_by_id(void *state, const char *id, int timeout_ms, dg_reg_fact *out)
{
    return t_answer(state, id, timeout_ms, 0, out);
}

static dg_err t_by_crm(void *state, const char *crm, int timeout_ms, dg_reg_fact *out)
{
    return t_answer(state, crm, timeout_ms, 1, out);
}

static const conn_backend test_backend = {
    .name = "test",
    .valid_id = t_valid,
    .open = t_open,
    .close = t_close,
    .by_id = t_by_id,
    .by_crm_id = t_by_crm,
    .health = NULL,
};

/* A config of up to 3 clouds built by hand. */
typedef struct {
    struct cfg c;
    cfg_cloud clouds[3];
} tcfg;

static void cfg_init(tcfg *t, size_t n, const char *endpoint, int ttl, int neg_ttl)
{
    static const char *const keys[] = {"aws", "azure", "gcp"};
    static const char *const names[] = {"AWS ACE", "Microsoft Partner Center", "Google"};
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < n; i++) {
        cfg_cloud *cc = &t->clouds[i];
        cc->key = (char *)keys[i];
        cc->name = (char *)names[i];
        cc->connector = CFG_CONN_NONE;
        cc->endpoint = (char *)endpoint;
        cc->timeout_ms = 2000;
        cc->cache_ttl_s = ttl;
        cc->negative_cache_ttl_s = neg_ttl;
    }
    t->c.clouds = t->clouds;
    t->c.nclouds = n;
    t->c.server.decision_budget_ms = 5000;
}

static conn_set *set_new(const tcfg *t, size_t cache_max)
{
    conn_set *s = NULL;
    char err[256] = "";
    assert_int_equal(conn_set_new_with(&t->c, &test_backend, cache_max, &s, err, sizeof err),
                     DG_OK);
    assert_non_null(s);
    return s;
}

/* An event for opportunity opp with registration ids for some clouds (pairs, NULL-ended). */
static void event_init(dg_event *e, const char *opp, ...)
{
    memset(e, 0, sizeof *e);
    e->opp_id = strdup(opp);
    va_list ap;
    va_start(ap, opp);
    for (;;) {
        const char *cloud = va_arg(ap, const char *);
        if (cloud == NULL) break;
        const char *id = va_arg(ap, const char *);
        e->regs = realloc(e->regs, (e->nregs + 1) * sizeof *e->regs);
        assert_non_null(e->regs);
        e->regs[e->nregs].cloud = strdup(cloud);
        e->regs[e->nregs].id = strdup(id);
        e->nregs++;
    }
    va_end(ap);
}

/* One look-up of one cloud; the fact is left in f->regs[f->nregs - 1]. */
static const dg_reg_fact *look1(conn_set *s, const dg_event *e, const char *cloud, int budget,
                                dg_facts *f)
{
    const char *clouds[] = {cloud};
    size_t before = f->nregs;
    assert_int_equal(conn_lookup(s, e, clouds, 1, budget, f), DG_OK);
    assert_int_equal(f->nregs, before + 1);
    return &f->regs[f->nregs - 1];
}

static void reset(void)
{
    atomic_store(&calls, 0);
    atomic_store(&last_timeout, 0);
}

static void test_hit_and_miss(void **state)
{
    (void)state;
    reset();
    tcfg t;
    cfg_init(&t, 1, NULL, 300, 30);
    conn_set *s = set_new(&t, 0);
    dg_event e;
    event_init(&e, "006A", "aws", "F1", NULL);
    dg_facts f = {0};
    const dg_reg_fact *r = look1(s, &e, "aws", 1000, &f);
    assert_int_equal(r->lookup, DG_LOOKUP_FOUND);
    assert_string_equal(r->cloud, "aws");
    assert_string_equal(r->id, "F1");
    assert_string_equal(r->source, "test");
    assert_string_equal(r->status, "Approved");
    assert_string_equal(r->crm_id, "006A");
    assert_int_equal(r->by_crm_id, 0);
    r = look1(s, &e, "aws", 1000, &f);
    assert_int_equal(r->lookup, DG_LOOKUP_FOUND);
    assert_string_equal(r->status, "Approved");
    assert_string_equal(r->source, "test");
    assert_int_equal(atomic_load(&calls), 1);
    uint64_t h, m, u;
    conn_stats(s, &h, &m, &u);
    assert_int_equal(h, 1);
    assert_int_equal(m, 1);
    assert_int_equal(u, 1);
    dg_facts_free(&f);
    dg_event_free(&e);
    conn_set_free(s);
}

static void test_ttl_expiry(void **state)
{
    (void)state;
    reset();
    tcfg t;
    cfg_init(&t, 1, NULL, 1, 1);
    conn_set *s = set_new(&t, 0);
    dg_event e;
    event_init(&e, "006A", "aws", "F1", NULL);
    dg_facts f = {0};
    look1(s, &e, "aws", 1000, &f);
    look1(s, &e, "aws", 1000, &f);
    assert_int_equal(atomic_load(&calls), 1);
    sleep_ms(1100);
    const dg_reg_fact *r = look1(s, &e, "aws", 1000, &f);
    assert_int_equal(r->lookup, DG_LOOKUP_FOUND);
    assert_int_equal(atomic_load(&calls), 2);
    dg_facts_free(&f);
    dg_event_free(&e);
    conn_set_free(s);
}

static void test_negative_and_failed(void **state)
{
    (void)state;
    reset();
    tcfg t;
    cfg_init(&t, 2, NULL, 300, 30);
    t.clouds[1].negative_cache_ttl_s = 0; /* azure: no negative caching */
    conn_set *s = set_new(&t, 0);
    dg_event e;
    event_init(&e, "006A", "aws", "N1", "azure", "N2", "gcp", "X1", NULL);
    dg_facts f = {0};
    for (int i = 0; i < 2; i++) {
        const dg_reg_fact *r = look1(s, &e, "aws", 1000, &f);
        assert_int_equal(r->lookup, DG_LOOKUP_NOT_FOUND);
        assert_string_equal(r->id, "N1");
    }
    assert_int_equal(atomic_load(&calls), 1); /* cached for negative_cache_ttl_s */
    for (int i = 0; i < 2; i++)
        look1(s, &e, "azure", 1000, &f);
    assert_int_equal(atomic_load(&calls), 3); /* negative TTL 0: not cached */
    dg_facts_free(&f);
    dg_event_free(&e);
    conn_set_free(s);

    /* FAILED is never cached. */
    reset();
    cfg_init(&t, 1, NULL, 300, 30);
    s = set_new(&t, 0);
    event_init(&e, "006A", "aws", "X1", NULL);
    for (int i = 0; i < 2; i++) {
        const dg_reg_fact *r = look1(s, &e, "aws", 1000, &f);
        assert_int_equal(r->lookup, DG_LOOKUP_FAILED);
        assert_int_equal(r->retryable, 1);
        assert_string_equal(r->error, "upstream said \"no\"");
    }
    assert_int_equal(atomic_load(&calls), 2);
    dg_facts_free(&f);
    dg_event_free(&e);
    conn_set_free(s);
}

static void test_by_crm_id_and_syntax(void **state)
{
    (void)state;
    reset();
    tcfg t;
    cfg_init(&t, 2, NULL, 300, 30);
    conn_set *s = set_new(&t, 0);
    dg_event e;
    event_init(&e, "F-opp", "azure", "bad-id", NULL);
    dg_facts f = {0};
    const dg_reg_fact *r = look1(s, &e, "aws", 1000, &f); /* no aws id: by CRM id */
    assert_int_equal(r->lookup, DG_LOOKUP_FOUND);
    assert_int_equal(r->by_crm_id, 1);
    assert_string_equal(r->id, "O999");
    assert_int_equal(atomic_load(&calls), 1);
    r = look1(s, &e, "azure", 1000, &f); /* invalid syntax: no call */
    assert_int_equal(r->lookup, DG_LOOKUP_NOT_FOUND);
    assert_string_equal(r->id, "bad-id");
    assert_string_equal(r->error, "invalid Microsoft Partner Center registration id syntax");
    assert_string_equal(r->source, "test");
    assert_int_equal(r->by_crm_id, 0);
    assert_int_equal(atomic_load(&calls), 1);
    dg_facts_free(&f);
    dg_event_free(&e);

    /* An empty id in the CRM counts as none. */
    event_init(&e, "N-opp", "aws", "", NULL);
    r = look1(s, &e, "aws", 1000, &f);
    assert_int_equal(r->lookup, DG_LOOKUP_NOT_FOUND);
    assert_int_equal(r->by_crm_id, 1);
    assert_null(r->id);
    dg_facts_free(&f);
    dg_event_free(&e);
    conn_set_free(s);
}

typedef struct {
    conn_set *s;
    const dg_event *e;
    pthread_barrier_t *bar;
    dg_lookup_status got;
} sf_arg;

static void *sf_thread(void *arg)
{
    sf_arg *a = arg;
    dg_facts f = {0};
    const char *clouds[] = {"aws"};
    pthread_barrier_wait(a->bar);
    a->got = conn_lookup(a->s, a->e, clouds, 1, 3000, &f) == DG_OK && f.nregs == 1
                 ? f.regs[0].lookup
                 : DG_LOOKUP_SKIPPED;
    dg_facts_free(&f);
    return NULL;
}

static void test_singleflight(void **state)
{
    (void)state;
    reset();
    tcfg t;
    cfg_init(&t, 1, "delay=200", 300, 30);
    conn_set *s = set_new(&t, 0);
    dg_event e;
    event_init(&e, "006A", "aws", "F7", NULL);
    enum { N = 16 };
    pthread_t th[N];
    sf_arg args[N];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, N);
    for (int i = 0; i < N; i++) {
        args[i] = (sf_arg){s, &e, &bar, DG_LOOKUP_SKIPPED};
        assert_int_equal(pthread_create(&th[i], NULL, sf_thread, &args[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);
    for (int i = 0; i < N; i++)
        assert_int_equal(args[i].got, DG_LOOKUP_FOUND);
    assert_int_equal(atomic_load(&calls), 1);
    uint64_t h, m, u;
    conn_stats(s, &h, &m, &u);
    assert_int_equal(h + m, N);
    assert_int_equal(u, 1);
    dg_event_free(&e);
    conn_set_free(s);
}

static void test_budget_exceeded(void **state)
{
    (void)state;
    reset();
    tcfg t;
    cfg_init(&t, 1, "delay=1000", 300, 30);
    conn_set *s = set_new(&t, 0);
    dg_event e;
    event_init(&e, "006A", "aws", "F1", NULL);
    dg_facts f = {0};
    long t0 = now_ms();
    const dg_reg_fact *r = look1(s, &e, "aws", 100, &f);
    long took = now_ms() - t0;
    assert_true(took >= 95);
    assert_true(took < 900); /* at the budget, not the 1 s upstream (room for a busy CI) */
    assert_int_equal(r->lookup, DG_LOOKUP_FAILED);
    assert_int_equal(r->retryable, 1);
    assert_string_equal(r->error, "look-up exceeded the decision budget (100 ms)");
    assert_string_equal(r->cloud, "aws");
    assert_string_equal(r->id, "F1");
    assert_string_equal(r->source, "test");
    int tmo = atomic_load(&last_timeout);
    assert_true(tmo > 0 && tmo <= 100); /* min(timeout_ms 2000, remaining budget) */
    /* The late answer lands in the cache. */
    sleep_ms(1050);
    r = look1(s, &e, "aws", 100, &f);
    assert_int_equal(r->lookup, DG_LOOKUP_FOUND);
    assert_int_equal(atomic_load(&calls), 1);
    dg_facts_free(&f);

    /* Freeing the set while a late look-up is still running waits for it safely. */
    dg_event_free(&e);
    event_init(&e, "006B", "aws", "F2", NULL);
    r = look1(s, &e, "aws", 50, &f);
    assert_int_equal(r->lookup, DG_LOOKUP_FAILED);
    dg_facts_free(&f);
    dg_event_free(&e);
    t0 = now_ms();
    conn_set_free(s);
    assert_true(now_ms() - t0 >= 200);
    assert_int_equal(atomic_load(&calls), 2);
}

static void test_timeout_is_cloud_timeout(void **state)
{
    (void)state;
    reset();
    tcfg t;
    cfg_init(&t, 1, NULL, 300, 30);
    t.clouds[0].timeout_ms = 150;
    conn_set *s = set_new(&t, 0);
    dg_event e;
    event_init(&e, "006A", "aws", "F1", NULL);
    dg_facts f = {0};
    look1(s, &e, "aws", 5000, &f);
    assert_int_equal(atomic_load(&last_timeout), 150);
    dg_facts_free(&f);
    dg_event_free(&e);
    conn_set_free(s);
}

static void test_parallel(void **state)
{
    (void)state;
    reset();
    tcfg t;
    cfg_init(&t, 3, "delay=400", 300, 30);
    conn_set *s = set_new(&t, 0);
    dg_event e;
    event_init(&e, "F-opp", "aws", "F1", "azure", "N1", NULL);
    dg_facts f = {0};
    const char *clouds[] = {"azure", "nowhere", "aws", "gcp"};
    long t0 = now_ms();
    assert_int_equal(conn_lookup(s, &e, clouds, 4, 3000, &f), DG_OK);
    long took = now_ms() - t0;
    assert_true(took >= 395);
    assert_true(took < 1000); /* not 1,200: the three clouds ran at once */
    assert_int_equal(f.nregs, 4);
    assert_string_equal(f.regs[0].cloud, "azure");
    assert_int_equal(f.regs[0].lookup, DG_LOOKUP_NOT_FOUND);
    assert_string_equal(f.regs[1].cloud, "nowhere");
    assert_int_equal(f.regs[1].lookup, DG_LOOKUP_FAILED);
    assert_string_equal(f.regs[1].error, "cloud nowhere is not configured");
    assert_string_equal(f.regs[2].cloud, "aws");
    assert_int_equal(f.regs[2].lookup, DG_LOOKUP_FOUND);
    assert_string_equal(f.regs[3].cloud, "gcp");
    assert_int_equal(f.regs[3].by_crm_id, 1);
    assert_int_equal(f.regs[3].lookup, DG_LOOKUP_FOUND);
    assert_int_equal(atomic_load(&calls), 3);
    dg_facts_free(&f);
    dg_event_free(&e);
    conn_set_free(s);
}

static void test_lru_eviction(void **state)
{
    (void)state;
    reset();
    tcfg t;
    cfg_init(&t, 1, NULL, 300, 30);
    conn_set *s = set_new(&t, 2);
    dg_facts f = {0};
    const char *seq[] = {"FA", "FB", "FA", "FC", "FB", "FC"};
    const int expect_calls[] = {1, 2, 2, 3, 4, 4};
    for (size_t i = 0; i < 6; i++) {
        dg_event e;
        event_init(&e, "006A", "aws", seq[i], NULL);
        look1(s, &e, "aws", 1000, &f);
        assert_int_equal(atomic_load(&calls), expect_calls[i]);
        dg_event_free(&e);
    }
    dg_facts_free(&f);
    conn_set_free(s);
}

static void test_health_json(void **state)
{
    (void)state;
    reset();
    tcfg t;
    cfg_init(&t, 2, NULL, 300, 30);
    conn_set *s = set_new(&t, 0);
    char buf[2048];
    size_t len = conn_health_json(s, buf, sizeof buf);
    assert_int_equal(len, strlen(buf));
    assert_non_null(strstr(buf, "\"status\":\"idle\""));
    dg_event e;
    event_init(&e, "006A", "aws", "F1", "azure", "X1", NULL);
    dg_facts f = {0};
    look1(s, &e, "aws", 1000, &f);
    look1(s, &e, "aws", 1000, &f);
    look1(s, &e, "azure", 1000, &f);
    len = conn_health_json(s, buf, sizeof buf);
    assert_true(len < sizeof buf);
    cJSON *j = cJSON_Parse(buf);
    assert_non_null(j);
    cJSON *aws = cJSON_GetObjectItemCaseSensitive(j, "aws");
    cJSON *az = cJSON_GetObjectItemCaseSensitive(j, "azure");
    assert_non_null(aws);
    assert_non_null(az);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(aws, "connector")->valuestring, "test");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(aws, "status")->valuestring, "ok");
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(aws, "last_error")));
    assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(aws, "last_ok_at")));
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(aws, "cache_hits")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(aws, "cache_misses")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(aws, "upstream_calls")->valueint, 1);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(az, "status")->valuestring, "error");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(az, "last_error")->valuestring,
                        "upstream said \"no\"");
    const char *at = cJSON_GetObjectItemCaseSensitive(az, "last_error_at")->valuestring;
    assert_int_equal(strlen(at), 20);
    assert_int_equal(at[19], 'Z');
    cJSON_Delete(j);

    /* Too small a buffer: terminated, and the needed length is returned. */
    char small[16];
    size_t need = conn_health_json(s, small, sizeof small);
    assert_int_equal(need, len);
    assert_int_equal(strlen(small), sizeof small - 1);
    dg_facts_free(&f);
    dg_event_free(&e);
    conn_set_free(s);
}

static void test_open_error(void **state)
{
    (void)state;
    tcfg t;
    cfg_init(&t, 2, NULL, 300, 30);
    t.clouds[1].endpoint = "fail-open";
    conn_set *s = NULL;
    char err[256] = "";
    assert_int_equal(conn_set_new_with(&t.c, &test_backend, 0, &s, err, sizeof err), DG_EAUTH);
    assert_null(s);
    assert_string_equal(err, "cloud:azure: credentials refused");
}

static void test_real_none_backend(void **state)
{
    (void)state;
    tcfg t;
    cfg_init(&t, 1, NULL, 300, 30);
    conn_set *s = NULL;
    char err[256] = "";
    assert_int_equal(conn_set_new(&t.c, &s, err, sizeof err), DG_OK);
    dg_event e;
    event_init(&e, "006A", "aws", "anything-1", NULL);
    dg_facts f = {0};
    const dg_reg_fact *r = look1(s, &e, "aws", 1000, &f);
    assert_int_equal(r->lookup, DG_LOOKUP_FOUND);
    assert_null(r->status);
    assert_string_equal(r->source, "none");
    assert_string_equal(r->id, "anything-1");
    dg_event_free(&e);
    event_init(&e, "006A", NULL);
    r = look1(s, &e, "aws", 1000, &f);
    assert_int_equal(r->lookup, DG_LOOKUP_NOT_FOUND);
    assert_int_equal(r->by_crm_id, 1);
    dg_event_free(&e);
    event_init(&e, "006A", "aws", "tab\there", NULL);
    r = look1(s, &e, "aws", 1000, &f);
    assert_int_equal(r->lookup, DG_LOOKUP_NOT_FOUND);
    assert_string_equal(r->error, "invalid AWS ACE registration id syntax");
    dg_event_free(&e);
    dg_facts_free(&f);
    assert_ptr_equal(conn_backend_for(CFG_CONN_NONE), &conn_none_backend);
    assert_ptr_equal(conn_backend_for(CFG_CONN_FILE), &conn_file_backend);
    assert_ptr_equal(conn_backend_for(CFG_CONN_ACE), &conn_ace_backend);
    assert_ptr_equal(conn_backend_for(CFG_CONN_PARTNER_CENTER), &conn_partner_center_backend);
    assert_ptr_equal(conn_backend_for(CFG_CONN_GCP), &conn_gcp_backend);
    conn_set_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_and_miss),
        cmocka_unit_test(test_ttl_expiry),
        cmocka_unit_test(test_negative_and_failed),
        cmocka_unit_test(test_by_crm_id_and_syntax),
        cmocka_unit_test(test_singleflight),
        cmocka_unit_test(test_budget_exceeded),
        cmocka_unit_test(test_timeout_is_cloud_timeout),
        cmocka_unit_test(test_parallel),
        cmocka_unit_test(test_lru_eviction),
        cmocka_unit_test(test_health_json),
        cmocka_unit_test(test_open_error),
        cmocka_unit_test(test_real_none_backend),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
