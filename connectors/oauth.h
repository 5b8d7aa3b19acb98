/* oauth.h — the OAuth2 access-token cache the live backends share (Partner Center's
 * refresh-token grant, Google Cloud's service-account JWT grant).
 *
 * A conn_oauth holds one access token and its expiry on the monotonic clock. conn_oauth_get()
 * hands out a copy of it, or fetches a new one through the backend's fetch function when
 * there is none or it is due: the token is used until 60 s before expires_in (a token valid
 * for 60 s or less is used once). One fetch is in flight at a time; concurrent callers wait
 * for it within their own deadlines. Every token carries a generation: a 401 from the API
 * invalidates the token it was sent with (conn_oauth_invalidate), and only that one, so a
 * newer token fetched meanwhile survives. Also here: the pieces of a token request (a form
 * POST, the token answer's fields, wiping it) and conn_fail, the failure of one call.
 * No token ever reaches an error text.
 */
#ifndef DG_CONN_OAUTH_H
#define DG_CONN_OAUTH_H

#include <stddef.h>
#include <stdint.h>

#include <pthread.h>

#include <cjson/cJSON.h>

#include "config/err.h"
#include "connectors/http.h"

#define CONN_OAUTH_EXPIRY_MARGIN_S 60
#define CONN_OAUTH_TOKEN_MAX 16384 /* bytes of a token in an answer */
#define CONN_FAIL_MSG_MAX 256

/* Why one call failed: the FAILED fact's error, whether it is retryable, one line. */
typedef struct {
    dg_err rc;
    int retryable;
    char msg[CONN_FAIL_MSG_MAX];
} conn_fail;

/* Fills f (the message from fmt). */
void conn_failf(conn_fail *f, dg_err rc, int retryable, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC; broadcast when a fetch ends */
    char *token;       /* NULL until fetched */
    int64_t exp_ms;    /* use until (conn_now_ms) */
    uint64_t gen;      /* bumped for every new token */
    int fetching;
} conn_oauth;

/* Initialises o (empty). Returns DG_OK, or DG_EINTERNAL when a condition variable cannot be
 * made (then o needs no conn_oauth_destroy). */
dg_err conn_oauth_init(conn_oauth *o);
/* Wipes the token and frees what o holds; no call may be in flight. */
void conn_oauth_destroy(conn_oauth *o);

/* A backend's token request: called by one thread at a time (so it may use state of its own
 * without a lock), without o's lock held, to return before deadline_ms. Returns DG_OK with
 * *access (malloc'd, taken over) and *expires_in (seconds), else an error with f filled. */
typedef dg_err (*conn_oauth_fetch_fn)(void *ctx, int64_t deadline_ms, char **access,
                                      int64_t *expires_in, conn_fail *f);

/* Returns DG_OK with *tok (a malloc'd copy of a valid token: free with conn_wipe_free) and
 * *gen (its generation), fetching one with fetch(ctx, ...) when needed; else the error with
 * f filled (fetch's failure, or "<who>: out of time waiting for a token" when another
 * caller's fetch outlasts deadline_ms, or "<who>: out of memory"). */
dg_err conn_oauth_get(conn_oauth *o, int64_t deadline_ms, conn_oauth_fetch_fn fetch, void *ctx,
                      const char *who, char **tok, uint64_t *gen, conn_fail *f);

/* Marks the token of generation gen expired (the API refused it); a newer one is kept. */
void conn_oauth_invalidate(conn_oauth *o, uint64_t gen);

/* Seconds the current token stays usable, or -1 when there is none. */
int64_t conn_oauth_valid_s(conn_oauth *o);

/* POSTs the form body form[0..len) (application/x-www-form-urlencoded) to url, to end before
 * deadline_ms. Returns DG_OK with *status and *json (the answer parsed, NULL when not JSON;
 * free with conn_oauth_json_free), else an error with f filled ("<who>: <why>"). */
dg_err conn_oauth_post_form(conn_http_client *http, const char *url, const char *form, size_t len,
                            int64_t deadline_ms, const char *who, long *status, cJSON **json,
                            conn_fail *f);

/* Wipes the strings of a parsed token answer (top level) and deletes it. NULL is a no-op. */
void conn_oauth_json_free(cJSON *j);

/* Reads a token answer: access_token (required), expires_in (a number, or a string of digits
 * as Azure AD v1 sends it), refresh_token (optional, a rotated one; rotated may be NULL when
 * the caller has no use for it). Returns 0 with *access and *rotated malloc'd (rotated may
 * be NULL), or -1 with both NULL. */
int conn_oauth_parse_token(const cJSON *j, char **access, int64_t *expires_in, char **rotated);

/* Appends "&name=value" (value percent-encoded) to the form in *buf of *len bytes. Returns 0
 * or -1 (out of memory). */
int conn_oauth_form_add(char **buf, size_t *len, const char *name, const char *value);

#endif
