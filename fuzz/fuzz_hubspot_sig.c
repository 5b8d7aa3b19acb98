/* fuzz_hubspot_sig.c — HubSpot signature headers and verification (gate/hubspot_sig.h).
 *
 * The input is the request's parts separated by '\n': secret, method, uri, timestamp,
 * signature header, and the rest is the body. Checks: verification of whatever arrived
 * never crashes and answers DG_OK or DG_EAUTH with a clean one-line reason; the uri
 * decoder stays in its buffer whatever its size; and a signature computed for the request
 * always verifies (v1/v2 also in upper-case hex; v3 also over the decoded uri, as HubSpot's
 * documented signer makes it), while the same signature with one byte changed does not. */
#include "fuzz/fuzz_common.h"
#include "gate/hubspot_sig.h"

#define NOW_MS 1767225600000LL

static void check_verify(hs_sig_version v, const hs_sig_input *in, const char *sig, int want_ok)
{
    char err[200] = "";
    dg_err rc = hs_sig_verify(v, in, sig, NOW_MS, err, sizeof err);
    if (rc != DG_OK && rc != DG_EAUTH) fuzz_fail("hs_sig_verify", "neither OK nor EAUTH");
    if (rc != DG_OK) fuzz_check_msg("hs_sig_verify reason", err);
    if (want_ok == 1 && rc != DG_OK) fuzz_fail("a computed signature does not verify", err);
    if (want_ok == 0 && rc == DG_OK) fuzz_fail("a changed signature verifies", sig);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *part[5] = {0};
    const uint8_t *p = data;
    size_t left = size, n = 0;
    for (int i = 0; i < 5; i++) {
        const uint8_t *next = p ? fuzz_split(p, left, '\n', &n, &left) : NULL;
        part[i] = fuzz_str(p ? p : (const uint8_t *)"", p ? n : 0);
        p = next;
        if (!p) left = 0;
    }
    const char *body = p ? (const char *)p : "";
    size_t blen = p ? left : 0;
    hs_sig_input in = {.secret = part[0],
                       .method = part[1],
                       .uri = part[2],
                       .body = body,
                       .body_len = blen,
                       .timestamp = part[3]};
    for (int i = 0; i < 5; i++)
        if (part[i] == NULL) goto out;

    /* whatever arrived */
    for (int v = HS_SIG_V1; v <= HS_SIG_V3; v++)
        check_verify((hs_sig_version)v, &in, part[4], -1);

    /* the decoder in buffers of every small size */
    for (size_t cap = 0; cap < 8; cap++) {
        char small[8];
        memset(small, 'x', sizeof small);
        if (hs_sig_decode_uri(part[2], small, cap) == DG_OK && memchr(small, '\0', cap) == NULL)
            fuzz_fail("hs_sig_decode_uri", "DG_OK without a terminator");
    }
    char dec[4096];
    dg_err drc = hs_sig_decode_uri(part[2], dec, sizeof dec);
    if (drc == DG_OK && strlen(dec) > strlen(part[2])) fuzz_fail("decoded uri", "grew");

    /* round trips */
    char ts[24];
    snprintf(ts, sizeof ts, "%lld", NOW_MS - (long long)(blen % 1000) * 100);
    hs_sig_input good = in;
    good.timestamp = ts;
    for (int v = HS_SIG_V1; v <= HS_SIG_V3; v++) {
        char sig[HS_SIG_HEX_LEN + 1];
        if (hs_sig_compute((hs_sig_version)v, &good, sig, sizeof sig) != DG_OK) continue;
        if (!*good.secret) continue; /* no secret: nothing verifies */
        check_verify((hs_sig_version)v, &good, sig, 1);
        if (v != HS_SIG_V3) {
            for (char *q = sig; *q; q++)
                if (*q >= 'a' && *q <= 'f') *q = (char)(*q - 32);
            check_verify((hs_sig_version)v, &good, sig, 1);
        }
        size_t k = blen % strlen(sig);
        sig[k] = sig[k] == 'A' ? 'B' : 'A';
        check_verify((hs_sig_version)v, &good, sig, 0);
    }
    if (drc == DG_OK && *good.secret && strlen(part[2]) < 2000) { /* verify decodes < 2 KiB */
        hs_sig_input decoded = good;
        decoded.uri = dec;
        char sig[HS_SIG_B64_LEN + 1];
        if (hs_sig_compute(HS_SIG_V3, &decoded, sig, sizeof sig) == DG_OK)
            check_verify(HS_SIG_V3, &good, sig, 1);
    }
out:
    for (int i = 0; i < 5; i++)
        free(part[i]);
    return 0;
}
