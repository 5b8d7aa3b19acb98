/* sigv4.h — AWS Signature Version 4 for outbound calls, through libcurl's built-in signer.
 *
 * dealgate does not hand-write SigV4: libcurl 7.88's CURLOPT_AWS_SIGV4 passes the header
 * variants of the public vectors (get-vanilla, post-vanilla, post-x-www-form-urlencoded;
 * tests/unit/test_sigv4.c captures what curl sends to a loopback listener and compares the
 * Authorization header byte for byte). It signs every header set through CURLOPT_HTTPHEADER
 * plus host and x-amz-date, and hashes the POST body. Its known limits do not touch ACE calls:
 * it mis-orders query parameters (ACE calls are `POST /` without a query), and when the
 * caller sets X-Amz-Date itself it sends that header twice (curl issue 11738), so production
 * calls let curl stamp the time and only tests pin it (amz_date).
 */
#ifndef DG_CONN_SIGV4_H
#define DG_CONN_SIGV4_H

#include <stddef.h>

#include <curl/curl.h>

#include "config/err.h"

/* Credentials and scope of one signer. All strings are borrowed. */
typedef struct conn_sigv4 {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; /* NULL or "" when none; sent (and signed) as X-Amz-Security-Token */
    const char *region;        /* e.g. "us-east-1" */
    const char *service;       /* e.g. "partnercentral-selling" */
    const char *amz_date;      /* NULL: now; else a fixed "YYYYMMDDTHHMMSSZ" (tests only) */
} conn_sigv4;

/* Returns DG_OK if s can be handed to libcurl: key id, secret, region and service present,
 * region and service made of [a-z0-9-] (curl's parameter string is colon-separated), no
 * control characters in any credential, amz_date (when set) 16 characters of the form above.
 * Otherwise DG_EINVAL with a one-line message naming the field, never its value. */
dg_err conn_sigv4_check(const conn_sigv4 *s, char *err, size_t errlen);

/* Makes easy handle h sign its next request with s: sets CURLOPT_AWS_SIGV4 and the
 * credentials, and appends X-Amz-Security-Token (and X-Amz-Date when pinned) to *headers,
 * which the caller passes to CURLOPT_HTTPHEADER after this call and frees with
 * curl_slist_free_all() after the transfer. Returns DG_OK, DG_EINVAL (see conn_sigv4_check)
 * or DG_ENOMEM. */
dg_err conn_sigv4_apply(CURL *h, struct curl_slist **headers, const conn_sigv4 *s, char *err,
                        size_t errlen);

#endif
