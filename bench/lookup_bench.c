/* lookup_bench.c — what a live co-sell look-up costs on top of the co-sell system itself.
 *
 * Starts tests/fakes/fake_ace.py answering every call after --delay-ms (20 ms), which also
 * records its own handling time per call (GET /__timings: from the parsed request to the
 * flushed answer, its 20 ms sleep included). Then:
 *   A. the ACE backend's by_id, sequential, N calls: client time per call minus the fake's
 *      time for the same call = dealgate's added latency (signing, HTTP, JSON, the fact);
 *   B. the same signed request from one bare libcurl handle (no dealgate code): a floor
 *      for what any client pays on loopback with a Python upstream;
 *   C. conn_lookup() through a conn_set built with cfg_load_string (cache misses: a new id
 *      each call), i.e. the path a decision takes;
 *   D. 64 concurrent conn_lookup()s for 8 distinct registrations, twice within the cache
 *      TTL: the fake must see at most 8 GetOpportunity calls in all.
 * Prints medians (and p90/p99) in microseconds. Usage: lookup_bench [--n N] [--delay-ms D]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg.h"
#include "connectors/backends.h"
#include "connectors/conn.h"
#include "connectors/http.h"
#include "tests/unit/fakeproc.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define CONC 64
#define DISTINCT 8

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t pct(const int64_t *v, size_t n, int p)
{
    int64_t *c = malloc(n * sizeof *c);
    if (c == NULL || n == 0) {
        free(c);
        return -1;
    }
    memcpy(c, v, n * sizeof *c);
    qsort(c, n, sizeof *c, cmp64);
    size_t i = (n - 1) * (size_t)p / 100;
    int64_t r = c[i];
    free(c);
    return r;
}

/* The fake's per-call handling times since the last reset. Returns the count (<= max). */
static size_t fake_timings(const fake_server *fk, int64_t *out, size_t max)
{
    char *r = fake_ctl(fk, "GET", "/__timings", NULL);
    cJSON *j = r ? cJSON_Parse(r) : NULL;
    free(r);
    size_t n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "us"))
    {
        if (n < max) out[n++] = (int64_t)it->valuedouble;
    }
    cJSON_Delete(j);
    return n;
}

static void report(const char *key, const char *what, const int64_t *client, const int64_t *server,
                   size_t n)
{
    int64_t *added = malloc(n * sizeof *added);
    if (added == NULL) return;
    for (size_t i = 0; i < n; i++)
        added[i] = client[i] - server[i];
    printf("%-34s n=%zu  client p50 %6lld us | upstream p50 %6lld us | added p50 %5lld us  "
           "p90 %5lld  p99 %5lld\n",
           what, n, (long long)pct(client, n, 50), (long long)pct(server, n, 50),
           (long long)pct(added, n, 50), (long long)pct(added, n, 90),
           (long long)pct(added, n, 99));
    printf("# %s client_p50=%lld upstream_p50=%lld added_p50=%lld\n", key,
           (long long)pct(client, n, 50), (long long)pct(server, n, 50),
           (long long)pct(added, n, 50));
    free(added);
}

static size_t discard(char *d, size_t s, size_t n, void *ud)
{
    (void)d;
    (void)ud;
    return s * n;
}

typedef struct {
    conn_set *set;
    pthread_barrier_t *bar;
    int idx;
    int64_t us;
    int found;
} worker;

static void *run_worker(void *arg)
{
    worker *w = arg;
    char id[16];
    snprintf(id, sizeof id, "O%d", 3000900 + w->idx % DISTINCT);
    char *clouds[] = {"aws"};
    dg_reg_ref reg = {.cloud = "aws", .id = id};
    dg_event e = {.opp_id = "006BENCH", .clouds = clouds, .nclouds = 1, .regs = &reg, .nregs = 1};
    const char *const want[] = {"aws"};
    dg_facts f = {0};
    pthread_barrier_wait(w->bar);
    int64_t t0 = now_us();
    conn_lookup(w->set, &e, want, 1, 5000, &f);
    w->us = now_us() - t0;
    w->found = f.nregs == 1 && f.regs[0].lookup == DG_LOOKUP_FOUND;
    dg_facts_free(&f);
    return NULL;
}

static int wave(conn_set *set, int64_t *p50, int *found)
{
    pthread_t th[CONC];
    worker w[CONC];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, CONC);
    for (int i = 0; i < CONC; i++) {
        w[i] = (worker){.set = set, .bar = &bar, .idx = i};
        if (pthread_create(&th[i], NULL, run_worker, &w[i]) != 0) return -1;
    }
    int64_t us[CONC];
    *found = 0;
    for (int i = 0; i < CONC; i++) {
        pthread_join(th[i], NULL);
        us[i] = w[i].us;
        *found += w[i].found;
    }
    pthread_barrier_destroy(&bar);
    *p50 = pct(us, CONC, 50);
    return 0;
}

int main(int argc, char **argv)
{
    int n = 300, delay = 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        char *end = NULL;
        long v = strtol(argv[i + 1], &end, 10);
        if (end == argv[i + 1] || *end != '\0' || v < 1 || v > 100000) {
            fprintf(stderr, "bad value for %s\n", argv[i]);
            return 2;
        }
        if (strcmp(argv[i], "--n") == 0)
            n = (int)v;
        else if (strcmp(argv[i], "--delay-ms") == 0)
            delay = (int)v;
        else {
            fprintf(stderr, "usage: lookup_bench [--n N] [--delay-ms D]\n");
            return 2;
        }
    }
    if (n > 600) n = 600;
    conn_http_global_init();
    char dstr[16];
    snprintf(dstr, sizeof dstr, "%d", delay);
    const char *args[] = {"--delay-ms", dstr, "--generate", "1000", NULL};
    fake_server fk;
    if (fake_start(&fk, "fake_ace.py", args) != 0) {
        fprintf(stderr, "cannot start tests/fakes/fake_ace.py\n");
        return 1;
    }
    printf("fake ACE on %s answering after %d ms; %d sequential look-ups per series\n", fk.base,
           delay, n);
    int64_t *client = calloc((size_t)n, sizeof *client);
    int64_t *server = calloc((size_t)n + 16, sizeof *server);
    int rc = 1;
    char err[256];
    char id[16];

    /* A: the backend alone */
    cfg_cloud cc = {.key = "aws",
                    .connector = CFG_CONN_ACE,
                    .endpoint = fk.base,
                    .region = "us-east-1",
                    .catalog = "AWS",
                    .access_key_id = "AKIDEXAMPLE",
                    .secret_access_key = SECRET,
                    .timeout_ms = 2000};
    void *st = NULL;
    if (conn_ace_backend.open(&cc, NULL, &st, err, sizeof err) != DG_OK) {
        fprintf(stderr, "open: %s\n", err);
        goto out;
    }
    {
        dg_reg_fact f = {0}; /* waits for the first ListOpportunities pass to finish */
        conn_ace_backend.by_crm_id(st, "BENCH-0", 10000, &f);
        dg_reg_fact_free(&f);
    }
    for (int i = 0; i < 20; i++) { /* warm-up: connections */
        dg_reg_fact f = {0};
        conn_ace_backend.by_id(st, "O3000000", 2000, &f);
        dg_reg_fact_free(&f);
    }
    fake_post(&fk, "/__reset", "{}");
    for (int i = 0; i < n; i++) {
        dg_reg_fact f = {0};
        snprintf(id, sizeof id, "O%d", 3000000 + i % 100);
        int64_t t0 = now_us();
        conn_ace_backend.by_id(st, id, 2000, &f);
        client[i] = now_us() - t0;
        if (f.lookup != DG_LOOKUP_FOUND) {
            fprintf(stderr, "look-up %s: %s\n", id, f.error ? f.error : "not found");
            dg_reg_fact_free(&f);
            goto out;
        }
        dg_reg_fact_free(&f);
    }
    size_t m = fake_timings(&fk, server, (size_t)n + 16);
    if (m != (size_t)n) {
        fprintf(stderr, "fake saw %zu calls for %d look-ups\n", m, n);
        goto out;
    }
    report("A", "A. ace by_id (backend)", client, server, (size_t)n);
    conn_ace_backend.close(st);
    st = NULL;

    /* B: one bare libcurl handle, same signed request */
    {
        CURL *h = curl_easy_init();
        struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/x-amz-json-1.0");
        hd = curl_slist_append(hd, "X-Amz-Target: AWSPartnerCentralSelling.GetOpportunity");
        char url[96], body[96];
        snprintf(url, sizeof url, "%s/", fk.base);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
        curl_easy_setopt(h, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:partnercentral-selling");
        curl_easy_setopt(h, CURLOPT_USERNAME, "AKIDEXAMPLE");
        curl_easy_setopt(h, CURLOPT_PASSWORD, SECRET);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
        fake_post(&fk, "/__reset", "{}");
        for (int i = 0; i < n; i++) {
            snprintf(body, sizeof body, "{\"Catalog\":\"AWS\",\"Identifier\":\"O%d\"}",
                     3000000 + i % 100);
            curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, body);
            int64_t t0 = now_us();
            curl_easy_perform(h);
            client[i] = now_us() - t0;
        }
        curl_slist_free_all(hd);
        curl_easy_cleanup(h);
        m = fake_timings(&fk, server, (size_t)n + 16);
        if (m == (size_t)n) report("B", "B. bare libcurl, same request", client, server, (size_t)n);
    }

    /* C and D: through conn_set, built from a config text */
    char ini[2048];
    snprintf(ini, sizeof ini,
             "[server]\nlisten = 127.0.0.1:18097\n[auth]\nopen = yes\n"
             "[pipeline]\nstages = Prospecting, Demo, Closed Won, Closed Lost\n"
             "won = Closed Won\nlost = Closed Lost\n"
             "[cloud:aws]\nname = AWS ACE\nconnector = ace\nendpoint = %s\n"
             "region = us-east-1\ncatalog = AWS\naccess_key_id = AKIDEXAMPLE\n"
             "secret_access_key = %s\ntimeout_ms = 2000\ncache_ttl_s = 300\n"
             "negative_cache_ttl_s = 30\n",
             fk.base, SECRET);
    struct cfg *c = NULL;
    cfg_errors errs = {0};
    if (cfg_load_string("bench.ini", ini, &c, &errs) != DG_OK) {
        for (size_t i = 0; i < errs.lines.n; i++)
            fprintf(stderr, "%s\n", errs.lines.v[i]);
        cfg_errors_free(&errs);
        goto out;
    }
    conn_set *set = NULL;
    if (conn_set_new(c, &set, err, sizeof err) != DG_OK) {
        fprintf(stderr, "conn_set_new: %s\n", err);
        cfg_free(c);
        goto out;
    }
    {
        char *clouds[] = {"aws"};
        const char *const want[] = {"aws"};
        {
            dg_facts f = {0}; /* by CRM id: waits for the set's ACE index pass */
            dg_event e = {.opp_id = "BENCH-1", .clouds = clouds, .nclouds = 1};
            conn_lookup(set, &e, want, 1, 10000, &f);
            dg_facts_free(&f);
        }
        for (int i = 0; i < 20; i++) { /* warm-up with ids not measured below */
            dg_facts f = {0};
            snprintf(id, sizeof id, "O%d", 3000800 + i);
            dg_reg_ref reg = {.cloud = "aws", .id = id};
            dg_event e = {
                .opp_id = "006B", .clouds = clouds, .nclouds = 1, .regs = &reg, .nregs = 1};
            conn_lookup(set, &e, want, 1, 5000, &f);
            dg_facts_free(&f);
        }
        fake_post(&fk, "/__reset", "{}");
        for (int i = 0; i < n; i++) {
            dg_facts f = {0};
            snprintf(id, sizeof id, "O%d", 3000100 + i); /* a new id each time: a cache miss */
            dg_reg_ref reg = {.cloud = "aws", .id = id};
            dg_event e = {
                .opp_id = "006B", .clouds = clouds, .nclouds = 1, .regs = &reg, .nregs = 1};
            int64_t t0 = now_us();
            conn_lookup(set, &e, want, 1, 5000, &f);
            client[i] = now_us() - t0;
            int ok = f.nregs == 1 && f.regs[0].lookup == DG_LOOKUP_FOUND;
            dg_facts_free(&f);
            if (!ok) {
                fprintf(stderr, "conn_lookup %s failed\n", id);
                goto out_set;
            }
        }
        m = fake_timings(&fk, server, (size_t)n + 16);
        if (m == (size_t)n)
            report("C", "C. conn_lookup (set, cache miss)", client, server, (size_t)n);

        fake_post(&fk, "/__reset", "{}");
        int64_t p1, p2;
        int f1, f2;
        if (wave(set, &p1, &f1) != 0) goto out_set;
        long calls1 = fake_count(&fk, "GetOpportunity");
        if (wave(set, &p2, &f2) != 0) goto out_set;
        long calls2 = fake_count(&fk, "GetOpportunity");
        printf("D. %d concurrent look-ups of %d registrations, twice within the TTL:\n"
               "   wave 1: fake saw %ld GetOpportunity calls, %d/%d found, p50 %lld us\n"
               "   wave 2: fake saw %ld more, %d/%d found, p50 %lld us  -> %ld calls per TTL "
               "(limit %d): %s\n",
               CONC, DISTINCT, calls1, f1, CONC, (long long)p1, calls2 - calls1, f2, CONC,
               (long long)p2, calls2, DISTINCT, calls2 <= DISTINCT ? "PASS" : "FAIL");
        printf("# D calls_per_ttl=%ld wave1_p50=%lld wave2_p50=%lld\n", calls2, (long long)p1,
               (long long)p2);
        rc = calls2 <= DISTINCT && f1 == CONC && f2 == CONC ? 0 : 1;
    }
out_set:
    conn_set_free(set);
    cfg_free(c);
out:
    if (st) conn_ace_backend.close(st);
    free(client);
    free(server);
    fake_stop(&fk);
    return rc;
}
