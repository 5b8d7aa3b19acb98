/* build_log.c — builds a decision log of N decisions for the read-side benchmark.
 *
 * Goes through dlog_append() from many threads, so the log gets exactly what the service
 * writes (decisions, per-deal state, per-day counters, KPI state) and the writer thread
 * batches the commits. The deals are synthetic but shaped like a co-sell pipeline, spread
 * over DAYS days ending now: each deal moves Prospecting -> Qualification -> Demo (gated:
 * most pass first time, some are blocked and registered later, some stay blocked on a
 * rejected registration) -> Proposal -> Closed Won / Closed Lost / still open, on aws, azure,
 * both or no cloud, with 200 owners. Deterministic for a given N and DAYS (except "now").
 *
 *   build_log DATA_DIR [N=1000000] [THREADS=64] [DAYS=365]
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gate/dlog.h"

#define DAY_MS INT64_C(86400000)
#define MAX_STEPS 8

/* One decision to write: step i of deal k at time t. */
typedef struct {
    int64_t t, k;
    int i;
} entry;

typedef struct {
    dlog *l;
    int64_t t0_ms, now_ms, ndeals;
    int days;
    const entry *v;
    size_t n;
    atomic_size_t *next;
    int failed;
} worker;

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

typedef struct {
    const char *from, *to, *outcome, *code;
    int gated, won, lost, verified_now;
    int64_t t;
} step;

static void iso(int64_t ms, char *out, size_t n)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Deal k: its fields and steps (deterministic in k). */
typedef struct {
    char opp[32], name[64], owner[40], clouds[40], ccy[4];
    const char *c1, *c2;
    int64_t amount;
    uint64_t r;
    step s[MAX_STEPS];
    int ns;
} deal_plan;

static void plan(const worker *w, int64_t k, deal_plan *p)
{
    uint64_t r = mix((uint64_t)k * 7919 + 1);
    p->r = r;
    char *opp = p->opp, *name = p->name, *owner = p->owner, *clouds = p->clouds, *ccy = p->ccy;
    step *s = p->s;
    snprintf(opp, sizeof p->opp, "006B%011" PRId64, k);
    snprintf(name, sizeof p->name, "Account %" PRId64 " - Data Platform", k % 50000);
    snprintf(owner, sizeof p->owner, "rep%03d@example.com", (int)(mix(r) % 200));
    int cl = (int)(r % 100);
    const char *c1 = cl < 60 ? "aws" : cl < 85 ? "azure" : cl < 95 ? "aws" : NULL;
    const char *c2 = cl >= 85 && cl < 95 ? "azure" : NULL;
    snprintf(clouds, sizeof p->clouds, "[%s%s%s%s%s]", c1 ? "\"" : "", c1 ? c1 : "", c1 ? "\"" : "",
             c2 ? ",\"azure\"" : "", "");
    snprintf(ccy, sizeof p->ccy, "%s", (r >> 8) % 10 == 0 ? "EUR" : "USD");
    int64_t amount = (int64_t)(500000 + (r >> 16) % 49500000); /* 5,000.00 - 500,000.00 */

    /* deals start in the order of k, evenly over the period (ids and times both ascend) */
    int64_t span = (int64_t)w->days * DAY_MS;
    int64_t t = w->t0_ms + k * span / w->ndeals + (int64_t)((r >> 20) % 3600000);
    int ns = 0;
    int gate_kind = (int)((r >> 28) % 100); /* <70 first pass, <90 late, else rejected */
    s[ns++] = (step){"Prospecting", "Qualification", "allow", NULL, 0, 0, 0, 0, t};
    t += DAY_MS / 2 + (int64_t)((r >> 33) % (uint64_t)(3 * DAY_MS));
    if (c1 == NULL) {
        s[ns++] = (step){"Qualification", "Demo", "allow", NULL, 0, 0, 0, 0, t};
    } else if (gate_kind < 70) {
        s[ns++] = (step){"Qualification", "Demo", "allow", NULL, 1, 0, 0, 1, t};
    } else if (gate_kind < 90) {
        s[ns++] = (step){"Qualification", "Demo", "block", "registration_missing", 1, 0, 0, 0, t};
        t += DAY_MS + (int64_t)((r >> 37) % (uint64_t)(4 * DAY_MS));
        s[ns++] = (step){"Qualification", "Demo", "allow", NULL, 1, 0, 0, 1, t};
    } else {
        s[ns++] =
            (step){"Qualification", "Demo", "block", "registration_not_accepted", 1, 0, 0, 0, t};
        if (gate_kind < 95) {
            t += DAY_MS;
            s[ns++] = (step){
                "Qualification", "Demo", "block", "registration_not_accepted", 1, 0, 0, 0, t};
        }
    }
    if (strcmp(s[ns - 1].outcome, "allow") == 0) {
        t += 2 * DAY_MS + (int64_t)((r >> 41) % (uint64_t)(10 * DAY_MS));
        s[ns++] = (step){"Demo", "Proposal", "allow", NULL, 0, 0, 0, 0, t};
        int end = (int)((r >> 45) % 10);
        t += 3 * DAY_MS + (int64_t)((r >> 49) % (uint64_t)(20 * DAY_MS));
        if (end < 4)
            s[ns++] = (step){"Proposal", "Closed Won", "allow", NULL, 0, 1, 0, 0, t};
        else if (end < 7)
            s[ns++] = (step){"Proposal", "Closed Lost", "allow", NULL, 0, 0, 1, 0, t};
        else
            s[ns++] = (step){"Proposal", "Negotiation", "allow", NULL, 0, 0, 0, 0, t};
    }
    while (ns > 0 && s[ns - 1].t > w->now_ms) /* a deal still on its way: not there yet */
        ns--;
    p->c1 = c1;
    p->c2 = c2;
    p->amount = amount;
    p->ns = ns;
}

/* Appends step i of deal k. Returns 0, or -1 on error. */
static int write_step(const worker *w, int64_t k, int i)
{
    deal_plan p;
    plan(w, k, &p);
    const char *opp = p.opp, *name = p.name, *owner = p.owner, *clouds = p.clouds, *ccy = p.ccy;
    const char *c1 = p.c1, *c2 = p.c2;
    int64_t amount = p.amount;
    uint64_t r = p.r;
    step *s = p.s;

    char created[32], regs[2048], reasons[512], json[4096], id[40], when[32];
    iso(s[0].t - DAY_MS * (int64_t)(1 + (r >> 52) % 30), created, sizeof created);
    const char *origin = (r >> 55) % 3 == 0 ? "cloud" : "partner";
    {
        step *st = &s[i];
        regs[0] = reasons[0] = '\0';
        if (st->gated) {
            int v = st->verified_now;
            const char *status = v ? "Approved"
                                 : st->code && strcmp(st->code, "registration_missing") == 0
                                     ? NULL
                                     : "Rejected";
            snprintf(regs, sizeof regs,
                     "[{\"cloud\":\"%s\",\"id\":%s%s%s,\"status\":%s%s%s,\"verified\":%s,"
                     "\"source\":\"ace\",\"created_at\":\"%s\",\"origin\":\"%s\","
                     "\"lookup\":\"%s\"}%s]",
                     c1, status ? "\"O" : "null", status ? opp + 4 : "", status ? "\"" : "",
                     status ? "\"" : "null", status ? status : "", status ? "\"" : "",
                     v ? "true" : "false", created, origin, status ? "found" : "not_found",
                     c2 && v ? ",{\"cloud\":\"azure\",\"id\":\"ref-1\",\"status\":\"Accepted\","
                               "\"verified\":true,\"source\":\"partner_center\",\"created_at\":"
                               "null,\"origin\":\"partner\",\"lookup\":\"found\"}"
                             : "");
        }
        if (st->code)
            snprintf(reasons, sizeof reasons,
                     "[{\"rule\":\"demo-needs-registration\",\"code\":\"%s\",\"cloud\":\"%s\","
                     "\"message\":\"Register this deal in AWS ACE before moving to Demo.\"}]",
                     st->code, c1);
        const char *msg = st->code ? "Register this deal in AWS ACE before moving to Demo." : "";
        snprintf(id, sizeof id, "dg_%013" PRId64 "%013" PRId64, st->t, k * 10 + i);
        iso(st->t, when, sizeof when);
        snprintf(json, sizeof json,
                 "{\"decision_id\":\"%s\",\"allowed\":%s,\"outcome\":\"%s\",\"mode\":\"enforce\","
                 "\"message\":\"%s\",\"reasons\":%s,\"warnings\":[],\"registrations\":%s,"
                 "\"revert_to\":%s,\"opportunity_id\":\"%s\",\"pipeline\":\"default\","
                 "\"from_stage\":\"%s\",\"to_stage\":\"%s\",\"from_value\":\"%s\","
                 "\"to_value\":\"%s\",\"gated\":%s,\"owner\":\"%s\",\"name\":\"%s\","
                 "\"adapter\":\"import\",\"event_id\":null,\"time\":\"%s\","
                 "\"config_version\":\"bench\",\"latency_ms\":1}",
                 id, st->code ? "false" : "true", st->outcome, msg, st->code ? reasons : "[]",
                 st->gated ? regs : "[]", st->code ? "\"Qualification\"" : "null", opp, st->from,
                 st->to, st->from, st->to, st->gated ? "true" : "false", owner, name, when);
        dlog_decision d = {
            .id = id,
            .time_ms = st->t,
            .adapter = "import",
            .opp_id = opp,
            .pipeline = "default",
            .name = name,
            .account = name,
            .owner = owner,
            .has_amount = 1,
            .amount = amount,
            .currency = ccy,
            .clouds_json = clouds,
            .from_stage = st->from,
            .from_raw = st->from,
            .to_stage = st->to,
            .to_raw = st->to,
            .outcome = st->outcome,
            .mode = "enforce",
            .message = msg,
            .reasons_json = st->code ? reasons : "[]",
            .warnings_json = "[]",
            .registrations_json = st->gated ? regs : "[]",
            .config_version = "bench",
            .latency_us = 900,
            .gated = st->gated,
            .won = st->won,
            .lost = st->lost,
            .decision_json = json,
        };
        char err[256];
        if (dlog_append(w->l, &d, err, sizeof err) != DG_OK) {
            fprintf(stderr, "build_log: append %s: %s\n", id, err);
            return -1;
        }
    }
    return 0;
}

static void *run(void *arg)
{
    worker *w = arg;
    for (;;) {
        size_t j = atomic_fetch_add(w->next, 1);
        if (j >= w->n) break;
        if (write_step(w, w->v[j].k, w->v[j].i) != 0) {
            w->failed = 1;
            break;
        }
        if ((j + 1) % 100000 == 0) fprintf(stderr, "build_log: %zu decisions\n", j + 1);
    }
    return NULL;
}

static int entry_cmp(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    return x->k < y->k ? -1 : x->k > y->k;
}

static long arg_long(const char *s, long lo, long hi, const char *what)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "build_log: %s must be %ld..%ld\n", what, lo, hi);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: build_log DATA_DIR [N=1000000] [THREADS=64] [DAYS=365]\n");
        return 2;
    }
    int64_t n = argc > 2 ? arg_long(argv[2], 1, 100000000, "N") : 1000000;
    int threads = argc > 3 ? (int)arg_long(argv[3], 1, 512, "THREADS") : 64;
    int days = argc > 4 ? (int)arg_long(argv[4], 1, 3650, "DAYS") : 365;
    dlog *l = NULL;
    char err[256];
    if (dlog_open(argv[1], &l, err, sizeof err) != DG_OK) {
        fprintf(stderr, "build_log: %s\n", err);
        return 1;
    }
    struct timespec a, b, now;
    clock_gettime(CLOCK_MONOTONIC, &a);
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    /* plan every deal, then write all decisions in time order (as the service would) */
    worker proto = {.l = l,
                    .t0_ms = now_ms - (int64_t)days * DAY_MS,
                    .now_ms = now_ms,
                    .ndeals = n / 4 + 1,
                    .days = days};
    entry *v = malloc(((size_t)n + MAX_STEPS) * sizeof *v);
    if (v == NULL) return 1;
    size_t nv = 0;
    int64_t ndeals = 0;
    for (int64_t k = 0; nv < (size_t)n; k++, ndeals++) {
        deal_plan p;
        plan(&proto, k, &p);
        for (int i = 0; i < p.ns && nv < (size_t)n; i++)
            v[nv++] = (entry){p.s[i].t, k, i};
    }
    qsort(v, nv, sizeof *v, entry_cmp);
    atomic_size_t next = 0;
    proto.v = v;
    proto.n = nv;
    proto.next = &next;
    worker *ws = calloc((size_t)threads, sizeof *ws);
    pthread_t *tids = calloc((size_t)threads, sizeof *tids);
    if (!ws || !tids) return 1;
    for (int i = 0; i < threads; i++) {
        ws[i] = proto;
        pthread_create(&tids[i], NULL, run, &ws[i]);
    }
    int failed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(tids[i], NULL);
        failed |= ws[i].failed;
    }
    uint64_t commits = 0, rows = 0;
    dlog_stats(l, &commits, &rows);
    dlog_close(l);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    printf("built %" PRIu64 " decisions of %" PRId64 " deals in %.1f s (%.0f/s, %" PRIu64
           " commits)\n",
           rows, ndeals, s, (double)rows / s, commits);
    free(v);
    free(ws);
    free(tids);
    return failed ? 1 : 0;
}
