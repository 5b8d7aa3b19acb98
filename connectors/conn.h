/* conn.h — co-sell registry look-ups: one backend per system behind one ops struct.
 *
 * Like curl's TLS backends, every connector (file, none, ace, partner_center, gcp) fills in
 * a conn_backend; gate/ never names a specific backend. A conn_set is built from one config
 * snapshot: one opened backend per [cloud:*] plus a shared TTL cache (positive and negative
 * TTLs from the cloud's config; concurrent look-ups of the same key share one upstream call).
 * conn_lookup() looks up the clouds of one deal in parallel and returns within budget_ms.
 */
#ifndef DG_CONN_H
#define DG_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "config/cfg.h"
#include "config/err.h"
#include "rules/model.h"

typedef struct conn_backend {
    const char *name; /* "file", "none", "ace", "partner_center", "gcp" */
    /* Returns 1 if id has this system's registration-id syntax (checked before any call). */
    int (*valid_id)(const char *id);
    /* Opens an instance for cc. state_dir is a directory where the backend may keep state
     * across restarts (the service's data_dir; a rotated refresh token), or NULL: keep
     * nothing. Returns DG_OK and *state, or an error with a one-line message in err. */
    dg_err (*open)(const cfg_cloud *cc, const char *state_dir, void **state, char *err,
                   size_t errlen);
    void (*close)(void *state);
    /* Looks up registration `id`. Sets out->lookup FOUND or NOT_FOUND and the record's
     * fields (status, crm_id, created_at, origin) and returns DG_OK; on failure sets
     * out->lookup FAILED and out->error, and returns the error. timeout_ms bounds the call. */
    dg_err (*by_id)(void *state, const char *id, int timeout_ms, dg_reg_fact *out);
    /* Looks up the registration whose record carries CRM opportunity id crm_id (may be
     * NULL for backends that cannot: then NOT_FOUND means "no registration"). */
    dg_err (*by_crm_id)(void *state, const char *crm_id, int timeout_ms, dg_reg_fact *out);
    /* Optional: writes one line of health ("ok", "index 1234 records, 5 s old", last error)
     * into buf. NULL if the backend has nothing to say. */
    void (*health)(void *state, char *buf, size_t n);
} conn_backend;

/* The backend for a connector kind; never NULL for a valid kind. */
const conn_backend *conn_backend_for(cfg_connector kind);

typedef struct conn_set conn_set;

/* Opens every cloud of c. Borrows c for the set's lifetime. Returns DG_OK and *out (free
 * with conn_set_free), or the first error with "cloud:KEY: message" in err. */
dg_err conn_set_new(const struct cfg *c, conn_set **out, char *err, size_t errlen);
/* Closes every backend and frees s. Look-ups that outlived their decision budget keep
 * running in the background (to fill the cache); conn_set_free waits for them, which takes
 * at most the largest timeout_ms of the clouds. NULL is a no-op. */
void conn_set_free(conn_set *s);

/* Looks up the registrations of e for the given clouds, in parallel, all within budget_ms
 * (each call also within its cloud's timeout_ms). Appends exactly one dg_reg_fact per cloud
 * to f->regs (in the order of `clouds`): by the CRM's registration id when e holds one for
 * that cloud (checked against the backend's syntax first: a bad id is NOT_FOUND with error
 * "invalid ... id"), else by e->opp_id. Results are cached per the cloud's TTLs.
 * Returns DG_OK (individual failures are in the facts) or DG_ENOMEM. */
dg_err conn_lookup(conn_set *s, const dg_event *e, const char *const *clouds, size_t n,
                   int budget_ms, dg_facts *f);

/* Writes a JSON object {"<cloud>": {"connector": "...", "status": "ok"|"...", ...}} into
 * buf describing upstream health; never contains a secret. Returns length. Like snprintf:
 * the length returned is what the whole object needs; when it is >= n the output was cut
 * (still terminated, when n > 0) and the caller should retry with a larger buffer.
 * Fields per cloud: docs/internals/connectors.md. */
size_t conn_health_json(conn_set *s, char *buf, size_t n);

/* Counters summed over every cloud of s, for /metrics: look-ups answered from the cache
 * (*hits), look-ups that were not (*misses: they started an upstream call or joined one
 * already in flight), and backend calls made (*upstream_calls). Any pointer may be NULL. */
void conn_stats(conn_set *s, uint64_t *hits, uint64_t *misses, uint64_t *upstream_calls);

/* Per-cloud counters for /metrics (since the set was built: a config reload starts them
 * again). Backend calls are timed from start to answer (file and none answer from memory);
 * lat[] counts calls by duration: lat[i] took at most conn_lat_bounds_us[i] (and more than
 * the bound before it), lat[CONN_LAT_BUCKETS] longer. Not cumulative. */
#define CONN_LAT_BUCKETS 12
extern const uint32_t conn_lat_bounds_us[CONN_LAT_BUCKETS]; /* 1 ms ... 10 s */
typedef struct {
    const char *cloud;     /* the cloud key (borrowed from the set's config) */
    const char *connector; /* backend name (static) */
    uint64_t hits, misses; /* look-ups answered from the cache / not */
    uint64_t calls;        /* backend calls made */
    uint64_t errors;       /* backend calls that failed (lookup FAILED) */
    uint64_t lat_count, lat_sum_us;
    uint64_t lat[CONN_LAT_BUCKETS + 1];
} conn_cloud_stats;

/* Returns the number of clouds of s (0 for NULL); when i is below it and out is non-NULL,
 * fills *out with cloud i's counters (a consistent snapshot). */
size_t conn_cloud_stat(conn_set *s, size_t i, conn_cloud_stats *out);

/* For tests and tools: like conn_set_new, but every cloud uses `override` (when non-NULL)
 * instead of the backend of its connector kind, and the cache holds at most cache_max
 * entries (0 = the default, 10000). Same ownership and errors as conn_set_new. */
dg_err conn_set_new_with(const struct cfg *c, const conn_backend *override, size_t cache_max,
                         conn_set **out, char *err, size_t errlen);

#endif
