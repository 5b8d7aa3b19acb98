/* test_gcp.c — the Google Cloud (Cloud CRM Partners API) backend against
 * tests/fakes/fake_gcp.py, through the ops struct; plus the response cap of the shared HTTP
 * helper (a 5 MiB answer is refused, not buffered). The service-account flow runs against
 * the fake's token endpoint, which verifies each JWT's RS256 signature with the openssl CLI:
 * the key pairs are made at test time in a temp dir (fake_gcp.py --make-sa).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "connectors/backends.h"
#include "connectors/http.h"
#include "fixtures.h"

#define TOKEN "ya29.gcp-test-token-SECRET"

static char g_dir[64];     /* temp dir of the key files */
static char g_sa[128];     /* the service account the fake knows */
static char g_tok_url[96]; /* the fake's token endpoint */

/* Runs fake_gcp.py --make-sa g_dir with extra (kind, name). Returns 0 or -1. */
static int make_sa(const char *extra)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 -B %s/tests/fakes/fake_gcp.py --make-sa %s %s",
             fake_source_dir(), g_dir, extra);
    return system(cmd) == 0 ? 0 : -1;
}

static int group_setup(void **s)
{
    (void)s;
    char pub[128];
    snprintf(g_dir, sizeof g_dir, "/tmp/dg_test_gcp_XXXXXX");
    if (mkdtemp(g_dir) == NULL || make_sa("") != 0 || make_sa("--name other") != 0 ||
        make_sa("--kind ec --name ec") != 0)
        return -1;
    snprintf(g_sa, sizeof g_sa, "%s/sa.json", g_dir);
    snprintf(pub, sizeof pub, "%s/sa.pub.pem", g_dir);
    const char *const args[] = {"--sa-pub", pub, NULL};
    if (fake_start(&g_fake, "fake_gcp.py", args) != 0) return -1;
    snprintf(g_tok_url, sizeof g_tok_url, "%s/token", g_fake.base);
    return 0;
}

static int group_teardown(void **s)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (g_dir[0] && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", g_dir);
    return fake_group_teardown(s);
}

static void *open_gcp(const char *endpoint, const char *partner, const char *token)
{
    cfg_cloud cc = {.key = "gcp",
                    .name = "Google Cloud Partner Advantage",
                    .connector = CFG_CONN_GCP,
                    .endpoint = (char *)endpoint,
                    .partner_id = (char *)partner,
                    .access_token = (char *)token,
                    .timeout_ms = 2000};
    void *st = NULL;
    char err[256] = "";
    if (conn_gcp_backend.open(&cc, NULL, &st, err, sizeof err) != DG_OK) fail_msg("open: %s", err);
    return st;
}

/* Opens a service-account backend on key file path; NULL with the message in err when
 * open fails. */
static void *open_sa_err(const char *path, char *err, size_t errlen, dg_err *rc)
{
    cfg_cloud cc = {.key = "gcp",
                    .connector = CFG_CONN_GCP,
                    .endpoint = g_fake.base,
                    .partner_id = "1234567",
                    .credentials = (char *)path,
                    .token_url = g_tok_url,
                    .timeout_ms = 3000};
    void *st = NULL;
    err[0] = '\0';
    *rc = conn_gcp_backend.open(&cc, NULL, &st, err, errlen);
    return st;
}

static void *open_sa(const char *path)
{
    char err[256];
    dg_err rc;
    void *st = open_sa_err(path, err, sizeof err, &rc);
    if (rc != DG_OK) fail_msg("open: %s", err);
    return st;
}

static void lookup_found(void *st, const char *id)
{
    dg_reg_fact f = {0};
    dg_err rc = conn_gcp_backend.by_id(st, id, 5000, &f);
    if (rc != DG_OK) fail_msg("look-up %s: %s", id, f.error ? f.error : "?");
    assert_int_equal(f.lookup, DG_LOOKUP_FOUND);
    dg_reg_fact_free(&f);
}

static void test_sa_token_reused(void **s)
{
    (void)s;
    void *st = open_sa(g_sa);
    assert_int_equal(fake_count(&g_fake, "token"), 0); /* lazily: nothing at open */
    lookup_found(st, "1001");
    lookup_found(st, "1002");
    lookup_found(st, "1004");
    assert_int_equal(fake_count(&g_fake, "token"), 1);
    assert_int_equal(fake_count(&g_fake, "token_rejected"), 0);
    assert_int_equal(fake_count(&g_fake, "get"), 3);
    assert_int_equal(fake_count(&g_fake, "unauthenticated"), 0);
    /* the assertion carried the key file's private_key_id as kid */
    char *last = fake_ctl(&g_fake, "GET", "/__last", NULL);
    assert_non_null(last);
    assert_non_null(strstr(last, "\"kid\""));
    assert_non_null(strstr(last, "cloud-platform"));
    free(last);
    char h[256];
    conn_gcp_backend.health(st, h, sizeof h);
    assert_non_null(strstr(h, "token valid"));
    assert_null(strstr(h, "ya29"));
    conn_gcp_backend.close(st);
}

static void test_sa_single_flight(void **s)
{
    (void)s;
    void *st = open_sa(g_sa);
    fake_behave(&g_fake, "{\"key\":\"token\",\"delay_ms\":300}");
    pthread_t t[4];
    caller c[4];
    for (int i = 0; i < 4; i++) {
        c[i] = (caller){.be = &conn_gcp_backend, .st = st};
        snprintf(c[i].id, sizeof c[i].id, "100%d", 1 + i % 4);
        assert_int_equal(pthread_create(&t[i], NULL, caller_run, &c[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(c[i].rc, DG_OK);
        assert_int_equal(c[i].lookup, DG_LOOKUP_FOUND);
    }
    assert_int_equal(fake_count(&g_fake, "token"), 1);
    conn_gcp_backend.close(st);
}

static void test_sa_token_expiry(void **s)
{
    (void)s;
    void *st = open_sa(g_sa);
    /* 60 s: within the 60 s margin, so each token is used once */
    assert_int_equal(fake_post(&g_fake, "/__expires", "{\"expires_in\":60}"), 0);
    lookup_found(st, "1001");
    lookup_found(st, "1001");
    assert_int_equal(fake_count(&g_fake, "token"), 2);
    assert_int_equal(fake_post(&g_fake, "/__expires", "{\"expires_in\":3600}"), 0);
    lookup_found(st, "1001");
    lookup_found(st, "1001");
    assert_int_equal(fake_count(&g_fake, "token"), 3);
    conn_gcp_backend.close(st);
}

static void test_sa_refresh_on_401(void **s)
{
    (void)s;
    void *st = open_sa(g_sa);
    lookup_found(st, "1001");
    /* the API refuses the (valid) token once: a fresh one, and one more try */
    fake_behave(&g_fake, "{\"key\":\"1002\",\"status\":401,\"times\":1}");
    lookup_found(st, "1002");
    assert_int_equal(fake_count(&g_fake, "token"), 2);
    assert_int_equal(fake_count(&g_fake, "get:1002"), 2);
    /* refused twice: final, not retryable, no third token */
    fake_behave(&g_fake, "{\"key\":\"1003\",\"status\":401,\"times\":2}");
    dg_reg_fact f = {0};
    assert_int_equal(conn_gcp_backend.by_id(st, "1003", 5000, &f), DG_EAUTH);
    assert_int_equal(f.lookup, DG_LOOKUP_FAILED);
    assert_int_equal(f.retryable, 0);
    dg_reg_fact_free(&f);
    assert_int_equal(fake_count(&g_fake, "token"), 3);
    assert_int_equal(fake_count(&g_fake, "get:1003"), 2);
    conn_gcp_backend.close(st);
}

static void test_sa_token_refused(void **s)
{
    (void)s;
    /* another key than the fake's: the signature check fails for real */
    char other[128];
    snprintf(other, sizeof other, "%s/other.json", g_dir);
    void *st = open_sa(other);
    dg_reg_fact f = {0};
    assert_int_equal(conn_gcp_backend.by_id(st, "1001", 5000, &f), DG_EAUTH);
    assert_int_equal(f.lookup, DG_LOOKUP_FAILED);
    assert_int_equal(f.retryable, 0);
    assert_non_null(strstr(f.error, "Google Cloud: token refused: invalid_grant"));
    assert_non_null(strstr(f.error, "Invalid JWT Signature"));
    assert_null(strstr(f.error, "ey")); /* no part of the assertion */
    dg_reg_fact_free(&f);
    assert_int_equal(fake_count(&g_fake, "token_rejected"), 1);
    assert_int_equal(fake_count(&g_fake, "get"), 0);
    char h[256];
    conn_gcp_backend.health(st, h, sizeof h);
    assert_non_null(strstr(h, "token refused"));
    assert_non_null(strstr(h, "no valid token"));
    conn_gcp_backend.close(st);

    /* a 400 from the endpoint: not retryable; a 503: retryable */
    st = open_sa(g_sa);
    fake_behave(&g_fake, "{\"key\":\"token\",\"status\":400,\"error_type\":\"invalid_grant\","
                         "\"message\":\"Invalid grant: account not found\",\"times\":1}");
    assert_int_equal(conn_gcp_backend.by_id(st, "1001", 5000, &f), DG_EAUTH);
    assert_int_equal(f.retryable, 0);
    assert_string_equal(f.error, "Google Cloud: token refused: invalid_grant: Invalid grant: "
                                 "account not found (HTTP 400)");
    dg_reg_fact_free(&f);
    fake_behave(&g_fake, "{\"key\":\"token\",\"status\":503,\"error_type\":\"unavailable\","
                         "\"times\":1}");
    assert_int_equal(conn_gcp_backend.by_id(st, "1001", 5000, &f), DG_EUPSTREAM);
    assert_int_equal(f.retryable, 1);
    dg_reg_fact_free(&f);
    /* a token endpoint slower than the look-up's time: out of time, retryable */
    fake_behave(&g_fake, "{\"key\":\"token\",\"delay_ms\":3000,\"times\":1}");
    int64_t t0 = conn_now_ms();
    assert_int_equal(conn_gcp_backend.by_id(st, "1001", 300, &f), DG_ETIMEOUT);
    assert_true(conn_now_ms() - t0 < 2500);
    assert_int_equal(f.retryable, 1);
    dg_reg_fact_free(&f);
    lookup_found(st, "1001"); /* and then it works */
    conn_gcp_backend.close(st);
}

/* Writes g_dir/name: sa.json with member `field` set to the JSON value `json` (NULL:
 * removed), or the text `json` itself when field is NULL; mode 0600. Returns the path. */
static const char *key_variant(const char *name, const char *field, const char *json)
{
    static char path[160];
    char *text = NULL;
    if (field != NULL) {
        FILE *in = fopen(g_sa, "r");
        assert_non_null(in);
        char buf[8192];
        size_t n = fread(buf, 1, sizeof buf - 1, in);
        fclose(in);
        buf[n] = '\0';
        cJSON *j = cJSON_Parse(buf);
        assert_non_null(j);
        cJSON_DeleteItemFromObjectCaseSensitive(j, field);
        if (json) cJSON_AddItemToObject(j, field, cJSON_Parse(json));
        text = cJSON_Print(j);
        cJSON_Delete(j);
    }
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    fputs(text ? text : json, out);
    fclose(out);
    free(text);
    assert_int_equal(chmod(path, 0600), 0);
    return path;
}

/* Opening on path fails, naming the file and `want`, showing no key material. */
static void open_fails(const char *path, const char *want)
{
    char err[512];
    dg_err rc;
    void *st = open_sa_err(path, err, sizeof err, &rc);
    assert_null(st);
    assert_int_equal(rc, DG_EINVAL);
    if (strstr(err, path) == NULL || strstr(err, want) == NULL)
        fail_msg("open %s: got \"%s\", want the path and \"%s\"", path, err, want);
    assert_null(strstr(err, "PRIVATE KEY"));
    assert_null(strstr(err, "MII"));
}

static void test_sa_bad_key_files(void **s)
{
    (void)s;
    open_fails(key_variant("notjson.json", NULL, "{\"type\": \"service_account\","),
               "not a JSON object");
    open_fails(key_variant("noemail.json", "client_email", NULL), "client_email is missing");
    open_fails(key_variant("nokey.json", "private_key", NULL), "private_key is missing");
    open_fails(key_variant("nouri.json", "token_uri", NULL), "token_uri is missing");
    open_fails(key_variant("numkey.json", "private_key", "42"),
               "private_key is not a valid string");
    open_fails(key_variant("user.json", "type", "\"authorized_user\""),
               "type is not \"service_account\"");
    open_fails(key_variant("garbage.json", "private_key",
                           "\"-----BEGIN PRIVATE KEY-----\\nMIIBOgIBAAJBAKj34GkxFhD9\\n"
                           "-----END PRIVATE KEY-----\\n\""),
               "private_key is not a PEM private key");
    char ec[128];
    snprintf(ec, sizeof ec, "%s/ec.json", g_dir);
    open_fails(ec, "private_key is not an RSA key");
    const char *gw = key_variant("gw.json", "client_id", "\"1\"");
    assert_int_equal(chmod(gw, 0620), 0);
    open_fails(gw, "group- or world-writable");
    char missing[128];
    snprintf(missing, sizeof missing, "%s/missing.json", g_dir);
    open_fails(missing, "cannot open credentials file");
    /* the optional private_key_id may be absent: a JWT without kid */
    void *st = open_sa(key_variant("nokid.json", "private_key_id", NULL));
    lookup_found(st, "1001");
    conn_gcp_backend.close(st);
    /* and a world-readable key file still opens (the config load warned) */
    const char *wr = key_variant("wr.json", "client_id", "\"1\"");
    assert_int_equal(chmod(wr, 0644), 0);
    conn_gcp_backend.close(open_sa(wr));
}

static void test_valid_id(void **s)
{
    (void)s;
    const conn_backend *b = &conn_gcp_backend;
    assert_true(b->valid_id("1001"));
    assert_true(b->valid_id("opp_ABC-123"));
    assert_false(b->valid_id("-1001"));
    assert_false(b->valid_id("10/01"));
    assert_false(b->valid_id("10 01"));
    assert_false(b->valid_id("..%2F"));
    assert_false(b->valid_id(""));
    assert_false(b->valid_id(NULL));
    char long_id[70];
    memset(long_id, '7', 65);
    long_id[65] = '\0';
    assert_false(b->valid_id(long_id));
    long_id[64] = '\0';
    assert_true(b->valid_id(long_id));
}

static void test_open_checks(void **s)
{
    (void)s;
    cfg_cloud cc = {.key = "gcp",
                    .connector = CFG_CONN_GCP,
                    .endpoint = "http://cloudcrmpartners.googleapis.com",
                    .partner_id = "1234567",
                    .access_token = TOKEN};
    void *st = NULL;
    char err[256];
    assert_int_equal(conn_gcp_backend.open(&cc, NULL, &st, err, sizeof err), DG_EINVAL);
    cc.endpoint = "https://cloudcrmpartners.googleapis.com";
    cc.access_token = NULL;
    assert_int_equal(conn_gcp_backend.open(&cc, NULL, &st, err, sizeof err), DG_EINVAL);
    cc.access_token = "two words";
    assert_int_equal(conn_gcp_backend.open(&cc, NULL, &st, err, sizeof err), DG_EINVAL);
    cc.access_token = TOKEN;
    cc.credentials = "/nonexistent/sa.json"; /* both: refused before the file is read */
    assert_int_equal(conn_gcp_backend.open(&cc, NULL, &st, err, sizeof err), DG_EINVAL);
    assert_non_null(strstr(err, "exactly one of access_token and credentials"));
    cc.credentials = NULL;
    cc.partner_id = NULL;
    assert_int_equal(conn_gcp_backend.open(&cc, NULL, &st, err, sizeof err), DG_EINVAL);
    assert_null(st);
}

static void test_states(void **s)
{
    (void)s;
    void *st = open_gcp(g_fake.base, "1234567", TOKEN);
    dg_reg_fact f = {0};
    assert_int_equal(conn_gcp_backend.by_id(st, "1001", 2000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_FOUND);
    assert_string_equal(f.status, "QUALIFIED");
    assert_string_equal(f.crm_id, "006G0000001");
    assert_string_equal(f.created_at, "2025-03-04T00:00:00Z"); /* createDate, midnight UTC */
    assert_null(f.origin);
    dg_reg_fact_free(&f);

    assert_int_equal(conn_gcp_backend.by_id(st, "1002", 2000, &f), DG_OK);
    assert_string_equal(f.status, "UNQUALIFIED");
    assert_string_equal(f.crm_id, "006G0000002"); /* another deal's */
    dg_reg_fact_free(&f);

    /* qualificationState unspecified: salesStage */
    assert_int_equal(conn_gcp_backend.by_id(st, "1003", 2000, &f), DG_OK);
    assert_string_equal(f.status, "PROSPECT");
    assert_null(f.crm_id);
    dg_reg_fact_free(&f);

    assert_int_equal(conn_gcp_backend.by_id(st, "1004", 2000, &f), DG_OK);
    assert_string_equal(f.created_at, "2025-06-07T12:34:56Z"); /* createTime when present */
    dg_reg_fact_free(&f);

    assert_int_equal(conn_gcp_backend.by_id(st, "9999", 2000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_NOT_FOUND);
    assert_null(f.error);
    dg_reg_fact_free(&f);
    char h[256];
    conn_gcp_backend.health(st, h, sizeof h);
    assert_non_null(strstr(h, "ok"));
    conn_gcp_backend.close(st);
}

static void test_by_crm_id_needs_the_id(void **s)
{
    (void)s;
    void *st = open_gcp(g_fake.base, "1234567", TOKEN);
    dg_reg_fact f = {0};
    assert_int_equal(conn_gcp_backend.by_crm_id(st, "006G0000001", 2000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_NOT_FOUND);
    assert_non_null(strstr(f.error, "need the opportunity id"));
    dg_reg_fact_free(&f);
    assert_int_equal(fake_count(&g_fake, "total"), 0);
    conn_gcp_backend.close(st);
}

static void test_invalid_id_never_sent(void **s)
{
    (void)s;
    void *st = open_gcp(g_fake.base, "1234567", TOKEN);
    dg_reg_fact f = {0};
    assert_int_equal(conn_gcp_backend.by_id(st, "../1001", 2000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_NOT_FOUND);
    assert_non_null(strstr(f.error, "invalid"));
    dg_reg_fact_free(&f);
    assert_int_equal(fake_count(&g_fake, "total"), 0);
    conn_gcp_backend.close(st);
}

static void test_auth_failures(void **s)
{
    (void)s;
    void *st = open_gcp(g_fake.base, "1234567", "ya29.wrong-SECRET");
    dg_reg_fact f = {0};
    assert_int_equal(conn_gcp_backend.by_id(st, "1001", 2000, &f), DG_EAUTH);
    assert_int_equal(f.lookup, DG_LOOKUP_FAILED);
    assert_int_equal(f.retryable, 0);
    assert_non_null(strstr(f.error, "UNAUTHENTICATED"));
    assert_null(strstr(f.error, "SECRET"));
    dg_reg_fact_free(&f);
    char h[256];
    conn_gcp_backend.health(st, h, sizeof h);
    assert_null(strstr(h, "SECRET"));
    conn_gcp_backend.close(st);

    /* another partner's id: PERMISSION_DENIED; the partner id is percent-encoded */
    st = open_gcp(g_fake.base, "76 54/321", TOKEN);
    assert_int_equal(conn_gcp_backend.by_id(st, "1001", 2000, &f), DG_EAUTH);
    assert_non_null(strstr(f.error, "PERMISSION_DENIED"));
    dg_reg_fact_free(&f);
    conn_gcp_backend.close(st);
}

static void test_upstream_failures(void **s)
{
    (void)s;
    void *st = open_gcp(g_fake.base, "1234567", TOKEN);
    dg_reg_fact f = {0};

    fake_behave(&g_fake, "{\"key\":\"1001\",\"delay_ms\":6000}");
    int64_t t0 = conn_now_ms();
    assert_int_equal(conn_gcp_backend.by_id(st, "1001", 300, &f), DG_ETIMEOUT);
    /* the call ends at its own timeout, long before the 6 s upstream (room for a busy CI) */
    assert_true(conn_now_ms() - t0 < 4000);
    assert_int_equal(f.retryable, 1);
    dg_reg_fact_free(&f);

    fake_behave(&g_fake, "{\"key\":\"1002\",\"status\":503}");
    /* (a generous timeout: the answer is a 503, however slowly a busy machine serves it) */
    assert_int_equal(conn_gcp_backend.by_id(st, "1002", 8000, &f), DG_EUPSTREAM);
    assert_int_equal(f.lookup, DG_LOOKUP_FAILED);
    assert_int_equal(f.retryable, 1);
    assert_non_null(strstr(f.error, "UNAVAILABLE"));
    dg_reg_fact_free(&f);

    fake_behave(
        &g_fake,
        "{\"key\":\"1003\",\"status\":429,\"error_type\":\"RESOURCE_EXHAUSTED\",\"times\":1}");
    assert_int_equal(conn_gcp_backend.by_id(st, "1003", 2000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_FOUND);
    dg_reg_fact_free(&f);
    assert_int_equal(fake_count(&g_fake, "get:1003"), 2);

    fake_behave(&g_fake, "{\"key\":\"1004\",\"malformed\":true}");
    assert_int_equal(conn_gcp_backend.by_id(st, "1004", 2000, &f), DG_EPARSE);
    assert_non_null(strstr(f.error, "malformed JSON"));
    dg_reg_fact_free(&f);

    dg_reg_fact g = {0};
    assert_int_equal(fake_reset(NULL), 0); /* drop the delay behaviour of 1001 set above */
    fake_behave(&g_fake, "{\"key\":\"1001\",\"huge\":true}");
    assert_int_equal(conn_gcp_backend.by_id(st, "1001", 3000, &g), DG_ETOOBIG);
    assert_int_equal(g.lookup, DG_LOOKUP_FAILED);
    assert_int_equal(g.retryable, 0);
    assert_non_null(strstr(g.error, "larger than"));
    dg_reg_fact_free(&g);
    conn_gcp_backend.close(st);
}

static void test_connection_refused(void **s)
{
    (void)s;
    void *st = open_gcp("http://127.0.0.1:1", "1234567", TOKEN);
    dg_reg_fact f = {0};
    assert_int_equal(conn_gcp_backend.by_id(st, "1001", 1000, &f), DG_EUNAVAILABLE);
    assert_int_equal(f.lookup, DG_LOOKUP_FAILED);
    assert_int_equal(f.retryable, 1);
    dg_reg_fact_free(&f);
    char h[256];
    conn_gcp_backend.health(st, h, sizeof h);
    assert_non_null(strstr(h, "error"));
    conn_gcp_backend.close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_id),
        cmocka_unit_test(test_open_checks),
        cmocka_unit_test_setup(test_states, fake_reset),
        cmocka_unit_test_setup(test_by_crm_id_needs_the_id, fake_reset),
        cmocka_unit_test_setup(test_invalid_id_never_sent, fake_reset),
        cmocka_unit_test_setup(test_auth_failures, fake_reset),
        cmocka_unit_test_setup(test_upstream_failures, fake_reset),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test_setup(test_sa_token_reused, fake_reset),
        cmocka_unit_test_setup(test_sa_single_flight, fake_reset),
        cmocka_unit_test_setup(test_sa_token_expiry, fake_reset),
        cmocka_unit_test_setup(test_sa_refresh_on_401, fake_reset),
        cmocka_unit_test_setup(test_sa_token_refused, fake_reset),
        cmocka_unit_test(test_sa_bad_key_files),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
