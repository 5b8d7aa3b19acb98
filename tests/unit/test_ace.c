/* test_ace.c — the AWS ACE backend against tests/fakes/fake_ace.py, through the ops struct.
 *
 * The fake checks the SigV4 signature of every request (403 InvalidSignatureException on a
 * bad one) and serves the public GetOpportunity sample with per-record overrides (see the
 * fake's BUILTIN list). One fake serves most tests (its counters and behaviours are reset
 * before each); tests that need other fake options start their own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <time.h>

#include "connectors/backends.h"
#include "connectors/http.h"
#include "fixtures.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

static int group_setup(void **s)
{
    (void)s;
    return fake_start(&g_fake, "fake_ace.py", NULL);
}

static void *open_ace(const char *endpoint, const char *secret, const char *token, int timeout)
{
    cfg_cloud cc = {.key = "aws",
                    .name = "AWS ACE",
                    .connector = CFG_CONN_ACE,
                    .endpoint = (char *)endpoint,
                    .region = "us-east-1",
                    .catalog = "AWS",
                    .access_key_id = "AKIDEXAMPLE",
                    .secret_access_key = (char *)secret,
                    .session_token = (char *)token,
                    .timeout_ms = timeout,
                    .cache_ttl_s = 300,
                    .negative_cache_ttl_s = 30};
    void *st = NULL;
    char err[256] = "";
    dg_err rc = conn_ace_backend.open(&cc, NULL, &st, err, sizeof err);
    if (rc != DG_OK) fail_msg("open: %s", err);
    return st;
}

static int64_t ms_since(int64_t t0)
{
    return conn_now_ms() - t0;
}

static void test_valid_id(void **s)
{
    (void)s;
    const conn_backend *b = &conn_ace_backend;
    assert_true(b->valid_id("O1"));
    assert_true(b->valid_id("O1234567"));
    assert_true(b->valid_id("O1234567890123456789"));
    assert_false(b->valid_id("O12345678901234567890"));
    assert_false(b->valid_id("O"));
    assert_false(b->valid_id("o1234567"));
    assert_false(b->valid_id("1234567"));
    assert_false(b->valid_id("O123 4567"));
    assert_false(b->valid_id("O123/../x"));
    assert_false(b->valid_id(""));
    assert_false(b->valid_id(NULL));
}

static void test_open_refuses_plain_http_to_remote(void **s)
{
    (void)s;
    cfg_cloud cc = {.key = "aws",
                    .connector = CFG_CONN_ACE,
                    .endpoint = "http://partnercentral-selling.us-east-1.api.aws",
                    .access_key_id = "AKIDEXAMPLE",
                    .secret_access_key = SECRET};
    void *st = NULL;
    char err[256];
    assert_int_equal(conn_ace_backend.open(&cc, NULL, &st, err, sizeof err), DG_EINVAL);
    assert_null(st);
    assert_non_null(strstr(err, "loopback"));
    cc.endpoint = "ftp://127.0.0.1/";
    assert_int_equal(conn_ace_backend.open(&cc, NULL, &st, err, sizeof err), DG_EINVAL);
    cc.endpoint = "https://x.example/";
    cc.region = "us east 1";
    assert_int_equal(conn_ace_backend.open(&cc, NULL, &st, err, sizeof err), DG_EINVAL);
}

static void test_approved_with_link(void **s)
{
    (void)s;
    void *st = open_ace(g_fake.base, SECRET, NULL, 2000);
    dg_reg_fact f = {0};
    assert_int_equal(conn_ace_backend.by_id(st, "O2000001", 2000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_FOUND);
    assert_string_equal(f.status, "Approved");
    assert_string_equal(f.crm_id, "006A0000001");
    assert_string_equal(f.created_at, "2025-01-10T08:00:00Z");
    assert_string_equal(f.origin, "partner");
    assert_null(f.error);
    dg_reg_fact_free(&f);
    assert_int_equal(fake_count(&g_fake, "bad_signature"), 0);
    assert_int_equal(fake_count(&g_fake, "GetOpportunity:O2000001"), 1);
    conn_ace_backend.close(st);
}

static void test_public_sample(void **s)
{
    (void)s;
    void *st = open_ace(g_fake.base, SECRET, NULL, 2000);
    dg_reg_fact f = {0};
    assert_int_equal(conn_ace_backend.by_id(st, "O1111111", 2000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_FOUND);
    assert_string_equal(f.status, "Approved");
    assert_null(f.crm_id); /* PartnerOpportunityIdentifier: null */
    assert_string_equal(f.created_at, "2024-11-14T19:32:03Z");
    assert_null(f.origin);
    dg_reg_fact_free(&f);
    conn_ace_backend.close(st);
}

static void test_states(void **s)
{
    (void)s;
    void *st = open_ace(g_fake.base, SECRET, NULL, 2000);
    const char *ids[] = {"O2000002", "O2000003", "O2000004"};
    const char *want[] = {"Rejected", "Pending Submission", "In review"};
    const char *crm[] = {"006B0000002", "006C0000003", "006D0000004"};
    for (int i = 0; i < 3; i++) {
        dg_reg_fact f = {0};
        assert_int_equal(conn_ace_backend.by_id(st, ids[i], 2000, &f), DG_OK);
        assert_int_equal(f.lookup, DG_LOOKUP_FOUND);
        assert_string_equal(f.status, want[i]);
        /* another deal's registration: the record names its own deal */
        assert_string_equal(f.crm_id, crm[i]);
        if (i == 2) assert_string_equal(f.origin, "cloud"); /* Origin: AWS Referral */
        dg_reg_fact_free(&f);
    }
    conn_ace_backend.close(st);
}

static void test_not_found(void **s)
{
    (void)s;
    void *st = open_ace(g_fake.base, SECRET, NULL, 2000);
    dg_reg_fact f = {0};
    assert_int_equal(conn_ace_backend.by_id(st, "O9999999", 2000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_NOT_FOUND);
    assert_null(f.status);
    assert_null(f.error);
    dg_reg_fact_free(&f);
    /* classified by type, not status: a 400 carrying ResourceNotFoundException */
    fake_behave(
        &g_fake,
        "{\"key\":\"O2000001\",\"status\":400,\"error_type\":\"ResourceNotFoundException\"}");
    assert_int_equal(conn_ace_backend.by_id(st, "O2000001", 2000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_NOT_FOUND);
    dg_reg_fact_free(&f);
    conn_ace_backend.close(st);
}

static void test_invalid_id_never_sent(void **s)
{
    (void)s;
    void *st = open_ace(g_fake.base, SECRET, NULL, 2000);
    const char *bad[] = {"O12;DROP", "1234567", "O\"},{\"x", "O123456789012345678901"};
    for (int i = 0; i < 4; i++) {
        dg_reg_fact f = {0};
        assert_int_equal(conn_ace_backend.by_id(st, bad[i], 2000, &f), DG_OK);
        assert_int_equal(f.lookup, DG_LOOKUP_NOT_FOUND);
        assert_non_null(f.error);
        assert_non_null(strstr(f.error, "invalid"));
        dg_reg_fact_free(&f);
    }
    assert_int_equal(fake_count(&g_fake, "GetOpportunity"), 0);
    conn_ace_backend.close(st);
}

static void test_by_crm_id(void **s)
{
    (void)s;
    void *st = open_ace(g_fake.base, SECRET, NULL, 3000);
    dg_reg_fact f = {0};
    assert_int_equal(conn_ace_backend.by_crm_id(st, "006A0000001", 3000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_FOUND);
    assert_string_equal(f.id, "O2000001");
    assert_string_equal(f.status, "Approved");
    assert_string_equal(f.crm_id, "006A0000001");
    dg_reg_fact_free(&f);
    /* registered twice (Rejected, then Approved): the approved one counts */
    assert_int_equal(conn_ace_backend.by_crm_id(st, "006E0000005", 3000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_FOUND);
    assert_string_equal(f.id, "O2000006");
    assert_string_equal(f.status, "Approved");
    dg_reg_fact_free(&f);
    /* the list was paged in the background, never by the request */
    assert_true(fake_count(&g_fake, "ListOpportunities") >= 1);
    char h[512];
    conn_ace_backend.health(st, h, sizeof h);
    assert_non_null(strstr(h, "ok"));
    assert_non_null(strstr(h, "index 7 records"));
    conn_ace_backend.close(st);
}

/* A miss asks for an early refresh, so a deal registered a minute ago is found; a second
 * miss within the rate limit does not page the list again. */
static void test_miss_refreshes_early(void **s)
{
    (void)s;
    void *st = open_ace(g_fake.base, SECRET, NULL, 3000);
    dg_reg_fact f = {0};
    assert_int_equal(conn_ace_backend.by_crm_id(st, "006A0000001", 3000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_FOUND);
    dg_reg_fact_free(&f);
    long lists = fake_count(&g_fake, "ListOpportunities");

    assert_int_equal(
        fake_post(&g_fake, "/__data",
                  "{\"add\":[{\"Id\":\"O2000100\",\"PartnerOpportunityIdentifier\":\"006NEW0001\","
                  "\"LifeCycle\":{\"ReviewStatus\":\"Submitted\"}}]}"),
        0);
    assert_int_equal(conn_ace_backend.by_crm_id(st, "006NEW0001", 3000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_FOUND);
    assert_string_equal(f.id, "O2000100");
    assert_string_equal(f.status, "Submitted");
    dg_reg_fact_free(&f);
    long lists2 = fake_count(&g_fake, "ListOpportunities");
    assert_true(lists2 > lists);

    int64_t t0 = conn_now_ms();
    assert_int_equal(conn_ace_backend.by_crm_id(st, "006NOPE", 3000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_NOT_FOUND);
    assert_null(f.id);
    dg_reg_fact_free(&f);
    assert_true(ms_since(t0) < 1500); /* rate-limited: no wait for the 3 s budget, no list call */
    assert_int_equal(fake_count(&g_fake, "ListOpportunities"), lists2);
    conn_ace_backend.close(st);
}

static void test_paging(void **s)
{
    (void)s;
    fake_server fk;
    const char *args[] = {"--page-size", "2", "--generate", "9", NULL};
    assert_int_equal(fake_start(&fk, "fake_ace.py", args), 0);
    void *st = open_ace(fk.base, SECRET, NULL, 3000);
    dg_reg_fact f = {0};
    assert_int_equal(conn_ace_backend.by_crm_id(st, "BENCH-8", 3000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_FOUND);
    assert_string_equal(f.id, "O3000008");
    dg_reg_fact_free(&f);
    assert_int_equal(conn_ace_backend.by_crm_id(st, "006D0000004", 3000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_FOUND);
    assert_string_equal(f.id, "O2000004");
    dg_reg_fact_free(&f);
    assert_true(fake_count(&fk, "ListOpportunities") >= 8); /* 16 records, 2 a page */
    conn_ace_backend.close(st);
    fake_stop(&fk);
}

static void test_slow_upstream_times_out(void **s)
{
    (void)s;
    void *st = open_ace(g_fake.base, SECRET, NULL, 2000);
    fake_behave(&g_fake, "{\"key\":\"O2000001\",\"delay_ms\":6000}");
    dg_reg_fact f = {0};
    int64_t t0 = conn_now_ms();
    assert_int_equal(conn_ace_backend.by_id(st, "O2000001", 300, &f), DG_ETIMEOUT);
    int64_t took = ms_since(t0);
    /* ends at its own timeout, long before the 6 s upstream (room for a busy CI) */
    assert_true(took >= 250 && took < 4000);
    assert_int_equal(f.lookup, DG_LOOKUP_FAILED);
    assert_int_equal(f.retryable, 1);
    /* the message says it timed out; the figure is the time left when the call began, which a
     * busy machine makes a little less than the 300 ms budget */
    assert_true(strstr(f.error, "no answer within") != NULL || strstr(f.error, "out of time") != NULL);
    assert_non_null(strstr(f.error, "GetOpportunity"));
    dg_reg_fact_free(&f);
    conn_ace_backend.close(st);
}

static void test_server_error(void **s)
{
    (void)s;
    void *st = open_ace(g_fake.base, SECRET, NULL, 2000);
    dg_reg_fact f = {0};
    /* once: retried within the time, then found */
    fake_behave(&g_fake,
                "{\"key\":\"O2000001\",\"status\":500,\"error_type\":\"InternalServerException\","
                "\"times\":1}");
    assert_int_equal(conn_ace_backend.by_id(st, "O2000001", 2000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_FOUND);
    dg_reg_fact_free(&f);
    assert_int_equal(fake_count(&g_fake, "GetOpportunity:O2000001"), 2);
    /* always: FAILED, retryable */
    fake_behave(&g_fake, "{\"key\":\"O2000002\",\"status\":503}");
    assert_int_equal(conn_ace_backend.by_id(st, "O2000002", 2000, &f), DG_EUPSTREAM);
    assert_int_equal(f.lookup, DG_LOOKUP_FAILED);
    assert_int_equal(f.retryable, 1);
    assert_non_null(strstr(f.error, "HTTP 503"));
    dg_reg_fact_free(&f);
    char h[512];
    conn_ace_backend.health(st, h, sizeof h);
    assert_non_null(strstr(h, "error"));
    conn_ace_backend.close(st);
}

static void test_connection_refused(void **s)
{
    (void)s;
    void *st = open_ace("http://127.0.0.1:1", SECRET, NULL, 1000);
    dg_reg_fact f = {0};
    assert_int_equal(conn_ace_backend.by_id(st, "O2000001", 1000, &f), DG_EUNAVAILABLE);
    assert_int_equal(f.lookup, DG_LOOKUP_FAILED);
    assert_int_equal(f.retryable, 1);
    assert_non_null(strstr(f.error, "cannot connect"));
    dg_reg_fact_free(&f);
    /* no index either: by CRM id fails (retryable) within its timeout instead of NOT_FOUND */
    int64_t t0 = conn_now_ms();
    assert_int_equal(conn_ace_backend.by_crm_id(st, "006A0000001", 300, &f), DG_EUNAVAILABLE);
    assert_true(ms_since(t0) < 1000);
    assert_int_equal(f.lookup, DG_LOOKUP_FAILED);
    assert_int_equal(f.retryable, 1);
    assert_non_null(strstr(f.error, "index"));
    dg_reg_fact_free(&f);
    char h[512];
    conn_ace_backend.health(st, h, sizeof h);
    assert_non_null(strstr(h, "not built"));
    conn_ace_backend.close(st);
}

static void test_malformed_json(void **s)
{
    (void)s;
    void *st = open_ace(g_fake.base, SECRET, NULL, 2000);
    fake_behave(&g_fake, "{\"key\":\"O2000001\",\"malformed\":true}");
    dg_reg_fact f = {0};
    assert_int_equal(conn_ace_backend.by_id(st, "O2000001", 2000, &f), DG_EPARSE);
    assert_int_equal(f.lookup, DG_LOOKUP_FAILED);
    assert_non_null(strstr(f.error, "malformed JSON"));
    dg_reg_fact_free(&f);
    conn_ace_backend.close(st);
}

static void test_throttling(void **s)
{
    (void)s;
    void *st = open_ace(g_fake.base, SECRET, NULL, 2000);
    dg_reg_fact f = {0};
    fake_behave(&g_fake,
                "{\"key\":\"O2000001\",\"status\":400,\"error_type\":\"ThrottlingException\","
                "\"times\":1}");
    assert_int_equal(conn_ace_backend.by_id(st, "O2000001", 2000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_FOUND);
    dg_reg_fact_free(&f);
    assert_int_equal(fake_count(&g_fake, "GetOpportunity:O2000001"), 2);

    fake_behave(&g_fake,
                "{\"key\":\"O2000002\",\"status\":400,\"error_type\":\"ThrottlingException\"}");
    assert_int_equal(conn_ace_backend.by_id(st, "O2000002", 1000, &f), DG_ETHROTTLED);
    assert_int_equal(f.lookup, DG_LOOKUP_FAILED);
    assert_int_equal(f.retryable, 1);
    assert_non_null(strstr(f.error, "Throttl"));
    dg_reg_fact_free(&f);
    long calls = fake_count(&g_fake, "GetOpportunity:O2000002");
    assert_true(calls >= 2 && calls <= 3); /* retried with back-off, not hammered */
    conn_ace_backend.close(st);
}

static void test_final_errors_not_retried(void **s)
{
    (void)s;
    void *st = open_ace(g_fake.base, SECRET, NULL, 2000);
    dg_reg_fact f = {0};
    fake_behave(&g_fake,
                "{\"key\":\"O2000001\",\"status\":403,\"error_type\":\"AccessDeniedException\"}");
    assert_int_equal(conn_ace_backend.by_id(st, "O2000001", 2000, &f), DG_EAUTH);
    assert_int_equal(f.lookup, DG_LOOKUP_FAILED);
    assert_int_equal(f.retryable, 0);
    assert_non_null(strstr(f.error, "AccessDeniedException"));
    dg_reg_fact_free(&f);
    fake_behave(&g_fake,
                "{\"key\":\"O2000002\",\"status\":400,\"error_type\":\"ValidationException\"}");
    assert_int_equal(conn_ace_backend.by_id(st, "O2000002", 2000, &f), DG_EUPSTREAM);
    assert_int_equal(f.retryable, 0);
    assert_non_null(strstr(f.error, "ValidationException"));
    dg_reg_fact_free(&f);
    assert_int_equal(fake_count(&g_fake, "GetOpportunity:O2000001"), 1);
    assert_int_equal(fake_count(&g_fake, "GetOpportunity:O2000002"), 1);
    conn_ace_backend.close(st);
}

static void test_bad_signature(void **s)
{
    (void)s;
    void *st = open_ace(g_fake.base, "not-the-secret-key-SECRETVALUE", NULL, 2000);
    dg_reg_fact f = {0};
    assert_int_equal(conn_ace_backend.by_id(st, "O2000001", 2000, &f), DG_EAUTH);
    assert_int_equal(f.lookup, DG_LOOKUP_FAILED);
    assert_int_equal(f.retryable, 0);
    assert_non_null(strstr(f.error, "InvalidSignatureException"));
    assert_non_null(strstr(f.error, "403"));
    assert_null(strstr(f.error, "SECRETVALUE"));
    char h[512];
    conn_ace_backend.health(st, h, sizeof h);
    assert_null(strstr(h, "SECRETVALUE"));
    dg_reg_fact_free(&f);
    assert_true(fake_count(&g_fake, "bad_signature") >= 1);
    assert_int_equal(fake_count(&g_fake, "GetOpportunity"), 0);
    conn_ace_backend.close(st);
}

/* One instance serves many threads at once: every call signed right and answered. */
static void test_concurrent_calls(void **s)
{
    (void)s;
    void *st = open_ace(g_fake.base, SECRET, NULL, 3000);
    fake_behave(&g_fake, "{\"key\":\"GetOpportunity\",\"delay_ms\":50}");
    const char *ids[] = {"O2000001", "O2000002", "O2000003", "O2000004", "O9999999"};
    pthread_t th[16];
    caller c[16];
    for (int i = 0; i < 16; i++) {
        c[i] = (caller){.be = &conn_ace_backend, .st = st};
        snprintf(c[i].id, sizeof c[i].id, "%s", ids[i % 5]);
        assert_int_equal(pthread_create(&th[i], NULL, caller_run, &c[i]), 0);
    }
    for (int i = 0; i < 16; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(c[i].rc, DG_OK);
        assert_int_equal(c[i].lookup, i % 5 == 4 ? DG_LOOKUP_NOT_FOUND : DG_LOOKUP_FOUND);
    }
    assert_int_equal(fake_count(&g_fake, "GetOpportunity"), 16);
    assert_int_equal(fake_count(&g_fake, "bad_signature"), 0);
    conn_ace_backend.close(st);
}

static void test_session_token(void **s)
{
    (void)s;
    fake_server fk;
    const char *args[] = {"--session-token", "IQoJb3JpZ2luX2VjEXAMPLE", NULL};
    assert_int_equal(fake_start(&fk, "fake_ace.py", args), 0);
    void *st = open_ace(fk.base, SECRET, "IQoJb3JpZ2luX2VjEXAMPLE", 2000);
    dg_reg_fact f = {0};
    assert_int_equal(conn_ace_backend.by_id(st, "O2000001", 2000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_FOUND);
    dg_reg_fact_free(&f);
    conn_ace_backend.close(st);
    /* without the token the fake refuses, as AWS does for temporary credentials */
    st = open_ace(fk.base, SECRET, NULL, 2000);
    assert_int_equal(conn_ace_backend.by_id(st, "O2000001", 2000, &f), DG_EAUTH);
    assert_non_null(strstr(f.error, "UnrecognizedClientException"));
    dg_reg_fact_free(&f);
    conn_ace_backend.close(st);
    assert_int_equal(fake_count(&fk, "GetOpportunity"), 1);
    fake_stop(&fk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_id),
        cmocka_unit_test(test_open_refuses_plain_http_to_remote),
        cmocka_unit_test_setup(test_approved_with_link, fake_reset),
        cmocka_unit_test_setup(test_public_sample, fake_reset),
        cmocka_unit_test_setup(test_states, fake_reset),
        cmocka_unit_test_setup(test_not_found, fake_reset),
        cmocka_unit_test_setup(test_invalid_id_never_sent, fake_reset),
        cmocka_unit_test_setup(test_by_crm_id, fake_reset),
        cmocka_unit_test_setup(test_miss_refreshes_early, fake_reset),
        cmocka_unit_test(test_paging),
        cmocka_unit_test_setup(test_slow_upstream_times_out, fake_reset),
        cmocka_unit_test_setup(test_server_error, fake_reset),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test_setup(test_malformed_json, fake_reset),
        cmocka_unit_test_setup(test_throttling, fake_reset),
        cmocka_unit_test_setup(test_final_errors_not_retried, fake_reset),
        cmocka_unit_test_setup(test_bad_signature, fake_reset),
        cmocka_unit_test_setup(test_concurrent_calls, fake_reset),
        cmocka_unit_test(test_session_token),
    };
    return cmocka_run_group_tests(tests, group_setup, fake_group_teardown);
}
