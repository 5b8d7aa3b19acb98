/* gate.h — the service's context and runtime snapshot.
 *
 * A gate_rt bundles one config snapshot with the connectors built from it and the token
 * hashes auth compares against. It is reference counted: a request takes it with
 * gate_rt_acquire() and releases it when done, so a SIGHUP reload (gate_reload) swaps in a
 * new one atomically while in-flight requests finish on the one they started with. The
 * gate_ctx is the service: the current runtime, the decision log, counters. No globals.
 */
#ifndef DG_GATE_H
#define DG_GATE_H

#include <pthread.h>
#include <stdint.h>

#include "config/cfg.h"
#include "connectors/conn.h"
#include "gate/dlog.h"

#define GATE_HASH_LEN 32

typedef struct {
    unsigned char (*h)[GATE_HASH_LEN]; /* SHA-256 of each token */
    size_t n;
} gate_tokens;

typedef struct gate_rt {
    struct cfg *cfg;     /* owned */
    conn_set *conns;     /* owned, built from cfg */
    gate_tokens webhook, reader, comp_reader, desk;
    int refs;            /* guarded by gate_ctx.rt_lock */
} gate_rt;

typedef struct gate_ctx {
    pthread_mutex_t rt_lock;
    gate_rt *rt;         /* current runtime */
    dlog *log;           /* NULL for `eval` */
    struct gate_metrics *metrics; /* counters for /metrics (gate/metrics.h); NULL = none */
    int64_t started_ms;
} gate_ctx;

/* Builds a runtime from a loaded config (takes ownership of c, also on failure).
 * Returns DG_OK and *out, or an error with a message in err. */
dg_err gate_rt_new(struct cfg *c, gate_rt **out, char *err, size_t errlen);

/* Returns the current runtime with a reference held; pair with gate_rt_release. */
gate_rt *gate_rt_acquire(gate_ctx *g);
void gate_rt_release(gate_ctx *g, gate_rt *rt);

/* Installs rt as current (takes ownership); the previous one is released. */
void gate_rt_install(gate_ctx *g, gate_rt *rt);

/* Reloads the config from path: on success installs it and returns DG_OK; else keeps the
 * current one and returns DG_ECONFIG, with every error printed to stderr. */
dg_err gate_reload(gate_ctx *g, const char *path);

/* Returns 1 if tok (len bytes) equals one of the tokens in set, comparing against every
 * token in constant time over hashes (neither position nor length leaks). */
int gate_token_match(const gate_tokens *set, const char *tok, size_t len);

/* Wall clock in unix milliseconds. */
int64_t gate_now_ms(void);

/* Writes a new time-ordered id: prefix + 26 Crockford base32 chars (48-bit ms time, 80
 * random bits) into buf (cap >= strlen(prefix) + 27). Within the process each id sorts
 * after the one before it (same millisecond: the previous random part plus one). Like the
 * clock it reads, the generator is process-wide (its last id, under a mutex): the one
 * mutable state outside gate_ctx, since every thread's ids must sort against each other. */
void gate_new_id(const char *prefix, char *buf, size_t cap);

#endif
