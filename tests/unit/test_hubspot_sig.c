/* test_hubspot_sig.c — HubSpot signatures against every vector of
 * $DG_TESTDATA/hubspot/signature-vectors.txt, plus the ways a request must be refused:
 * tampered body, wrong secret, other URI, stale or future timestamp, malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gate/hubspot_sig.h"

#define MAXV 32

typedef struct {
    int version;
    char method[16];
    char uri[256];
    char body[512];
    char timestamp[32];
    char signature[128];
} vector;

static char secret[128];
static vector vecs[MAXV];
static int nvecs;

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = '\0';
}

static void copy(char *dst, size_t cap, const char *s, size_t n)
{
    assert_true(n < cap);
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* Parses " vN  [method = M, uri = U, ]body = B" into v. */
static void parse_head(const char *line, vector *v)
{
    v->version = line[2] - '0';
    const char *p = line + 3;
    while (*p == ' ')
        p++;
    const char *m = strstr(p, "method = ");
    if (m == p) {
        const char *u = strstr(p, ", uri = ");
        assert_non_null(u);
        copy(v->method, sizeof v->method, p + 9, (size_t)(u - (p + 9)));
        const char *b = strstr(u, ", body = ");
        assert_non_null(b);
        copy(v->uri, sizeof v->uri, u + 8, (size_t)(b - (u + 8)));
        p = b + 2;
    }
    assert_true(strncmp(p, "body = ", 7) == 0);
    p += 7;
    if (strcmp(p, "(empty)") == 0) p = "";
    copy(v->body, sizeof v->body, p, strlen(p));
}

static int load_vectors(void **state)
{
    (void)state;
    const char *dir = getenv("DG_TESTDATA");
    char path[1024];
    snprintf(path, sizeof path, "%s/hubspot/signature-vectors.txt",
             dir ? dir : "../shared/testdata");
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s (set DG_TESTDATA)\n", path);
        return -1;
    }
    char line[1024];
    vector *cur = NULL;
    while (fgets(line, sizeof line, f)) {
        trim(line);
        if (strncmp(line, "client_secret for all: ", 23) == 0) {
            copy(secret, sizeof secret, line + 23, strlen(line + 23));
        } else if (line[0] == ' ' && line[1] == 'v' && line[2] >= '1' && line[2] <= '3' &&
                   line[3] == ' ') {
            if (nvecs == MAXV) break;
            cur = &vecs[nvecs++];
            memset(cur, 0, sizeof *cur);
            parse_head(line, cur);
        } else if (cur && strncmp(line, "     timestamp = ", 17) == 0) {
            /* the body line went on to this one: its trailing comma was a separator */
            size_t n = strlen(cur->body);
            if (n && cur->body[n - 1] == ',') cur->body[n - 1] = '\0';
            copy(cur->timestamp, sizeof cur->timestamp, line + 17, strlen(line + 17));
        } else if (cur && strncmp(line, "     signature = ", 17) == 0) {
            copy(cur->signature, sizeof cur->signature, line + 17, strlen(line + 17));
            cur = NULL;
        }
    }
    fclose(f);
    return (secret[0] && nvecs > 0) ? 0 : -1;
}

static hs_sig_input input_of(const vector *v, const char *sec)
{
    hs_sig_input in = {.secret = sec,
                       .method = v->method,
                       .uri = v->uri,
                       .body = v->body,
                       .body_len = strlen(v->body),
                       .timestamp = v->timestamp};
    return in;
}

static int64_t ts_of(const vector *v)
{
    char *end;
    long long t = strtoll(v->timestamp, &end, 10);
    return *end == '\0' ? (int64_t)t : 0;
}

static void test_vectors_parsed(void **state)
{
    (void)state;
    int seen[4] = {0};
    for (int i = 0; i < nvecs; i++) {
        assert_true(vecs[i].signature[0] != '\0');
        seen[vecs[i].version]++;
    }
    /* the file holds 2 v1, 3 v2 and 1 v3 vectors */
    assert_int_equal(seen[1], 2);
    assert_int_equal(seen[2], 3);
    assert_int_equal(seen[3], 1);
}

static void test_every_vector_computes(void **state)
{
    (void)state;
    for (int i = 0; i < nvecs; i++) {
        hs_sig_input in = input_of(&vecs[i], secret);
        char out[80];
        assert_int_equal(hs_sig_compute((hs_sig_version)vecs[i].version, &in, out, sizeof out),
                         DG_OK);
        assert_string_equal(out, vecs[i].signature);
    }
}

static void test_every_vector_verifies(void **state)
{
    (void)state;
    for (int i = 0; i < nvecs; i++) {
        hs_sig_input in = input_of(&vecs[i], secret);
        char err[128] = "";
        int64_t now = vecs[i].version == 3 ? ts_of(&vecs[i]) + 1000 : 0;
        assert_int_equal(hs_sig_verify((hs_sig_version)vecs[i].version, &in, vecs[i].signature, now,
                                       err, sizeof err),
                         DG_OK);
    }
}

static void test_tampered_body_refused(void **state)
{
    (void)state;
    for (int i = 0; i < nvecs; i++) {
        vector v = vecs[i];
        size_t n = strlen(v.body);
        if (n == 0)
            snprintf(v.body, sizeof v.body, "x");
        else
            v.body[n / 2] ^= 1;
        hs_sig_input in = input_of(&v, secret);
        char err[128] = "";
        int64_t now = v.version == 3 ? ts_of(&v) : 0;
        assert_int_equal(
            hs_sig_verify((hs_sig_version)v.version, &in, v.signature, now, err, sizeof err),
            DG_EAUTH);
        assert_non_null(strstr(err, "does not match"));
    }
}

static void test_wrong_secret_refused(void **state)
{
    (void)state;
    for (int i = 0; i < nvecs; i++) {
        hs_sig_input in = input_of(&vecs[i], "zzzzzzzz-yyyy-yyyy-yyyy-yyyyyyyyyyyy");
        char err[128] = "";
        int64_t now = vecs[i].version == 3 ? ts_of(&vecs[i]) : 0;
        assert_int_equal(hs_sig_verify((hs_sig_version)vecs[i].version, &in, vecs[i].signature, now,
                                       err, sizeof err),
                         DG_EAUTH);
        /* the message never carries the secret nor a signature */
        assert_null(strstr(err, "zzzz"));
        assert_null(strstr(err, vecs[i].signature));
    }
}

static const vector *first_of(int version, const char *method)
{
    for (int i = 0; i < nvecs; i++)
        if (vecs[i].version == version && (!method || strcmp(vecs[i].method, method) == 0))
            return &vecs[i];
    fail_msg("no v%d vector", version);
    return NULL;
}

static void test_other_uri_or_method_refused(void **state)
{
    (void)state;
    const vector *v2 = first_of(2, "POST");
    vector v = *v2;
    snprintf(v.uri, sizeof v.uri, "https://www.example.com/other_uri");
    hs_sig_input in = input_of(&v, secret);
    char err[128];
    assert_int_equal(hs_sig_verify(HS_SIG_V2, &in, v.signature, 0, err, sizeof err), DG_EAUTH);
    v = *v2;
    snprintf(v.method, sizeof v.method, "PUT");
    in = input_of(&v, secret);
    assert_int_equal(hs_sig_verify(HS_SIG_V2, &in, v.signature, 0, err, sizeof err), DG_EAUTH);
    /* a v2 signature is not a v1 or v3 signature of the same request */
    v = *v2;
    in = input_of(&v, secret);
    assert_int_equal(hs_sig_verify(HS_SIG_V1, &in, v.signature, 0, err, sizeof err), DG_EAUTH);
}

static void test_v2_hex_case_and_length(void **state)
{
    (void)state;
    vector v = *first_of(2, "POST");
    hs_sig_input in = input_of(&v, secret);
    char err[128], up[160];
    snprintf(up, sizeof up, "%s", v.signature);
    for (char *p = up; *p; p++)
        if (*p >= 'a' && *p <= 'f') *p = (char)(*p - 32);
    assert_int_equal(hs_sig_verify(HS_SIG_V2, &in, up, 0, err, sizeof err), DG_OK);
    /* a prefix, an extension and an empty value are all refused */
    char cut[80];
    snprintf(cut, sizeof cut, "%.63s", v.signature);
    assert_int_equal(hs_sig_verify(HS_SIG_V2, &in, cut, 0, err, sizeof err), DG_EAUTH);
    char longer[160];
    snprintf(longer, sizeof longer, "%s0", v.signature);
    assert_int_equal(hs_sig_verify(HS_SIG_V2, &in, longer, 0, err, sizeof err), DG_EAUTH);
    assert_int_equal(hs_sig_verify(HS_SIG_V2, &in, "", 0, err, sizeof err), DG_EAUTH);
}

static void test_v3_timestamp_window(void **state)
{
    (void)state;
    const vector *v = first_of(3, NULL);
    hs_sig_input in = input_of(v, secret);
    int64_t ts = ts_of(v);
    char err[128];
    assert_int_equal(hs_sig_verify(HS_SIG_V3, &in, v->signature, ts + 299999, err, sizeof err),
                     DG_OK);
    assert_int_equal(hs_sig_verify(HS_SIG_V3, &in, v->signature, ts + 300001, err, sizeof err),
                     DG_EAUTH);
    assert_non_null(strstr(err, "old"));
    assert_int_equal(hs_sig_verify(HS_SIG_V3, &in, v->signature, ts - 300001, err, sizeof err),
                     DG_EAUTH);
    assert_non_null(strstr(err, "future"));
    /* the timestamp is signed: changing it (inside the window) breaks the signature */
    vector w = *v;
    snprintf(w.timestamp, sizeof w.timestamp, "%lld", (long long)(ts + 1));
    in = input_of(&w, secret);
    assert_int_equal(hs_sig_verify(HS_SIG_V3, &in, v->signature, ts, err, sizeof err), DG_EAUTH);
    assert_non_null(strstr(err, "does not match"));
    /* malformed or missing timestamps */
    const char *bad[] = {"", "17e11", "-1700000000000", "1700000000000 ", "99999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(w.timestamp, sizeof w.timestamp, "%s", bad[i]);
        in = input_of(&w, secret);
        assert_int_equal(hs_sig_verify(HS_SIG_V3, &in, v->signature, ts, err, sizeof err),
                         DG_EAUTH);
    }
    in = input_of(v, secret);
    in.timestamp = NULL;
    assert_int_equal(hs_sig_verify(HS_SIG_V3, &in, v->signature, ts, err, sizeof err), DG_EAUTH);
}

static void test_v3_decoded_uri(void **state)
{
    (void)state;
    char dec[128];
    assert_int_equal(hs_sig_decode_uri("https://h/p%3Fa%3Ab%2fc%2A%20%25", dec, sizeof dec), DG_OK);
    assert_string_equal(dec, "https://h/p?a:b/c*%20%25");
    assert_int_equal(hs_sig_decode_uri("https://h/%3A", dec, 8), DG_ETOOBIG);
    /* HubSpot signs the decoded form; the request arrives encoded: accepted */
    hs_sig_input in = {.secret = secret,
                       .method = "POST",
                       .uri = "https://gate.example.com/v1/gate/hubspot?x=a:b",
                       .body = "{}",
                       .body_len = 2,
                       .timestamp = "1700000000000"};
    char sig[64];
    assert_int_equal(hs_sig_compute(HS_SIG_V3, &in, sig, sizeof sig), DG_OK);
    in.uri = "https://gate.example.com/v1/gate/hubspot?x=a%3Ab";
    char err[128];
    assert_int_equal(hs_sig_verify(HS_SIG_V3, &in, sig, 1700000000000, err, sizeof err), DG_OK);
    in.uri = "https://gate.example.com/v1/gate/hubspot?x=a%3Ac";
    assert_int_equal(hs_sig_verify(HS_SIG_V3, &in, sig, 1700000000000, err, sizeof err), DG_EAUTH);
}

static void test_missing_inputs(void **state)
{
    (void)state;
    vector v = *first_of(2, "POST");
    hs_sig_input in = input_of(&v, "");
    char err[128], out[80];
    assert_int_equal(hs_sig_verify(HS_SIG_V2, &in, v.signature, 0, err, sizeof err), DG_EAUTH);
    assert_int_equal(hs_sig_compute(HS_SIG_V2, &in, out, sizeof out), DG_EINVAL);
    in = input_of(&v, secret);
    assert_int_equal(hs_sig_compute(HS_SIG_V2, &in, out, 10), DG_ETOOBIG);
    assert_int_equal(hs_sig_verify(HS_SIG_V2, &in, NULL, 0, err, sizeof err), DG_EAUTH);
    in.method = NULL;
    assert_int_equal(hs_sig_compute(HS_SIG_V2, &in, out, sizeof out), DG_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_parsed),
        cmocka_unit_test(test_every_vector_computes),
        cmocka_unit_test(test_every_vector_verifies),
        cmocka_unit_test(test_tampered_body_refused),
        cmocka_unit_test(test_wrong_secret_refused),
        cmocka_unit_test(test_other_uri_or_method_refused),
        cmocka_unit_test(test_v2_hex_case_and_length),
        cmocka_unit_test(test_v3_timestamp_window),
        cmocka_unit_test(test_v3_decoded_uri),
        cmocka_unit_test(test_missing_inputs),
    };
    return cmocka_run_group_tests(tests, load_vectors, NULL);
}
