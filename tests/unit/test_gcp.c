/* test_gcp.c — the Google Cloud (Cloud CRM Partners API) backend against
 * tests/fakes/fake_gcp.py, through the ops struct; plus the response cap of the shared HTTP
 * helper (a 5 MiB answer is refused, not buffered).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "connectors/backends.h"
#include "connectors/http.h"
#include "fixtures.h"

#define TOKEN "ya29.gcp-test-token-SECRET"

static int group_setup(void **s)
{
    (void)s;
    return fake_start(&g_fake, "fake_gcp.py", NULL);
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
    };
    return cmocka_run_group_tests(tests, group_setup, fake_group_teardown);
}
