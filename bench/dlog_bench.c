/* dlog_bench.c — decision-log append throughput: N threads append M decisions each and wait
 * for every commit, as concurrent gate requests do. Prints appends/s and the writer's batch
 * sizes (batching is what lets many decisions share one fsync under synchronous=FULL).
 *
 *   dlog_bench [THREADS [APPENDS_PER_THREAD [DATA_DIR]]]   (default 8 500 /tmp/dlog_bench_*)
 *
 * DLOG_BENCH_DEALS=N picks the deals from N (default 5000); 0 gives every append a deal of
 * its own and an event id, half of them blocked, as bench/gate.sh does over HTTP.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gate/dlog.h"

typedef struct {
    dlog *l;
    int t, n, failures;
    long deals; /* 0: a new deal per append */
} worker;

static void *run(void *arg)
{
    worker *w = arg;
    char id[40], opp[32], json[1024], err[256], ev[48], owner[48];
    for (int i = 0; i < w->n; i++) {
        int block = w->deals == 0 && i % 2 == 1;
        snprintf(id, sizeof id, "dg_%04d%022d", w->t, i);
        if (w->deals > 0)
            snprintf(opp, sizeof opp, "006B%05ld", (long)(w->t * 7919 + i) % w->deals);
        else
            snprintf(opp, sizeof opp, "BENCH-%d-%d", w->t, i);
        snprintf(ev, sizeof ev, "b-%d-%d", w->t, i);
        snprintf(owner, sizeof owner, "rep%d@example.com", i % 50);
        const char *reasons =
            block ? "[{\"rule\":\"demo-needs-registration\",\"code\":\"registration_missing\","
                    "\"cloud\":\"aws\",\"message\":\"Register this deal in AWS ACE before moving "
                    "to Demo.\"}]"
                  : "[]";
        const char *regs =
            block ? "[{\"cloud\":\"aws\",\"id\":null,\"status\":null,\"verified\":false,"
                    "\"source\":\"file\",\"created_at\":null,\"origin\":null,\"lookup\":"
                    "\"not_found\"}]"
                  : "[{\"cloud\":\"aws\",\"id\":\"O1234567\",\"status\":\"Approved\","
                    "\"verified\":true,\"source\":\"file\",\"created_at\":"
                    "\"2026-10-01T09:00:00Z\",\"origin\":\"partner\",\"lookup\":\"found\"}]";
        snprintf(json, sizeof json,
                 "{\"decision_id\":\"%s\",\"allowed\":%s,\"outcome\":\"%s\","
                 "\"mode\":\"enforce\",\"message\":\"\",\"reasons\":%s,\"warnings\":[],"
                 "\"registrations\":%s,\"opportunity_id\":\"%s\",\"from_stage\":"
                 "\"Qualification\",\"to_stage\":\"Demo\",\"owner\":\"%s\"}",
                 id, block ? "false" : "true", block ? "block" : "allow", reasons, regs, opp,
                 owner);
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        dlog_decision d = {
            .id = id,
            .time_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000,
            .adapter = "stage",
            .event_id = w->deals == 0 ? ev : NULL,
            .body_hash = "02a46b0b384a3e9370cfe121b83e9e64de57b62a160defa188e8f8ee434ed587",
            .opp_id = opp,
            .pipeline = "default",
            .owner = w->deals == 0 ? owner : "jane@example.com",
            .has_amount = 1,
            .amount = 12000000,
            .currency = "USD",
            .clouds_json = "[\"aws\"]",
            .from_stage = "Qualification",
            .from_raw = w->deals == 0 ? "Qualification" : NULL,
            .to_stage = "Demo",
            .to_raw = w->deals == 0 ? "Demo" : "presentationscheduled",
            .outcome = block ? "block" : "allow",
            .mode = "enforce",
            .reasons_json = reasons,
            .warnings_json = "[]",
            .registrations_json =
                w->deals == 0 ? regs : "[{\"cloud\":\"aws\",\"id\":\"O1234567\"}]",
            .gated = 1,
            .decision_json = json,
        };
        if (dlog_append(w->l, &d, err, sizeof err) != DG_OK) {
            if (w->failures++ == 0) fprintf(stderr, "append: %s\n", err);
        }
    }
    return NULL;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv)
{
    int threads = 8, per = 500;
    long deals = 5000;
    const char *env = getenv("DLOG_BENCH_DEALS");
    if (env != NULL) {
        char *end = NULL;
        errno = 0;
        deals = strtol(env, &end, 10);
        if (errno || end == env || *end || deals < 0 || deals > 100000000) {
            fprintf(stderr, "DLOG_BENCH_DEALS must be 0..100000000\n");
            return 2;
        }
    }
    char dir[256] = "/tmp/dlog_bench_XXXXXX";
    if ((argc > 1 && parse_int(argv[1], 1, 256, &threads)) ||
        (argc > 2 && parse_int(argv[2], 1, 1000000, &per))) {
        fprintf(stderr, "usage: dlog_bench [THREADS [APPENDS_PER_THREAD [DATA_DIR]]]\n");
        return 2;
    }
    if (argc > 3)
        snprintf(dir, sizeof dir, "%s", argv[3]);
    else if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    dlog *l = NULL;
    char err[256];
    if (dlog_open(dir, &l, err, sizeof err) != DG_OK) {
        fprintf(stderr, "dlog_open: %s\n", err);
        return 1;
    }
    pthread_t *th = calloc((size_t)threads, sizeof *th);
    worker *w = calloc((size_t)threads, sizeof *w);
    if (th == NULL || w == NULL) return 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < threads; i++) {
        w[i] = (worker){l, i, per, 0, deals};
        pthread_create(&th[i], NULL, run, &w[i]);
    }
    int failures = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        failures += w[i].failures;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    uint64_t batches = 0, rows = 0;
    dlog_stats(l, &batches, &rows);
    dlog_close(l);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("threads=%d appends=%" PRIu64 " failures=%d seconds=%.3f appends/s=%.0f batches=%" PRIu64
           " avg_batch=%.1f dir=%s\n",
           threads, rows, failures, secs, secs > 0 ? (double)rows / secs : 0.0, batches,
           batches ? (double)rows / (double)batches : 0.0, dir);
    free(th);
    free(w);
    return failures ? 1 : 0;
}
