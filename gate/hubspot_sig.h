/* hubspot_sig.h — HubSpot request signatures (v1, v2, v3), computed and verified.
 *
 * HubSpot signs what it sends with the app's client secret (algorithms in
 * docs/internals/hubspot-signatures.md and ../shared/testdata/hubspot/signature-vectors.txt):
 *   v1 = hex(SHA-256(secret + body))                          (webhooks API only)
 *   v2 = hex(SHA-256(secret + method + uri + body))           (workflows, custom actions)
 *   v3 = base64(HMAC-SHA256(secret, method + uri + body + ts)) (adds a timestamp)
 * `uri` is the full URL HubSpot called (scheme, host, path, query). Verification compares in
 * constant time over the whole expected value, whatever the length of the candidate, and
 * never copies the secret or a signature into an error message. Pure functions: the caller
 * passes the clock. mbedTLS does the hashing.
 */
#ifndef DG_HUBSPOT_SIG_H
#define DG_HUBSPOT_SIG_H

#include <stddef.h>
#include <stdint.h>

#include "config/err.h"

#define HS_SIG_HEX_LEN 64         /* v1/v2: lower-case hex of a SHA-256 */
#define HS_SIG_B64_LEN 44         /* v3: base64 of a 32-byte HMAC */
#define HS_SIG_MAX_SKEW_MS 300000 /* v3: 5 minutes */

typedef enum { HS_SIG_V1 = 1, HS_SIG_V2 = 2, HS_SIG_V3 = 3 } hs_sig_version;

/* The parts of one request that a signature covers. Everything borrowed. */
typedef struct {
    const char *secret; /* the app's client secret */
    const char *method; /* "POST" */
    const char *uri;    /* https://host/path?query as HubSpot called it */
    const char *body;   /* raw body bytes (need not be NUL-terminated) */
    size_t body_len;
    const char *timestamp; /* v3 only: X-HubSpot-Request-Timestamp, epoch ms as text */
} hs_sig_input;

/* Computes the signature of `in` for version v into out (NUL-terminated: 65 bytes for
 * v1/v2, 45 for v3). Returns DG_OK, DG_EINVAL (missing input, e.g. no timestamp for v3) or
 * DG_ETOOBIG (out too small). */
dg_err hs_sig_compute(hs_sig_version v, const hs_sig_input *in, char *out, size_t outlen);

/* Decodes the characters HubSpot decodes in the uri before signing v3 (%3A %2F %3F %40 %21
 * %24 %27 %28 %29 %2A %2C %3B, either case) into out. Returns DG_OK or DG_ETOOBIG. */
dg_err hs_sig_decode_uri(const char *uri, char *out, size_t outlen);

/* Verifies signature `sig` (the header's value) for version v. For v3 it first checks the
 * timestamp is a plain decimal within HS_SIG_MAX_SKEW_MS of now_ms (either direction), then
 * accepts the HMAC over the uri as given or with hs_sig_decode_uri applied. v1/v2 compare
 * hex case-insensitively. Returns DG_OK when valid; DG_EAUTH otherwise, with a one-line
 * reason in err ("signature does not match", "timestamp is 412 s old", ...). */
dg_err hs_sig_verify(hs_sig_version v, const hs_sig_input *in, const char *sig, int64_t now_ms,
                     char *err, size_t errlen);

#endif
