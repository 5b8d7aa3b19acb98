/* http.h — the small libcurl helper the live co-sell connectors share.
 *
 * One conn_http_client per opened backend keeps a few idle easy handles (so keep-alive
 * connections and TLS sessions are reused) and a curl share for DNS and TLS sessions; each
 * call borrows a handle, so any number of threads may call conn_http_do() at once. Every call
 * has a hard timeout, follows no redirect, speaks only http/https (plain http only to a
 * loopback host), caps the response body (CONN_HTTP_MAX_BODY by default; more is DG_ETOOBIG)
 * and turns transport failures into one dg_err with a one-line message that never carries a
 * header or body (so no secret). Also here: percent-encoding, origin checks for links an
 * upstream hands back, a monotonic clock and bounded JSON field readers, and the small
 * pieces every live backend needs around its calls: a JSON GET within a deadline, filling a
 * fact (also from the body a parse entry point is given), sleeping and waiting on the
 * monotonic clock, wiping secrets, its health line.
 */
#ifndef DG_CONN_HTTP_H
#define DG_CONN_HTTP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <pthread.h>

#include <cjson/cJSON.h>

#include "config/err.h"
#include "connectors/sigv4.h"
#include "rules/model.h"

#define CONN_HTTP_MAX_BODY ((size_t)4 << 20) /* default response cap: 4 MiB */
#define CONN_HTTP_ORIGIN_MAX 300             /* "scheme://host:port" */

/* Initialises libcurl once per process (pthread_once); later calls return the first
 * result. conn_http_client_new() calls it, so callers rarely need to. */
dg_err conn_http_global_init(void);

typedef struct conn_http_client conn_http_client;

/* Creates a client. Returns DG_OK and *out (free with conn_http_client_free), or DG_ENOMEM /
 * DG_EINTERNAL with a message in err. */
dg_err conn_http_client_new(conn_http_client **out, char *err, size_t errlen);
/* Frees c and its idle handles; no call may be in flight. NULL is a no-op. */
void conn_http_client_free(conn_http_client *c);

typedef struct {
    const char *method;         /* "GET", "POST" or "PATCH" (PATCH sends body like POST) */
    const char *url;            /* absolute http(s) URL; http:// only to a loopback host */
    const char *const *headers; /* "Name: value" lines, NULL-terminated; may be NULL */
    const char *body;           /* POST/PATCH body; may be NULL when body_len is 0 */
    size_t body_len;
    int timeout_ms;           /* the whole call, connect included; must be > 0 */
    size_t max_response;      /* 0 = CONN_HTTP_MAX_BODY */
    const conn_sigv4 *sigv4;  /* sign with AWS SigV4 when not NULL (borrowed) */
    const atomic_int *cancel; /* the call aborts soon after *cancel becomes non-zero; may be NULL */
} conn_http_req;

typedef struct {
    long status;               /* HTTP status of the final response */
    char *body;                /* response body, NUL-terminated (owned; conn_http_resp_free) */
    size_t len;                /* bytes in body, without the NUL */
    char amzn_error_type[128]; /* x-amzn-ErrorType up to its first ':' ("" when absent) */
    int retry_after_s;         /* Retry-After in seconds, -1 when absent or not a number */
} conn_http_resp;

/* Performs one request. Returns DG_OK when a response arrived, whatever its status (the
 * caller classifies it), with *rs filled (free with conn_http_resp_free even on error).
 * Otherwise: DG_EINVAL (bad URL or request), DG_ETIMEOUT, DG_EUNAVAILABLE (cannot connect or
 * resolve, or cancelled), DG_ETOOBIG (body over the cap), DG_EUPSTREAM (other transport
 * failure), DG_ENOMEM; err gets one line naming the upstream's origin, never a secret. */
dg_err conn_http_do(conn_http_client *c, const conn_http_req *rq, conn_http_resp *rs, char *err,
                    size_t errlen);
void conn_http_resp_free(conn_http_resp *rs);

/* Returns a malloc'd copy of s with every byte outside RFC 3986 "unreserved"
 * (A-Z a-z 0-9 - . _ ~) percent-encoded ("%2F"), or NULL if out of memory. Caller frees. */
char *conn_http_escape(const char *s);

/* Returns a malloc'd URL: base, then path, then id percent-encoded as conn_http_escape()
 * does, or NULL if out of memory. Caller frees. For a resource named by an id. */
char *conn_http_url_id(const char *base, const char *path, const char *id);

/* Writes the origin of absolute URL `url` as "scheme://host:port" (scheme and host lower
 * case, the default port made explicit) into buf. Returns DG_OK, DG_EINVAL if url is not an
 * absolute http(s) URL with a host, DG_ETOOBIG if buf is too small. */
dg_err conn_http_origin(const char *url, char *buf, size_t n);

/* Returns 1 if url is an absolute http(s) URL with exactly the origin `origin` (as written by
 * conn_http_origin), else 0. */
int conn_http_same_origin(const char *url, const char *origin);

/* Checks a configured base URL (endpoint, token_url): absolute, http or https, no user info,
 * query or fragment; http only to a loopback host (localhost, 127.0.0.0/8, ::1). Returns
 * DG_OK or DG_EINVAL with "<what>: ..." in err. */
dg_err conn_http_check_base(const char *url, const char *what, char *err, size_t errlen);

/* Returns a malloc'd copy of a configured base URL without its trailing '/'s (so that paths
 * are appended as "%s/path"), or NULL if out of memory. Caller frees. */
char *conn_http_base_dup(const char *url);

/* Returns 1 if host (a bare host name or address, brackets allowed) is loopback. */
int conn_http_is_loopback(const char *host);

/* Copies at most n-1 bytes of s into out as one clean line: control characters and runs of
 * white space become one space, non-ASCII bytes '?', and a cut is marked with "...". For
 * quoting upstream error messages. */
void conn_http_excerpt(const char *s, char *out, size_t n);

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t conn_now_ms(void);
/* Nanoseconds of CLOCK_MONOTONIC (the same clock). */
int64_t conn_now_ns(void);

/* Reads string member `name` of object o. Returns 0 and *out = malloc'd copy (NULL when the
 * member is absent, null or "" ), or -1 when it is of another type, longer than max bytes,
 * holds a control character, is not valid UTF-8, or memory ran out. Caller frees *out. */
int conn_json_str(const cJSON *o, const char *name, size_t max, char **out);

/* Returns 1 if id is 1 to max bytes of ASCII letters, digits and bytes of punct, else 0 (also
 * for NULL). For checking an upstream's id syntax before it goes into a URL. */
int conn_id_chars(const char *id, const char *punct, size_t max);

/* Frees *slot and stores s there, taking ownership of s (which may be NULL). For filling
 * dg_reg_fact fields that may already hold a value. */
void conn_set_str(char **slot, char *s);

/* ---- for the backends ------------------------------------------------------------------ */

/* Clears the record fields of out (status, crm_id, created_at, origin, error; retryable = 0)
 * before a backend fills it; cloud, id, source and lookup are left as they are. */
void conn_fact_clear(dg_reg_fact *out);

/* Makes out a FAILED fact: record fields cleared, retryable, error = a copy of msg. Returns
 * rc, or DG_ENOMEM when msg cannot be copied. */
dg_err conn_fact_fail(dg_reg_fact *out, dg_err rc, int retryable, const char *msg);

/* Makes out a NOT_FOUND fact: record fields cleared, error = a copy of note (why there is
 * nothing to find: an id of the wrong syntax...) or NULL. Returns DG_OK, or DG_ENOMEM when
 * note cannot be copied. */
dg_err conn_fact_not_found(dg_reg_fact *out, const char *note);

/* Sleeps ms milliseconds, going on after a signal; nothing when ms <= 0. */
void conn_sleep_ms(int64_t ms);

/* Initialises *cv with CLOCK_MONOTONIC for its timed waits (the clock of conn_now_ms).
 * Returns 0, or -1 when it cannot (then *cv is not initialised). */
int conn_cond_init_monotonic(pthread_cond_t *cv);
/* Waits on cv (with mu held, as pthread_cond_timedwait) until it is signalled or
 * conn_now_ms() reaches deadline_ms. */
void conn_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms);

/* Overwrites the string s with zeros and frees it: for tokens and secrets. NULL is a no-op. */
void conn_wipe_free(char *s);

/* What conn_http_get_json() got back. */
typedef struct {
    long status;       /* HTTP status of the answer */
    int retry_after_s; /* its Retry-After in seconds, -1 when absent or not a number */
    cJSON *json;       /* its body parsed, NULL when not JSON (owned: caller deletes) */
} conn_http_json;

/* One GET of a JSON API for a backend's attempt loop: url with headers (borrowed), bounded by
 * deadline_ms (a conn_now_ms() time). Returns DG_OK with *ans filled when an answer came
 * back: a 200 answer always carries a JSON object; any other status carries whatever its
 * body parsed to, for the backend to classify. Otherwise *ans holds nothing to free, msg
 * gets one line "<who>: <why>" and *retryable whether another attempt may help: DG_ETIMEOUT
 * when the deadline has passed ("out of time", retryable), DG_EPARSE when a 200 answer is
 * not a JSON object ("malformed JSON in the response", retryable), or the failure of
 * conn_http_do() (with its message; retryable except DG_ETOOBIG and DG_EINVAL). */
dg_err conn_http_get_json(conn_http_client *c, const char *url, const char *const *headers,
                          int64_t deadline_ms, const char *who, conn_http_json *ans, char *msg,
                          size_t msglen, int *retryable);

/* The body of a backend's pure by-id parse entry point (parse.h): parses body[0..len) and
 * hands the JSON object to fill(j, id, out) (id NULL counts as ""), which makes out FOUND or
 * FAILED and returns DG_OK or the FAILED fact's error; a body that is not a JSON object
 * makes out FAILED (DG_EPARSE, retryable, "<who>: malformed JSON in the response").
 * Returns fill's result or DG_EPARSE, with out->error (or "out of memory") in err on an
 * error. */
typedef dg_err (*conn_fact_fill_fn)(const cJSON *j, const char *id, dg_reg_fact *out);
dg_err conn_parse_fact(const char *body, size_t len, const char *id, const char *who,
                       conn_fact_fill_fn fill, dg_reg_fact *out, char *err, size_t errlen);

/* Writes a backend's health from its last calls into buf (n bytes): "error N s ago: MSG"
 * when the last call failed, "ok, last success N s ago", or "no call yet". now, last_ok_ms
 * and last_err_ms are conn_now_ms() times, 0 = never; last_err is the last error text. */
void conn_health_calls(char *buf, size_t n, int64_t now, int64_t last_ok_ms, int64_t last_err_ms,
                       const char *last_err);

#endif
