/* dlog_bench.c — decision-log append throughput: N threads append M decisions each and wait
 * for every commit, as concurrent gate requests do. Prints appends/s and the writer's batch
 * sizes (batching is what lets many decisions share one fsync under synchronous=FULL).
 *
 *   dlog_bench [THREADS [APPENDS_PER_THREAD [DATA_DIR]]]   (default 8 500 /tmp/dlog_bench_*)
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
} worker;

static void *run(void *arg)
{
    worker *w = arg;
    char id[40], opp[32], json[512], err[256];
    for (int i = 0; i < w->n; i++) {
        snprintf(id, sizeof id, "dg_%04d%022d", w->t, i);
        snprintf(opp, sizeof opp, "006B%05d", (w->t * 7919 + i) % 5000);
        snprintf(json, sizeof json,
                 "{\"decision_id\":\"%s\",\"allowed\":true,\"outcome\":\"allow\","
                 "\"mode\":\"enforce\",\"message\":\"\",\"reasons\":[],\"warnings\":[],"
                 "\"registrations\":[{\"cloud\":\"aws\",\"id\":\"O1234567\","
                 "\"status\":\"Approved\",\"verified\":true}]}",
                 id);
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        dlog_decision d = {
            .id = id,
            .time_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000,
            .adapter = "stage",
            .opp_id = opp,
            .pipeline = "default",
            .owner = "jane@example.com",
            .has_amount = 1,
            .amount = 12000000,
            .currency = "USD",
            .clouds_json = "[\"aws\"]",
            .from_stage = "Qualification",
            .to_stage = "Demo",
            .to_raw = "presentationscheduled",
            .outcome = "allow",
            .mode = "enforce",
            .reasons_json = "[]",
            .warnings_json = "[]",
            .registrations_json = "[{\"cloud\":\"aws\",\"id\":\"O1234567\"}]",
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
        w[i] = (worker){l, i, per, 0};
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
