/* runtime.c — the reference-counted (config, connectors, token hashes) snapshot. */
#include "gate/gate.h"

#include <mbedtls/sha256.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static dg_err tokens_hash(const cfg_strlist *l, gate_tokens *out)
{
    out->n = 0;
    out->h = NULL;
    if (l->n == 0) return DG_OK;
    out->h = calloc(l->n, sizeof *out->h);
    if (!out->h) return DG_ENOMEM;
    for (size_t i = 0; i < l->n; i++)
        mbedtls_sha256_ret((const unsigned char *)l->v[i], strlen(l->v[i]), out->h[i], 0);
    out->n = l->n;
    return DG_OK;
}

static void rt_free(gate_rt *rt)
{
    if (!rt) return;
    conn_set_free(rt->conns);
    cfg_free(rt->cfg);
    free(rt->webhook.h);
    free(rt->reader.h);
    free(rt->comp_reader.h);
    free(rt->desk.h);
    free(rt);
}

dg_err gate_rt_new(struct cfg *c, gate_rt **out, char *err, size_t errlen)
{
    dg_err rc = DG_ENOMEM;
    *out = NULL;
    gate_rt *rt = calloc(1, sizeof *rt);
    if (!rt) {
        cfg_free(c);
        return dg_errf(err, errlen, DG_ENOMEM, "out of memory");
    }
    rt->cfg = c;
    rt->refs = 1;
    if (tokens_hash(&c->auth.webhook_tokens, &rt->webhook) != DG_OK ||
        tokens_hash(&c->auth.reader_tokens, &rt->reader) != DG_OK ||
        tokens_hash(&c->auth.comp_reader_tokens, &rt->comp_reader) != DG_OK ||
        tokens_hash(&c->auth.desk_tokens, &rt->desk) != DG_OK) {
        dg_errf(err, errlen, DG_ENOMEM, "out of memory");
        goto fail;
    }
    rc = conn_set_new(c, &rt->conns, err, errlen);
    if (rc != DG_OK) goto fail;
    *out = rt;
    return DG_OK;
fail:
    rt_free(rt);
    return rc;
}

gate_rt *gate_rt_acquire(gate_ctx *g)
{
    pthread_mutex_lock(&g->rt_lock);
    gate_rt *rt = g->rt;
    if (rt) rt->refs++;
    pthread_mutex_unlock(&g->rt_lock);
    return rt;
}

void gate_rt_release(gate_ctx *g, gate_rt *rt)
{
    if (!rt) return;
    pthread_mutex_lock(&g->rt_lock);
    int last = --rt->refs == 0;
    pthread_mutex_unlock(&g->rt_lock);
    if (last) rt_free(rt);
}

void gate_rt_install(gate_ctx *g, gate_rt *rt)
{
    pthread_mutex_lock(&g->rt_lock);
    gate_rt *old = g->rt;
    g->rt = rt;
    pthread_mutex_unlock(&g->rt_lock);
    gate_rt_release(g, old);
}

dg_err gate_reload(gate_ctx *g, const char *path)
{
    struct cfg *c = NULL;
    cfg_errors errs = {0};
    if (cfg_load(path, &c, &errs) != DG_OK) {
        for (size_t i = 0; i < errs.lines.n; i++)
            fprintf(stderr, "%s\n", errs.lines.v[i]);
        fprintf(stderr,
                "{\"event\":\"config_reload\",\"ok\":false,\"errors\":%zu,\"note\":\"kept the "
                "previous configuration\"}\n",
                errs.lines.n);
        cfg_errors_free(&errs);
        return DG_ECONFIG;
    }
    for (size_t i = 0; i < c->warnings.n; i++)
        fprintf(stderr, "%s\n", c->warnings.v[i]);
    char err[256];
    char version[sizeof c->version];
    memcpy(version, c->version, sizeof version);
    gate_rt *rt = NULL;
    if (gate_rt_new(c, &rt, err, sizeof err) != DG_OK) {
        fprintf(stderr, "%s: %s\n", path, err);
        fprintf(stderr, "{\"event\":\"config_reload\",\"ok\":false,\"note\":\"kept the previous "
                        "configuration\"}\n");
        return DG_ECONFIG;
    }
    gate_rt_install(g, rt);
    fprintf(stderr, "{\"event\":\"config_reload\",\"ok\":true,\"version\":\"%s\"}\n", version);
    return DG_OK;
}

int gate_token_match(const gate_tokens *set, const char *tok, size_t len)
{
    unsigned char h[GATE_HASH_LEN];
    mbedtls_sha256_ret((const unsigned char *)tok, len, h, 0);
    unsigned found = 0;
    for (size_t i = 0; i < set->n; i++) {
        unsigned char diff = 0;
        for (size_t k = 0; k < GATE_HASH_LEN; k++)
            diff |= (unsigned char)(h[k] ^ set->h[i][k]);
        found |= (unsigned)(diff == 0);
    }
    return found != 0;
}

int64_t gate_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void gate_new_id(const char *prefix, char *buf, size_t cap)
{
    static const char b32[] = "0123456789abcdefghjkmnpqrstvwxyz";
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static uint64_t last_t;
    static unsigned char last_rnd[10];
    unsigned char rnd[10] = {0};
    uint64_t t = (uint64_t)gate_now_ms();
    /* Monotonic: an id made in the same millisecond as the previous one (or while the clock
     * stands behind it) is the previous one plus 1, so ids sort in the order they were made
     * and two decisions of one deal in one millisecond keep their order ("newest wins"). */
    pthread_mutex_lock(&mu);
    if (t > last_t) {
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            for (size_t i = 0; i < sizeof rnd; i++)
                rnd[i] ^= (unsigned char)(ts.tv_nsec >> (i % 4 * 8));
        }
        rnd[0] &= 0x7f; /* room to count up within the millisecond */
    } else {
        t = last_t;
        memcpy(rnd, last_rnd, sizeof rnd);
        int i = (int)sizeof rnd - 1;
        while (i >= 0 && ++rnd[i] == 0)
            i--;
        if (i < 0) t++; /* 2^80 ids in one millisecond: move on to the next */
    }
    last_t = t;
    memcpy(last_rnd, rnd, sizeof rnd);
    pthread_mutex_unlock(&mu);
    char id[27];
    /* 10 chars of time (50 bits, top 2 zero), 16 chars of randomness (80 bits). */
    for (int i = 9; i >= 0; i--) {
        id[i] = b32[t & 31];
        t >>= 5;
    }
    uint64_t hi = 0, lo = 0;
    for (int i = 0; i < 5; i++)
        hi = (hi << 8) | rnd[i];
    for (int i = 5; i < 10; i++)
        lo = (lo << 8) | rnd[i];
    for (int i = 17; i >= 10; i--) {
        id[i] = b32[hi & 31];
        hi >>= 5;
    }
    for (int i = 25; i >= 18; i--) {
        id[i] = b32[lo & 31];
        lo >>= 5;
    }
    id[26] = '\0';
    snprintf(buf, cap, "%s%s", prefix, id);
}
