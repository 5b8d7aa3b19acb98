/* hubspot_sig.c — HubSpot v1/v2/v3 request signatures over mbedTLS SHA-256 / HMAC-SHA256.
 *
 * The message is never concatenated into one buffer: the parts are fed to the hash in
 * order, so a large body costs no copy and no size limit beyond the HTTP layer's. The
 * comparison walks the whole expected signature whatever the candidate looks like, so the
 * time taken says nothing about how much of it matched.
 */
#include "gate/hubspot_sig.h"

#include <mbedtls/base64.h>
#include <mbedtls/md.h>
#include <mbedtls/sha256.h>
#include <string.h>

static void hex32(const unsigned char h[32], char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = digits[h[i] >> 4];
        out[2 * i + 1] = digits[h[i] & 15];
    }
    out[64] = '\0';
}

static size_t slen(const char *s)
{
    return s ? strlen(s) : 0;
}

static dg_err sha256_parts(const char *const *parts, const size_t *lens, size_t n,
                           unsigned char out[32])
{
    mbedtls_sha256_context cx;
    mbedtls_sha256_init(&cx);
    int rc = mbedtls_sha256_starts_ret(&cx, 0);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (lens[i]) rc = mbedtls_sha256_update_ret(&cx, (const unsigned char *)parts[i], lens[i]);
    if (rc == 0) rc = mbedtls_sha256_finish_ret(&cx, out);
    mbedtls_sha256_free(&cx);
    return rc == 0 ? DG_OK : DG_EINTERNAL;
}

static dg_err hmac_parts(const char *key, const char *const *parts, const size_t *lens, size_t n,
                         unsigned char out[32])
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    mbedtls_md_context_t cx;
    mbedtls_md_init(&cx);
    int rc = md ? mbedtls_md_setup(&cx, md, 1) : -1;
    if (rc == 0) rc = mbedtls_md_hmac_starts(&cx, (const unsigned char *)key, strlen(key));
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (lens[i]) rc = mbedtls_md_hmac_update(&cx, (const unsigned char *)parts[i], lens[i]);
    if (rc == 0) rc = mbedtls_md_hmac_finish(&cx, out);
    mbedtls_md_free(&cx);
    return rc == 0 ? DG_OK : DG_EINTERNAL;
}

/* Computes v over `uri` (which may differ from in->uri: the decoded form for v3). */
static dg_err compute_uri(hs_sig_version v, const hs_sig_input *in, const char *uri, char *out,
                          size_t outlen)
{
    unsigned char h[32];
    dg_err rc;
    if (!in->secret || !*in->secret || (in->body_len && !in->body)) return DG_EINVAL;
    const char *body = in->body ? in->body : "";
    switch (v) {
    case HS_SIG_V1: {
        const char *p[] = {in->secret, body};
        size_t l[] = {strlen(in->secret), in->body_len};
        if (outlen < HS_SIG_HEX_LEN + 1) return DG_ETOOBIG;
        if ((rc = sha256_parts(p, l, 2, h)) != DG_OK) return rc;
        hex32(h, out);
        return DG_OK;
    }
    case HS_SIG_V2: {
        if (!in->method || !uri) return DG_EINVAL;
        const char *p[] = {in->secret, in->method, uri, body};
        size_t l[] = {strlen(in->secret), strlen(in->method), strlen(uri), in->body_len};
        if (outlen < HS_SIG_HEX_LEN + 1) return DG_ETOOBIG;
        if ((rc = sha256_parts(p, l, 4, h)) != DG_OK) return rc;
        hex32(h, out);
        return DG_OK;
    }
    case HS_SIG_V3: {
        if (!in->method || !uri || !in->timestamp || !*in->timestamp) return DG_EINVAL;
        const char *p[] = {in->method, uri, body, in->timestamp};
        size_t l[] = {strlen(in->method), strlen(uri), in->body_len, slen(in->timestamp)};
        if (outlen < HS_SIG_B64_LEN + 1) return DG_ETOOBIG;
        if ((rc = hmac_parts(in->secret, p, l, 4, h)) != DG_OK) return rc;
        size_t olen = 0;
        if (mbedtls_base64_encode((unsigned char *)out, outlen, &olen, h, sizeof h) != 0)
            return DG_ETOOBIG;
        out[olen] = '\0';
        return DG_OK;
    }
    }
    return DG_EINVAL;
}

dg_err hs_sig_compute(hs_sig_version v, const hs_sig_input *in, char *out, size_t outlen)
{
    if (outlen) out[0] = '\0';
    return compute_uri(v, in, in->uri, out, outlen);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

dg_err hs_sig_decode_uri(const char *uri, char *out, size_t outlen)
{
    static const char decoded[] = ":/?@!$'()*,;";
    size_t o = 0;
    for (const char *p = uri; *p; p++) {
        char c = *p;
        if (c == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
            char d = (char)(hexval(p[1]) * 16 + hexval(p[2]));
            if (d && strchr(decoded, d)) {
                c = d;
                p += 2;
            }
        }
        if (o + 1 >= outlen) return DG_ETOOBIG;
        out[o++] = c;
    }
    if (outlen == 0) return DG_ETOOBIG;
    out[o] = '\0';
    return DG_OK;
}

/* Constant-time comparison of candidate against expected (NUL-terminated, fixed length):
 * every byte of expected is visited; fold_case lower-cases A-F in the candidate (hex). */
static int ct_equal(const char *expected, const char *candidate, int fold_case)
{
    size_t n = strlen(expected), m = strlen(candidate);
    unsigned diff = (unsigned)(n != m);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = i < m ? (unsigned char)candidate[i] : 0;
        if (fold_case && c >= 'A' && c <= 'F') c = (unsigned char)(c + 32);
        diff |= (unsigned)(c ^ (unsigned char)expected[i]);
    }
    return diff == 0;
}

static int parse_ms(const char *s, int64_t *out)
{
    int64_t v = 0;
    size_t n = 0;
    for (; s[n]; n++) {
        if (s[n] < '0' || s[n] > '9' || n >= 15) return -1;
        v = v * 10 + (s[n] - '0');
    }
    if (n == 0) return -1;
    *out = v;
    return 0;
}

dg_err hs_sig_verify(hs_sig_version v, const hs_sig_input *in, const char *sig, int64_t now_ms,
                     char *err, size_t errlen)
{
    char want[HS_SIG_HEX_LEN + 1];
    if (!sig || !*sig) return dg_errf(err, errlen, DG_EAUTH, "the signature header is empty");
    if (!in->secret || !*in->secret)
        return dg_errf(err, errlen, DG_EAUTH, "no client secret is configured to verify it");
    if (v == HS_SIG_V3) {
        int64_t ts;
        if (!in->timestamp || parse_ms(in->timestamp, &ts) != 0)
            return dg_errf(err, errlen, DG_EAUTH,
                           "X-HubSpot-Request-Timestamp must be epoch milliseconds");
        int64_t skew = now_ms - ts;
        if (skew > HS_SIG_MAX_SKEW_MS)
            return dg_errf(err, errlen, DG_EAUTH,
                           "the request timestamp is %lld s old (limit %d s)",
                           (long long)(skew / 1000), HS_SIG_MAX_SKEW_MS / 1000);
        if (-skew > HS_SIG_MAX_SKEW_MS)
            return dg_errf(err, errlen, DG_EAUTH,
                           "the request timestamp is %lld s in the future (limit %d s)",
                           (long long)(-skew / 1000), HS_SIG_MAX_SKEW_MS / 1000);
    }
    if (compute_uri(v, in, in->uri, want, sizeof want) != DG_OK)
        return dg_errf(err, errlen, DG_EAUTH, "the signature cannot be computed");
    int ok = ct_equal(want, sig, v != HS_SIG_V3);
    if (v == HS_SIG_V3 && in->uri) {
        /* HubSpot's page says to decode a few characters of the uri first; its SDKs do
         * not. Both forms are computed and compared, so either signer is accepted. */
        char dec[2048];
        if (hs_sig_decode_uri(in->uri, dec, sizeof dec) == DG_OK && strcmp(dec, in->uri) != 0 &&
            compute_uri(v, in, dec, want, sizeof want) == DG_OK)
            ok |= ct_equal(want, sig, 0);
    }
    memset(want, 0, sizeof want);
    if (!ok) return dg_errf(err, errlen, DG_EAUTH, "the signature does not match");
    return DG_OK;
}
