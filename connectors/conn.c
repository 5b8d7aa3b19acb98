/* conn.c — the connector set: opened backends, the look-up cache, parallel look-ups.
 *
 * A conn_set holds one opened backend per [cloud:*] of a config snapshot and one cache shared
 * by all of them. The cache maps (cloud, by_id|by_crm_id, key) to a dg_reg_fact: FOUND for
 * the cloud's cache_ttl_s, NOT_FOUND for negative_cache_ttl_s, FAILED never. It is bounded
 * (10,000 entries by default) and evicts the least recently used entry when full.
 *
 * A cache miss becomes a "flight": one backend call on a detached worker thread. Concurrent
 * look-ups of the same key join the flight in progress instead of starting their own
 * (singleflight), so the co-sell system sees one call however many requests ask. The caller
 * waits on the set's condition variable until all its flights land or its budget runs out;
 * a flight still in the air then reads as FAILED ("look-up exceeded the decision budget"),
 * and its result still goes into the cache when it arrives. A flight is reference-counted
 * (each waiter and the worker hold a reference) and owns its key and result, so a worker
 * that outlives its caller never touches freed memory; conn_set_free waits for workers.
 *
 * The local backends (file, none) answer from memory: they are called inline by the caller
 * and never cached, so a changed registrations file is seen as soon as the file connector
 * reloads it (a cached answer would hide it for cache_ttl_s).
 *
 * One mutex guards the cache, the flights and the counters; backend calls run outside it.
 * Time for TTLs and budgets comes from CLOCK_MONOTONIC; health times are wall-clock.
 */
#include "connectors/conn.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "connectors/backends.h"
#include "connectors/http.h"

#define CONN_CACHE_MAX_DEFAULT 10000
#define CONN_BUCKETS 16384 /* power of two */
#define CONN_ERR_MAX 256
#define CONN_MAX_WORKERS 256 /* look-up threads at once; beyond, look-ups fail fast */

enum { KIND_BY_ID = 0, KIND_BY_CRM_ID = 1 };

typedef struct centry {
    struct centry *hnext;       /* hash chain */
    struct centry *prev, *next; /* LRU list: head is the most recently used */
    uint64_t hash;
    size_t inst;
    int kind;
    char *key;
    dg_reg_fact fact;
    int64_t expires_ns;
} centry;

typedef struct flight {
    struct flight *next; /* in the set's list of flights in the air */
    struct conn_set *set;
    size_t inst;
    int kind;
    char *key;
    int timeout_ms;
    int refs; /* waiters + the worker */
    int done;
    dg_reg_fact result;
} flight;

typedef struct {
    const cfg_cloud *cc;
    const conn_backend *be;
    void *state;
    int local; /* file, none: answered in memory, inline, never cached */
    uint64_t hits, misses, calls;
    uint64_t errors, lat_count, lat_sum_us; /* backend calls that failed; call durations */
    uint64_t lat[CONN_LAT_BUCKETS + 1];     /* by conn_lat_bounds_us, last = above all */
    int last_status;                        /* -1 no call yet, 0 ok, 1 error */
    char last_error[CONN_ERR_MAX];
    int64_t last_ok_at, last_error_at; /* unix seconds, 0 = never */
} conn_inst;

struct conn_set {
    const struct cfg *cfg;
    conn_inst *inst;
    size_t ninst;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC; broadcast when a flight lands */
    centry **buckets;
    size_t nentries, cap;
    centry *lru_head, *lru_tail;
    flight *flights;
    size_t workers; /* worker threads still running */
};

int conn_printable_id(const char *id)
{
    if (id == NULL) return 0;
    size_t len = strlen(id);
    if (len == 0 || len > DG_REG_ID_MAX) return 0;
    if (id[0] == ' ' || id[len - 1] == ' ') return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)id[i];
        if (ch < 0x20 || ch == 0x7f) return 0;
    }
    return 1;
}

const conn_backend *conn_backend_for(cfg_connector kind)
{
    switch (kind) {
    case CFG_CONN_NONE:
        return &conn_none_backend;
    case CFG_CONN_FILE:
        return &conn_file_backend;
    case CFG_CONN_ACE:
        return &conn_ace_backend;
    case CFG_CONN_PARTNER_CENTER:
        return &conn_partner_center_backend;
    case CFG_CONN_GCP:
        return &conn_gcp_backend;
    }
    return NULL;
}

/* ---- facts ---------------------------------------------------------------------------- */

/* Deep copy of src into dst (zeroed first). Returns DG_OK or DG_ENOMEM (dst then freed). */
static dg_err fact_copy(dg_reg_fact *dst, const dg_reg_fact *src)
{
    memset(dst, 0, sizeof *dst);
    dst->by_crm_id = src->by_crm_id;
    dst->lookup = src->lookup;
    dst->retryable = src->retryable;
    const char *const from[] = {src->cloud,      src->id,     src->status, src->crm_id,
                                src->created_at, src->origin, src->source, src->error};
    char **const to[] = {&dst->cloud,      &dst->id,     &dst->status, &dst->crm_id,
                         &dst->created_at, &dst->origin, &dst->source, &dst->error};
    for (size_t i = 0; i < sizeof from / sizeof from[0]; i++) {
        if (from[i] == NULL) continue;
        *to[i] = strdup(from[i]);
        if (*to[i] == NULL) {
            dg_reg_fact_free(dst);
            return DG_ENOMEM;
        }
    }
    return DG_OK;
}

/* Makes a backend's answer consistent: an error return is always a FAILED fact with an
 * error text; a FAILED fact always carries a text. */
static void fact_normalize(dg_err rc, dg_reg_fact *r)
{
    if (rc != DG_OK) r->lookup = DG_LOOKUP_FAILED;
    if (r->lookup == DG_LOOKUP_FAILED && r->error == NULL)
        r->error = strdup(dg_strerror(rc != DG_OK ? rc : DG_EUPSTREAM));
    if (r->lookup != DG_LOOKUP_FAILED) r->retryable = 0;
}

/* Sets r to a FAILED fact with error text (a fresh allocation). Returns DG_ENOMEM if the
 * text cannot be allocated. */
static dg_err fact_fail(dg_reg_fact *r, int retryable, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static dg_err fact_fail(dg_reg_fact *r, int retryable, const char *fmt, ...)
{
    char buf[CONN_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    free(r->error);
    r->lookup = DG_LOOKUP_FAILED;
    r->retryable = retryable;
    r->error = strdup(buf);
    return r->error ? DG_OK : DG_ENOMEM;
}

/* ---- cache (all under s->mu) ------------------------------------------------------------ */

static uint64_t key_hash(size_t inst, int kind, const char *key)
{
    uint64_t h = 1469598103934665603ULL;
    uint64_t prefix = ((uint64_t)inst << 1) | (uint64_t)kind;
    for (int i = 0; i < 8; i++) {
        h ^= (prefix >> (8 * i)) & 0xff;
        h *= 1099511628211ULL;
    }
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

static void lru_unlink(conn_set *s, centry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        s->lru_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        s->lru_tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_head(conn_set *s, centry *e)
{
    e->prev = NULL;
    e->next = s->lru_head;
    if (s->lru_head) s->lru_head->prev = e;
    s->lru_head = e;
    if (s->lru_tail == NULL) s->lru_tail = e;
}

static centry **cache_slot(conn_set *s, uint64_t h, size_t inst, int kind, const char *key)
{
    centry **pp = &s->buckets[h & (CONN_BUCKETS - 1)];
    for (; *pp; pp = &(*pp)->hnext) {
        centry *e = *pp;
        if (e->hash == h && e->inst == inst && e->kind == kind && strcmp(e->key, key) == 0)
            return pp;
    }
    return pp;
}

static void centry_free(centry *e)
{
    free(e->key);
    dg_reg_fact_free(&e->fact);
    free(e);
}

/* Unlinks *pp from its chain and the LRU list and frees it. */
static void cache_remove(conn_set *s, centry **pp)
{
    centry *e = *pp;
    *pp = e->hnext;
    lru_unlink(s, e);
    s->nentries--;
    centry_free(e);
}

/* On a fresh hit copies the cached fact into out and returns 1; else 0 (an expired entry is
 * dropped). A copy that fails for memory counts as a miss. */
static int cache_get(conn_set *s, size_t inst, int kind, const char *key, int64_t now,
                     dg_reg_fact *out)
{
    uint64_t h = key_hash(inst, kind, key);
    centry **pp = cache_slot(s, h, inst, kind, key);
    if (*pp == NULL) return 0;
    centry *e = *pp;
    if (e->expires_ns <= now) {
        cache_remove(s, pp);
        return 0;
    }
    if (fact_copy(out, &e->fact) != DG_OK) return 0;
    lru_unlink(s, e);
    lru_push_head(s, e);
    return 1;
}

/* Stores a copy of r under the key for ttl_s seconds (nothing if ttl_s <= 0 or memory runs
 * out: the cache is an optimisation). Evicts the least recently used entry when full. */
static void cache_put(conn_set *s, size_t inst, int kind, const char *key, const dg_reg_fact *r,
                      int ttl_s, int64_t now)
{
    if (ttl_s <= 0) return;
    uint64_t h = key_hash(inst, kind, key);
    centry **pp = cache_slot(s, h, inst, kind, key);
    if (*pp) cache_remove(s, pp);
    while (s->nentries >= s->cap && s->lru_tail) {
        centry *old = s->lru_tail;
        cache_remove(s, cache_slot(s, old->hash, old->inst, old->kind, old->key));
    }
    centry *e = calloc(1, sizeof *e);
    if (e == NULL) return;
    e->key = strdup(key);
    if (e->key == NULL || fact_copy(&e->fact, r) != DG_OK) {
        free(e->key);
        free(e);
        return;
    }
    e->hash = h;
    e->inst = inst;
    e->kind = kind;
    e->expires_ns = now + (int64_t)ttl_s * 1000000000;
    pp = cache_slot(s, h, inst, kind, key); /* the chain may have changed by eviction */
    e->hnext = NULL;
    *pp = e;
    lru_push_head(s, e);
    s->nentries++;
}

static void cache_clear(conn_set *s)
{
    centry *e = s->lru_head;
    while (e) {
        centry *next = e->next;
        centry_free(e);
        e = next;
    }
    s->lru_head = s->lru_tail = NULL;
    s->nentries = 0;
}

/* ---- flights ------------------------------------------------------------------------------ */

/* Drops one reference; frees the flight with the last one. Under s->mu. */
static void flight_release(flight *fl)
{
    if (--fl->refs > 0) return;
    free(fl->key);
    dg_reg_fact_free(&fl->result);
    free(fl);
}

static flight *flight_find(conn_set *s, size_t inst, int kind, const char *key)
{
    for (flight *fl = s->flights; fl; fl = fl->next)
        if (fl->inst == inst && fl->kind == kind && strcmp(fl->key, key) == 0) return fl;
    return NULL;
}

/* One backend call into *r (zeroed here), made consistent. No lock held. Returns how long
 * the call took (ns). */
static int64_t backend_call(const conn_inst *in, int kind, const char *key, int timeout_ms,
                            dg_reg_fact *r)
{
    int64_t t0 = conn_now_ns();
    memset(r, 0, sizeof *r);
    dg_err rc = kind == KIND_BY_ID ? in->be->by_id(in->state, key, timeout_ms, r)
                                   : in->be->by_crm_id(in->state, key, timeout_ms, r);
    fact_normalize(rc, r);
    return conn_now_ns() - t0;
}

const uint32_t conn_lat_bounds_us[CONN_LAT_BUCKETS] = {
    1000, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};

/* Records the outcome of a backend call (took ns) for health and metrics. Under s->mu. */
static void note_result(conn_inst *in, const dg_reg_fact *r, int64_t ns)
{
    int64_t wall = (int64_t)time(NULL);
    uint64_t us = ns > 0 ? (uint64_t)(ns / 1000) : 0;
    size_t b = 0;
    while (b < CONN_LAT_BUCKETS && us > conn_lat_bounds_us[b])
        b++;
    in->lat[b]++;
    in->lat_count++;
    in->lat_sum_us += us;
    if (r->lookup == DG_LOOKUP_FAILED) in->errors++;
    if (r->lookup == DG_LOOKUP_FAILED) {
        in->last_status = 1;
        in->last_error_at = wall;
        snprintf(in->last_error, sizeof in->last_error, "%s",
                 r->error ? r->error : dg_strerror(DG_ENOMEM));
    } else {
        in->last_status = 0;
        in->last_ok_at = wall;
    }
}

/* The worker: one backend call, then (under the lock) health, cache, wake the waiters. */
static void *flight_run(void *arg)
{
    flight *fl = arg;
    pthread_setname_np(pthread_self(), "dg-lookup"); /* top -H, bench/gate.sh */
    conn_set *s = fl->set;
    conn_inst *in = &s->inst[fl->inst];
    dg_reg_fact r;
    int64_t took = backend_call(in, fl->kind, fl->key, fl->timeout_ms, &r);
    int64_t now = conn_now_ns();

    pthread_mutex_lock(&s->mu);
    note_result(in, &r, took);
    if (r.lookup == DG_LOOKUP_FOUND)
        cache_put(s, fl->inst, fl->kind, fl->key, &r, in->cc->cache_ttl_s, now);
    else if (r.lookup == DG_LOOKUP_NOT_FOUND)
        cache_put(s, fl->inst, fl->kind, fl->key, &r, in->cc->negative_cache_ttl_s, now);
    fl->result = r;
    fl->done = 1;
    for (flight **pp = &s->flights; *pp; pp = &(*pp)->next) {
        if (*pp == fl) {
            *pp = fl->next;
            break;
        }
    }
    flight_release(fl);
    s->workers--;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Starts fl on a detached thread; runs it inline when no thread can be had (the budget is
 * then not enforced for this call, but the answer is still right). */
static void flight_start(flight *fl)
{
    pthread_t t;
    pthread_attr_t attr;
    int ok = pthread_attr_init(&attr) == 0;
    if (ok && pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
        pthread_create(&t, &attr, flight_run, fl) == 0) {
        pthread_attr_destroy(&attr);
        return;
    }
    if (ok) pthread_attr_destroy(&attr);
    flight_run(fl);
}

/* ---- the set ------------------------------------------------------------------------------ */

dg_err conn_set_new_with(const struct cfg *c, const conn_backend *override, size_t cache_max,
                         conn_set **out, char *err, size_t errlen)
{
    dg_err rc = DG_ENOMEM;
    int mu_ok = 0, cv_ok = 0;
    conn_set *s = calloc(1, sizeof *s);
    *out = NULL;
    if (s == NULL) {
        dg_errf(err, errlen, rc, "out of memory");
        goto cleanup;
    }
    s->cfg = c;
    s->cap = cache_max ? cache_max : CONN_CACHE_MAX_DEFAULT;
    s->buckets = calloc(CONN_BUCKETS, sizeof *s->buckets);
    s->inst = calloc(c->nclouds ? c->nclouds : 1, sizeof *s->inst);
    if (s->buckets == NULL || s->inst == NULL) {
        dg_errf(err, errlen, rc, "out of memory");
        goto cleanup;
    }
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        rc = dg_errf(err, errlen, DG_EINTERNAL, "cannot create mutex");
        goto cleanup;
    }
    mu_ok = 1;
    if (conn_cond_init_monotonic(&s->cv) != 0) {
        rc = dg_errf(err, errlen, DG_EINTERNAL, "cannot create condition variable");
        goto cleanup;
    }
    cv_ok = 1;
    for (size_t i = 0; i < c->nclouds; i++) {
        const cfg_cloud *cc = &c->clouds[i];
        const conn_backend *be = override ? override : conn_backend_for(cc->connector);
        conn_inst *in = &s->inst[i];
        char berr[CONN_ERR_MAX] = "";
        if (be == NULL) {
            rc = dg_errf(err, errlen, DG_ECONFIG, "cloud:%s: unknown connector", cc->key);
            goto cleanup;
        }
        dg_err brc = be->open(cc, c->server.data_dir, &in->state, berr, sizeof berr);
        if (brc != DG_OK) {
            rc = dg_errf(err, errlen, brc, "cloud:%s: %s", cc->key,
                         berr[0] ? berr : dg_strerror(brc));
            goto cleanup;
        }
        in->cc = cc;
        in->be = be;
        in->local = be == &conn_file_backend || be == &conn_none_backend;
        in->last_status = -1;
        s->ninst = i + 1;
    }
    *out = s;
    s = NULL;
    rc = DG_OK;
cleanup:
    if (s) {
        for (size_t i = 0; i < s->ninst; i++)
            if (s->inst[i].be->close) s->inst[i].be->close(s->inst[i].state);
        if (cv_ok) pthread_cond_destroy(&s->cv);
        if (mu_ok) pthread_mutex_destroy(&s->mu);
        free(s->inst);
        free(s->buckets);
        free(s);
    }
    return rc;
}

dg_err conn_set_new(const struct cfg *c, conn_set **out, char *err, size_t errlen)
{
    return conn_set_new_with(c, NULL, 0, out, err, errlen);
}

void conn_set_free(conn_set *s)
{
    if (s == NULL) return;
    pthread_mutex_lock(&s->mu);
    while (s->workers > 0)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < s->ninst; i++)
        if (s->inst[i].be->close) s->inst[i].be->close(s->inst[i].state);
    cache_clear(s);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->inst);
    free(s->buckets);
    free(s);
}

/* ---- look-up ------------------------------------------------------------------------------ */

/* One requested cloud of a conn_lookup call. */
typedef struct {
    long inst; /* index into s->inst, -1 if the cloud is not configured */
    int kind;
    const char *key; /* borrowed from the event */
    int have;        /* fact is final */
    flight *fl;      /* joined or started flight (one reference held), or NULL */
    int start;       /* this call started fl */
    int busy;        /* no flight: CONN_MAX_WORKERS reached */
    int local;       /* a local backend: called inline, no cache */
    dg_reg_fact fact;
} slot;

static const char *event_reg_id(const dg_event *e, const char *cloud)
{
    for (size_t i = 0; i < e->nregs; i++)
        if (e->regs[i].cloud && strcasecmp(e->regs[i].cloud, cloud) == 0 && e->regs[i].id &&
            e->regs[i].id[0] != '\0')
            return e->regs[i].id;
    return NULL;
}

static long inst_find(const conn_set *s, const char *cloud)
{
    for (size_t i = 0; i < s->ninst; i++)
        if (strcasecmp(s->inst[i].cc->key, cloud) == 0) return (long)i;
    return -1;
}

/* Fills cloud, source, by_crm_id and id of a final fact. Returns DG_OK or DG_ENOMEM. */
static dg_err slot_finish(const conn_set *s, slot *sl, const char *cloud)
{
    dg_reg_fact *r = &sl->fact;
    free(r->cloud);
    r->cloud = strdup(cloud);
    if (r->cloud == NULL) return DG_ENOMEM;
    if (sl->inst < 0) return DG_OK;
    free(r->source);
    r->source = strdup(s->inst[sl->inst].be->name);
    if (r->source == NULL) return DG_ENOMEM;
    r->by_crm_id = sl->kind == KIND_BY_CRM_ID;
    if (sl->kind == KIND_BY_ID) {
        free(r->id);
        r->id = strdup(sl->key);
        if (r->id == NULL) return DG_ENOMEM;
    }
    return DG_OK;
}

dg_err conn_lookup(conn_set *s, const dg_event *e, const char *const *clouds, size_t n,
                   int budget_ms, dg_facts *f)
{
    dg_err rc = DG_ENOMEM;
    int64_t start = conn_now_ns();
    int64_t deadline = start + (int64_t)(budget_ms > 0 ? budget_ms : 0) * 1000000;
    int oom = 0;
    slot *sl = NULL;
    if (n == 0) return DG_OK;
    sl = calloc(n, sizeof *sl);
    dg_reg_fact *grown = realloc(f->regs, (f->nregs + n) * sizeof *f->regs);
    if (grown) f->regs = grown;
    if (sl == NULL || grown == NULL) goto cleanup;

    /* 1. Work out each cloud's look-up; answer syntax errors and unknown clouds at once. */
    for (size_t i = 0; i < n; i++) {
        slot *t = &sl[i];
        t->inst = inst_find(s, clouds[i]);
        if (t->inst < 0) {
            if (fact_fail(&t->fact, 0, "cloud %s is not configured", clouds[i]) != DG_OK)
                goto cleanup;
            t->have = 1;
            continue;
        }
        const conn_inst *in = &s->inst[t->inst];
        const char *id = event_reg_id(e, clouds[i]);
        if (id) {
            t->kind = KIND_BY_ID;
            t->key = id;
            if (in->be->valid_id && !in->be->valid_id(id)) {
                char buf[CONN_ERR_MAX];
                snprintf(buf, sizeof buf, "invalid %s registration id syntax",
                         in->cc->name ? in->cc->name : in->cc->key);
                t->fact.lookup = DG_LOOKUP_NOT_FOUND;
                t->fact.error = strdup(buf);
                if (t->fact.error == NULL) goto cleanup;
                t->have = 1;
            }
        } else if (e->opp_id && e->opp_id[0]) {
            t->kind = KIND_BY_CRM_ID;
            t->key = e->opp_id;
        } else {
            t->kind = KIND_BY_CRM_ID;
            t->fact.lookup = DG_LOOKUP_NOT_FOUND; /* nothing to look up by */
            t->have = 1;
        }
    }

    /* 2. Cache, join a flight in the air, or start one. */
    int remaining_ms = budget_ms > 0 ? budget_ms - (int)((conn_now_ns() - start) / 1000000) : 0;
    pthread_mutex_lock(&s->mu);
    int64_t now = conn_now_ns();
    for (size_t i = 0; i < n; i++) {
        slot *t = &sl[i];
        if (t->have) continue;
        conn_inst *in = &s->inst[t->inst];
        if (in->local) {
            t->local = 1;
            in->calls++;
            continue;
        }
        if (cache_get(s, (size_t)t->inst, t->kind, t->key, now, &t->fact)) {
            in->hits++;
            t->have = 1;
            continue;
        }
        in->misses++;
        flight *fl = flight_find(s, (size_t)t->inst, t->kind, t->key);
        if (fl == NULL && remaining_ms > 0 && s->workers >= CONN_MAX_WORKERS) {
            t->busy = 1;
        } else if (fl == NULL && remaining_ms > 0) {
            fl = calloc(1, sizeof *fl);
            char *key = fl ? strdup(t->key) : NULL;
            if (key == NULL) {
                free(fl);
                fl = NULL;
                oom = 1;
            } else {
                int tmo = in->cc->timeout_ms > 0 && in->cc->timeout_ms < remaining_ms
                              ? in->cc->timeout_ms
                              : remaining_ms;
                fl->set = s;
                fl->inst = (size_t)t->inst;
                fl->kind = t->kind;
                fl->key = key;
                fl->timeout_ms = tmo;
                fl->refs = 1; /* the worker's */
                fl->next = s->flights;
                s->flights = fl;
                s->workers++;
                in->calls++;
                t->start = 1;
            }
        }
        if (fl) {
            fl->refs++;
            t->fl = fl;
        }
    }
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < n; i++)
        if (sl[i].start) flight_start(sl[i].fl);
    if (oom) goto cleanup;
    for (size_t i = 0; i < n; i++) { /* memory look-ups, while the flights are in the air */
        slot *t = &sl[i];
        if (!t->local) continue;
        conn_inst *in = &s->inst[t->inst];
        int64_t took =
            backend_call(in, t->kind, t->key, remaining_ms > 0 ? remaining_ms : 1, &t->fact);
        t->have = 1;
        pthread_mutex_lock(&s->mu);
        note_result(in, &t->fact, took);
        pthread_mutex_unlock(&s->mu);
    }

    /* 3. Wait for the flights until the budget runs out. */
    struct timespec abs = {.tv_sec = (time_t)(deadline / 1000000000),
                           .tv_nsec = (long)(deadline % 1000000000)};
    pthread_mutex_lock(&s->mu);
    for (;;) {
        int pending = 0;
        for (size_t i = 0; i < n; i++)
            if (sl[i].fl && !sl[i].fl->done) pending = 1;
        if (!pending || conn_now_ns() >= deadline) break;
        int w = pthread_cond_timedwait(&s->cv, &s->mu, &abs);
        if (w != 0 && w != ETIMEDOUT && w != EINTR) break;
    }
    for (size_t i = 0; i < n; i++) {
        slot *t = &sl[i];
        if (t->fl == NULL) continue;
        if (t->fl->done) {
            if (fact_copy(&t->fact, &t->fl->result) != DG_OK) oom = 1;
            t->have = 1;
        }
        flight_release(t->fl);
        t->fl = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (oom) goto cleanup;

    /* 4. What did not land in time (or could not start) failed, retryably. */
    for (size_t i = 0; i < n; i++) {
        slot *t = &sl[i];
        if (!t->have && t->busy) {
            if (fact_fail(&t->fact, 1, "too many co-sell look-ups in flight (%d)",
                          CONN_MAX_WORKERS) != DG_OK)
                goto cleanup;
        } else if (!t->have) {
            if (fact_fail(&t->fact, 1, "look-up exceeded the decision budget (%d ms)", budget_ms) !=
                DG_OK)
                goto cleanup;
        }
        if (slot_finish(s, t, clouds[i]) != DG_OK) goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        f->regs[f->nregs++] = sl[i].fact;
        memset(&sl[i].fact, 0, sizeof sl[i].fact);
    }
    rc = DG_OK;
cleanup:
    if (sl) {
        pthread_mutex_lock(&s->mu);
        for (size_t i = 0; i < n; i++)
            if (sl[i].fl) flight_release(sl[i].fl);
        pthread_mutex_unlock(&s->mu);
        for (size_t i = 0; i < n; i++)
            dg_reg_fact_free(&sl[i].fact);
        free(sl);
    }
    return rc;
}

/* ---- health and counters ------------------------------------------------------------------ */

/* An snprintf-like writer: counts what it would write, writes what fits, stays terminated. */
typedef struct {
    char *buf;
    size_t n, len;
} jbuf;

static void jb_raw(jbuf *b, const char *s, size_t len)
{
    if (b->len < b->n) {
        size_t room = b->n - 1 - b->len;
        memcpy(b->buf + b->len, s, len < room ? len : room);
        b->buf[b->len + (len < room ? len : room)] = '\0';
    }
    b->len += len;
}

#define JB_LIT(b, lit) jb_raw((b), (lit), sizeof(lit) - 1)

static void jb_printf(jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jb_printf(jbuf *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k > 0) jb_raw(b, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

/* Writes s as a JSON string (null for NULL). */
static void jb_str(jbuf *b, const char *s)
{
    if (s == NULL) {
        jb_raw(b, "null", 4);
        return;
    }
    jb_raw(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            jb_raw(b, esc, 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            jb_printf(b, "\\u%04x", *p);
        } else {
            jb_raw(b, (const char *)p, 1);
        }
    }
    jb_raw(b, "\"", 1);
}

static void jb_time(jbuf *b, int64_t unix_s)
{
    if (unix_s <= 0) {
        jb_raw(b, "null", 4);
        return;
    }
    char tmp[32];
    struct tm tm;
    time_t t = (time_t)unix_s;
    if (gmtime_r(&t, &tm) == NULL || strftime(tmp, sizeof tmp, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        jb_raw(b, "null", 4);
        return;
    }
    jb_str(b, tmp);
}

size_t conn_health_json(conn_set *s, char *buf, size_t n)
{
    jbuf b = {buf, n, 0};
    if (n > 0) buf[0] = '\0';
    JB_LIT(&b, "{");
    for (size_t i = 0; i < s->ninst; i++) {
        conn_inst *in = &s->inst[i];
        char detail[CONN_ERR_MAX] = "";
        if (in->be->health) in->be->health(in->state, detail, sizeof detail);
        conn_inst snap;
        pthread_mutex_lock(&s->mu);
        snap = *in;
        pthread_mutex_unlock(&s->mu);
        if (i > 0) JB_LIT(&b, ",");
        jb_str(&b, snap.cc->key);
        JB_LIT(&b, ":{\"connector\":");
        jb_str(&b, snap.be->name);
        JB_LIT(&b, ",\"name\":");
        jb_str(&b, snap.cc->name ? snap.cc->name : snap.cc->key);
        JB_LIT(&b, ",\"status\":");
        jb_str(&b, snap.last_status < 0 ? "idle" : snap.last_status == 0 ? "ok" : "error");
        JB_LIT(&b, ",\"last_error\":");
        jb_str(&b, snap.last_error_at ? snap.last_error : NULL);
        JB_LIT(&b, ",\"last_error_at\":");
        jb_time(&b, snap.last_error_at);
        JB_LIT(&b, ",\"last_ok_at\":");
        jb_time(&b, snap.last_ok_at);
        jb_printf(&b, ",\"cache_hits\":%llu,\"cache_misses\":%llu,\"upstream_calls\":%llu",
                  (unsigned long long)snap.hits, (unsigned long long)snap.misses,
                  (unsigned long long)snap.calls);
        JB_LIT(&b, ",\"detail\":");
        jb_str(&b, detail[0] ? detail : NULL);
        JB_LIT(&b, "}");
    }
    JB_LIT(&b, "}");
    return b.len;
}

size_t conn_cloud_stat(conn_set *s, size_t i, conn_cloud_stats *out)
{
    if (s == NULL) return 0;
    if (i < s->ninst && out != NULL) {
        pthread_mutex_lock(&s->mu);
        const conn_inst *in = &s->inst[i];
        out->cloud = in->cc->key;
        out->connector = in->be->name;
        out->hits = in->hits;
        out->misses = in->misses;
        out->calls = in->calls;
        out->errors = in->errors;
        out->lat_count = in->lat_count;
        out->lat_sum_us = in->lat_sum_us;
        memcpy(out->lat, in->lat, sizeof out->lat);
        pthread_mutex_unlock(&s->mu);
    }
    return s->ninst;
}

void conn_stats(conn_set *s, uint64_t *hits, uint64_t *misses, uint64_t *upstream_calls)
{
    uint64_t h = 0, m = 0, c = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->ninst; i++) {
        h += s->inst[i].hits;
        m += s->inst[i].misses;
        c += s->inst[i].calls;
    }
    pthread_mutex_unlock(&s->mu);
    if (hits) *hits = h;
    if (misses) *misses = m;
    if (upstream_calls) *upstream_calls = c;
}
