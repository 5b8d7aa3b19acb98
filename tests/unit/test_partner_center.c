/* test_partner_center.c — the Partner Center backend against
 * tests/fakes/fake_partner_center.py (referrals API + Azure AD token endpoint), through the
 * ops struct; plus the URL helpers of connectors/http.h it relies on (origin, escaping).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "connectors/backends.h"
#include "connectors/http.h"
#include "fixtures.h"

#define CLIENT_SECRET "pc-client-secret-XYZ"
#define REFRESH "rt-initial-SECRET"
#define RID(n) "11111111-aaaa-4bbb-8ccc-00000000000" #n

static int group_setup(void **s)
{
    (void)s;
    /* shared by tests that each start from the configured refresh token: no rotation here
     * (test_token_expiry_and_rotation has its own rotating fake) */
    const char *args[] = {"--no-rotate", NULL};
    return fake_start(&g_fake, "fake_partner_center.py", args);
}

static void *open_pc_in(const fake_server *fk, const char *token_path, const char *refresh,
                        const char *state_dir)
{
    char token_url[128];
    snprintf(token_url, sizeof token_url, "%s%s", fk->base, token_path);
    cfg_cloud cc = {.key = "azure",
                    .name = "Microsoft Partner Center",
                    .connector = CFG_CONN_PARTNER_CENTER,
                    .endpoint = (char *)fk->base,
                    .token_url = token_url,
                    .client_id = "pc-client-id",
                    .client_secret = CLIENT_SECRET,
                    .refresh_token = (char *)refresh,
                    .timeout_ms = 2000};
    void *st = NULL;
    char err[256] = "";
    if (conn_partner_center_backend.open(&cc, state_dir, &st, err, sizeof err) != DG_OK)
        fail_msg("open: %s", err);
    return st;
}

static void *open_pc_at(const fake_server *fk, const char *token_path, const char *refresh)
{
    return open_pc_in(fk, token_path, refresh, NULL);
}

static void *open_pc(void)
{
    return open_pc_at(&g_fake, "/common/oauth2/token", REFRESH);
}

/* No secret of the config in s. */
static void assert_no_secret(const char *s)
{
    assert_null(strstr(s, CLIENT_SECRET));
    assert_null(strstr(s, "SECRET"));
    assert_null(strstr(s, "at-"));
    assert_null(strstr(s, "rt-"));
}

static void test_valid_id(void **s)
{
    (void)s;
    const conn_backend *b = &conn_partner_center_backend;
    assert_true(b->valid_id(RID(1)));
    assert_true(b->valid_id("B3F1A2C4-0000-4000-8000-ABCDEFABCDEF"));
    assert_true(b->valid_id("referral-42"));
    char long_id[70];
    memset(long_id, 'a', 64);
    long_id[64] = '\0';
    assert_true(b->valid_id(long_id));
    long_id[64] = 'a';
    long_id[65] = '\0';
    assert_false(b->valid_id(long_id));
    assert_false(b->valid_id("a/../b"));
    assert_false(b->valid_id("a b"));
    assert_false(b->valid_id("x'y"));
    assert_false(b->valid_id("x%2Fy"));
    assert_false(b->valid_id(""));
    assert_false(b->valid_id(NULL));
}

static void test_open_checks(void **s)
{
    (void)s;
    cfg_cloud cc = {.key = "azure",
                    .connector = CFG_CONN_PARTNER_CENTER,
                    .endpoint = "http://api.partner.microsoft.com",
                    .token_url = "https://login.microsoftonline.com/common/oauth2/token",
                    .client_id = "id",
                    .refresh_token = "r"};
    void *st = NULL;
    char err[256];
    assert_int_equal(conn_partner_center_backend.open(&cc, NULL, &st, err, sizeof err), DG_EINVAL);
    assert_non_null(strstr(err, "endpoint"));
    cc.endpoint = "https://api.partner.microsoft.com";
    cc.token_url = "http://login.microsoftonline.com/common/oauth2/token";
    assert_int_equal(conn_partner_center_backend.open(&cc, NULL, &st, err, sizeof err), DG_EINVAL);
    assert_non_null(strstr(err, "token_url"));
    cc.token_url = "https://login.microsoftonline.com/common/oauth2/token";
    cc.refresh_token = NULL;
    assert_int_equal(conn_partner_center_backend.open(&cc, NULL, &st, err, sizeof err), DG_EINVAL);
    assert_null(st);
}

static void test_states_and_origin(void **s)
{
    (void)s;
    void *st = open_pc();
    dg_reg_fact f = {0};
    assert_int_equal(conn_partner_center_backend.by_id(st, RID(1), 2000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_FOUND);
    assert_string_equal(f.status, "Accepted"); /* substatus wins over status Active */
    assert_string_equal(f.crm_id, "006PC0000001");
    assert_string_equal(f.created_at, "2025-01-05T10:00:00Z");
    assert_string_equal(f.origin, "cloud"); /* Incoming */
    dg_reg_fact_free(&f);

    assert_int_equal(conn_partner_center_backend.by_id(st, RID(2), 2000, &f), DG_OK);
    assert_string_equal(f.status, "Declined");
    assert_string_equal(f.origin, "partner");      /* Outgoing */
    assert_string_equal(f.crm_id, "006PC0000002"); /* another deal's */
    dg_reg_fact_free(&f);

    assert_int_equal(conn_partner_center_backend.by_id(st, RID(3), 2000, &f), DG_OK);
    assert_string_equal(f.status, "Pending");
    dg_reg_fact_free(&f);

    assert_int_equal(conn_partner_center_backend.by_id(st, RID(5), 2000, &f), DG_OK);
    assert_string_equal(f.status, "Active"); /* no substatus: status */
    assert_null(f.crm_id);
    dg_reg_fact_free(&f);

    /* referral ids are GUIDs: case does not matter */
    assert_int_equal(
        conn_partner_center_backend.by_id(st, "11111111-AAAA-4BBB-8CCC-000000000001", 2000, &f),
        DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_FOUND);
    dg_reg_fact_free(&f);

    assert_int_equal(conn_partner_center_backend.by_id(st, RID(9), 2000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_NOT_FOUND);
    assert_null(f.error);
    dg_reg_fact_free(&f);
    assert_int_equal(fake_count(&g_fake, "token"), 1); /* one token for all of these */
    char h[256];
    conn_partner_center_backend.health(st, h, sizeof h);
    assert_non_null(strstr(h, "ok"));
    assert_non_null(strstr(h, "token valid"));
    assert_no_secret(h);
    conn_partner_center_backend.close(st);
}

static void test_invalid_id_never_sent(void **s)
{
    (void)s;
    void *st = open_pc();
    const char *bad[] = {"a/../b", "x y", "'; DROP", "%2e%2e"};
    for (int i = 0; i < 4; i++) {
        dg_reg_fact f = {0};
        assert_int_equal(conn_partner_center_backend.by_id(st, bad[i], 2000, &f), DG_OK);
        assert_int_equal(f.lookup, DG_LOOKUP_NOT_FOUND);
        assert_non_null(strstr(f.error, "invalid"));
        dg_reg_fact_free(&f);
    }
    assert_int_equal(fake_count(&g_fake, "total"), 0);
    conn_partner_center_backend.close(st);
}

static void test_by_crm_id(void **s)
{
    (void)s;
    void *st = open_pc();
    dg_reg_fact f = {0};
    assert_int_equal(conn_partner_center_backend.by_crm_id(st, "006PC0000001", 2000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_FOUND);
    assert_string_equal(f.id, RID(1));
    assert_string_equal(f.status, "Accepted");
    dg_reg_fact_free(&f);

    /* quotes are doubled inside the filter, and the filter is percent-encoded */
    assert_int_equal(conn_partner_center_backend.by_crm_id(st, "O'Brien-1", 2000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_FOUND);
    assert_string_equal(f.id, RID(4));
    dg_reg_fact_free(&f);
    char *last = fake_ctl(&g_fake, "GET", "/__last", NULL);
    assert_non_null(last);
    assert_non_null(strstr(last, "externalReferenceId eq 'O''Brien-1'"));
    free(last);

    /* an injection attempt stays one literal: nothing matches */
    assert_int_equal(
        conn_partner_center_backend.by_crm_id(st, "x' or externalReferenceId ne 'y", 2000, &f),
        DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_NOT_FOUND);
    dg_reg_fact_free(&f);

    assert_int_equal(conn_partner_center_backend.by_crm_id(st, "006NOTHERE", 2000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_NOT_FOUND);
    assert_null(f.id);
    dg_reg_fact_free(&f);
    conn_partner_center_backend.close(st);
}

static void test_paging_and_foreign_next_link(void **s)
{
    (void)s;
    fake_server fk;
    const char *args[] = {"--page-size", "1", NULL};
    assert_int_equal(fake_start(&fk, "fake_partner_center.py", args), 0);
    void *st = open_pc_at(&fk, "/common/oauth2/token", REFRESH);
    dg_reg_fact f = {0};
    assert_int_equal(conn_partner_center_backend.by_crm_id(st, "006MANY", 2000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_FOUND);
    assert_string_equal(f.id, RID(7)); /* the accepted one of three */
    assert_string_equal(f.status, "Accepted");
    dg_reg_fact_free(&f);
    assert_int_equal(fake_count(&fk, "list"), 3);

    /* a nextLink to another origin (other host, same port) is refused, never followed */
    char body[128];
    snprintf(body, sizeof body, "{\"origin\":\"http://localhost:%d\"}", fk.port);
    assert_int_equal(fake_post(&fk, "/__nextlink", body), 0);
    assert_int_equal(fake_post(&fk, "/__reset", "{}"), 0);
    assert_int_equal(conn_partner_center_backend.by_crm_id(st, "006MANY", 2000, &f), DG_EUPSTREAM);
    assert_int_equal(f.lookup, DG_LOOKUP_FAILED);
    assert_int_equal(f.retryable, 0);
    assert_non_null(strstr(f.error, "another origin"));
    dg_reg_fact_free(&f);
    assert_int_equal(fake_count(&fk, "list"), 1);

    snprintf(body, sizeof body, "{\"origin\":\"https://127.0.0.1:%d\"}", fk.port);
    assert_int_equal(fake_post(&fk, "/__nextlink", body), 0);
    assert_int_equal(conn_partner_center_backend.by_crm_id(st, "006MANY", 2000, &f), DG_EUPSTREAM);
    assert_non_null(strstr(f.error, "another origin"));
    dg_reg_fact_free(&f);
    conn_partner_center_backend.close(st);
    fake_stop(&fk);
}

/* Tokens that expire within the 60 s margin are refreshed on every call, each time with the
 * refresh token the previous answer rotated in (the fake refuses a used one). */
static void test_token_expiry_and_rotation(void **s)
{
    (void)s;
    fake_server fk;
    const char *args[] = {"--expires-in", "60", NULL};
    assert_int_equal(fake_start(&fk, "fake_partner_center.py", args), 0);
    void *st = open_pc_at(&fk, "/common/oauth2/token", REFRESH);
    for (int i = 0; i < 3; i++) {
        dg_reg_fact f = {0};
        assert_int_equal(conn_partner_center_backend.by_id(st, RID(1), 2000, &f), DG_OK);
        assert_int_equal(f.lookup, DG_LOOKUP_FOUND);
        dg_reg_fact_free(&f);
    }
    assert_int_equal(fake_count(&fk, "token"), 3);
    assert_int_equal(fake_count(&fk, "token_rejected"), 0);
    conn_partner_center_backend.close(st);

    /* a second instance still holding the original refresh token is refused: rotation is
     * real, so keeping the rotated one matters */
    st = open_pc_at(&fk, "/common/oauth2/token", REFRESH);
    dg_reg_fact f = {0};
    assert_int_equal(conn_partner_center_backend.by_id(st, RID(1), 2000, &f), DG_EAUTH);
    assert_int_equal(f.lookup, DG_LOOKUP_FAILED);
    assert_int_equal(f.retryable, 0);
    assert_non_null(strstr(f.error, "invalid_grant"));
    assert_non_null(strstr(f.error, "AADSTS70008"));
    assert_no_secret(f.error);
    char h[256];
    conn_partner_center_backend.health(st, h, sizeof h);
    assert_non_null(strstr(h, "invalid_grant"));
    assert_no_secret(h);
    dg_reg_fact_free(&f);
    conn_partner_center_backend.close(st);
    fake_stop(&fk);
}

static dg_err look_once(void *st)
{
    dg_reg_fact f = {0};
    dg_err rc = conn_partner_center_backend.by_id(st, RID(1), 2000, &f);
    dg_reg_fact_free(&f);
    return rc;
}

/* With a state_dir, the rotated refresh token survives a restart (the fake refuses the
 * configured one once it has rotated); a newly configured refresh token overrides it. */
static void test_rotated_token_kept_across_restarts(void **s)
{
    (void)s;
    fake_server fk;
    assert_int_equal(fake_start(&fk, "fake_partner_center.py", NULL), 0);
    char dir[] = "/tmp/pc_state_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/partner-center-azure.token", dir);

    void *st = open_pc_in(&fk, "/common/oauth2/token", REFRESH, dir);
    assert_int_equal(look_once(st), DG_OK);
    conn_partner_center_backend.close(st);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    for (int restart = 0; restart < 2; restart++) { /* each restart rotates it again */
        st = open_pc_in(&fk, "/common/oauth2/token", REFRESH, dir);
        assert_int_equal(look_once(st), DG_OK);
        conn_partner_center_backend.close(st);
    }
    assert_int_equal(fake_count(&fk, "token"), 3);
    assert_int_equal(fake_count(&fk, "token_rejected"), 0);

    /* the configured token changed: the kept one (rotated from the old) is not used */
    st = open_pc_in(&fk, "/common/oauth2/token", "another-refresh-token", dir);
    assert_int_equal(look_once(st), DG_EAUTH);
    conn_partner_center_backend.close(st);
    assert_int_equal(fake_count(&fk, "token_rejected"), 1);

    /* a state_dir it cannot write: the look-up still works, the health line says why a
     * restart would fall back to the configured token */
    fake_stop(&fk);
    assert_int_equal(fake_start(&fk, "fake_partner_center.py", NULL), 0);
    st = open_pc_in(&fk, "/common/oauth2/token", REFRESH, "/nonexistent-dealgate-dir");
    assert_int_equal(look_once(st), DG_OK);
    char h[512];
    conn_partner_center_backend.health(st, h, sizeof h);
    assert_non_null(strstr(h, "cannot keep the rotated refresh token"));
    assert_no_secret(h);
    conn_partner_center_backend.close(st);
    fake_stop(&fk);
    unlink(path);
    rmdir(dir);
}

static void test_v2_token_endpoint(void **s)
{
    (void)s;
    void *st = open_pc_at(&g_fake, "/common/oauth2/v2.0/token", REFRESH);
    dg_reg_fact f = {0};
    assert_int_equal(conn_partner_center_backend.by_id(st, RID(3), 2000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_FOUND);
    dg_reg_fact_free(&f);
    char *last = fake_ctl(&g_fake, "GET", "/__last", NULL);
    assert_non_null(last);
    assert_non_null(strstr(last, "https://api.partner.microsoft.com/.default offline_access"));
    assert_null(strstr(last, "\"resource\""));
    free(last);
    conn_partner_center_backend.close(st);
}

static void test_401_refreshes_once(void **s)
{
    (void)s;
    fake_server fk;
    assert_int_equal(fake_start(&fk, "fake_partner_center.py", NULL), 0);
    void *st = open_pc_at(&fk, "/common/oauth2/token", REFRESH);
    dg_reg_fact f = {0};
    fake_behave(&fk, "{\"key\":\"api\",\"status\":401,\"times\":1}");
    assert_int_equal(conn_partner_center_backend.by_id(st, RID(1), 2000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_FOUND);
    dg_reg_fact_free(&f);
    assert_int_equal(fake_count(&fk, "token"), 2);
    assert_int_equal(fake_count(&fk, "unauthorized"), 1);
    assert_int_equal(fake_count(&fk, "get"), 2);

    /* a 401 every time: one refresh, one retry, then a final failure */
    fake_behave(&fk, "{\"key\":\"api\",\"status\":401}");
    assert_int_equal(conn_partner_center_backend.by_id(st, RID(1), 2000, &f), DG_EAUTH);
    assert_int_equal(f.lookup, DG_LOOKUP_FAILED);
    assert_int_equal(f.retryable, 0);
    assert_non_null(strstr(f.error, "401"));
    assert_no_secret(f.error);
    dg_reg_fact_free(&f);
    assert_int_equal(fake_count(&fk, "token"), 3);
    assert_int_equal(fake_count(&fk, "get"), 4);
    conn_partner_center_backend.close(st);
    fake_stop(&fk);
}

static void test_upstream_failures(void **s)
{
    (void)s;
    fake_server fk;
    assert_int_equal(fake_start(&fk, "fake_partner_center.py", NULL), 0);
    void *st = open_pc_at(&fk, "/common/oauth2/token", REFRESH);
    dg_reg_fact f = {0};

    fake_behave(&fk, "{\"key\":\"" RID(1) "\",\"delay_ms\":6000}");
    int64_t t0 = conn_now_ms();
    assert_int_equal(conn_partner_center_backend.by_id(st, RID(1), 400, &f), DG_ETIMEOUT);
    /* the call ends at its own timeout, long before the 6 s upstream (room for a busy CI) */
    assert_true(conn_now_ms() - t0 < 4000);
    assert_int_equal(f.lookup, DG_LOOKUP_FAILED);
    assert_int_equal(f.retryable, 1);
    dg_reg_fact_free(&f);

    fake_behave(&fk, "{\"key\":\"" RID(2) "\",\"status\":500}");
    assert_int_equal(conn_partner_center_backend.by_id(st, RID(2), 2000, &f), DG_EUPSTREAM);
    assert_int_equal(f.lookup, DG_LOOKUP_FAILED);
    assert_int_equal(f.retryable, 1);
    assert_non_null(strstr(f.error, "HTTP 500"));
    dg_reg_fact_free(&f);

    fake_behave(&fk, "{\"key\":\"" RID(3) "\",\"status\":429,\"times\":1}");
    assert_int_equal(conn_partner_center_backend.by_id(st, RID(3), 2000, &f), DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_FOUND); /* retried after the throttle */
    dg_reg_fact_free(&f);

    fake_behave(&fk, "{\"key\":\"" RID(5) "\",\"malformed\":true}");
    assert_int_equal(conn_partner_center_backend.by_id(st, RID(5), 2000, &f), DG_EPARSE);
    assert_non_null(strstr(f.error, "malformed JSON"));
    dg_reg_fact_free(&f);
    conn_partner_center_backend.close(st);
    fake_stop(&fk);
}

static void test_connection_refused(void **s)
{
    (void)s;
    fake_server dead = {.port = 1};
    snprintf(dead.base, sizeof dead.base, "http://127.0.0.1:1");
    void *st = open_pc_at(&dead, "/common/oauth2/token", REFRESH);
    dg_reg_fact f = {0};
    assert_int_equal(conn_partner_center_backend.by_id(st, RID(1), 1000, &f), DG_EUNAVAILABLE);
    assert_int_equal(f.lookup, DG_LOOKUP_FAILED);
    assert_int_equal(f.retryable, 1);
    assert_non_null(strstr(f.error, "cannot connect"));
    assert_no_secret(f.error);
    dg_reg_fact_free(&f);
    conn_partner_center_backend.close(st);
}

/* Callers arriving while a token refresh is under way wait for it: one grant for all. */
static void test_concurrent_callers_share_one_refresh(void **s)
{
    (void)s;
    void *st = open_pc();
    fake_behave(&g_fake, "{\"key\":\"token\",\"delay_ms\":300,\"times\":1}");
    pthread_t th[8];
    caller c[8];
    for (int i = 0; i < 8; i++) {
        c[i] = (caller){.be = &conn_partner_center_backend, .st = st, .id = RID(1)};
        assert_int_equal(pthread_create(&th[i], NULL, caller_run, &c[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(c[i].rc, DG_OK);
        assert_int_equal(c[i].lookup, DG_LOOKUP_FOUND);
    }
    assert_int_equal(fake_count(&g_fake, "token"), 1);
    assert_int_equal(fake_count(&g_fake, "get"), 8);
    conn_partner_center_backend.close(st);
}

static void test_url_helpers(void **s)
{
    (void)s;
    char o[CONN_HTTP_ORIGIN_MAX];
    assert_int_equal(conn_http_origin("HTTPS://Api.Partner.Microsoft.com/v1.0/x?y", o, sizeof o),
                     DG_OK);
    assert_string_equal(o, "https://api.partner.microsoft.com:443");
    assert_int_equal(conn_http_origin("http://127.0.0.1:8080", o, sizeof o), DG_OK);
    assert_string_equal(o, "http://127.0.0.1:8080");
    assert_int_equal(conn_http_origin("ftp://x/", o, sizeof o), DG_EINVAL);
    assert_int_equal(conn_http_origin("/relative", o, sizeof o), DG_EINVAL);
    assert_true(conn_http_same_origin("https://api.partner.microsoft.com:443/a",
                                      "https://api.partner.microsoft.com:443"));
    assert_false(conn_http_same_origin("https://api.partner.microsoft.com.evil.com/a",
                                       "https://api.partner.microsoft.com:443"));
    assert_false(conn_http_same_origin("https://api.partner.microsoft.com@evil.com/a",
                                       "https://api.partner.microsoft.com:443"));
    assert_false(conn_http_same_origin("http://api.partner.microsoft.com/a",
                                       "https://api.partner.microsoft.com:443"));
    assert_true(conn_http_is_loopback("127.0.0.1"));
    assert_true(conn_http_is_loopback("127.1.2.3"));
    assert_true(conn_http_is_loopback("[::1]"));
    assert_true(conn_http_is_loopback("LOCALHOST"));
    assert_false(conn_http_is_loopback("127.0.0.1.evil.com"));
    assert_false(conn_http_is_loopback("128.0.0.1"));
    assert_false(conn_http_is_loopback("localhost.evil.com"));
    char *e = conn_http_escape("a b/'\xc3\xa9~._-");
    assert_string_equal(e, "a%20b%2F%27%C3%A9~._-");
    free(e);
    /* plain http:// to anything but loopback is refused at call time too, before any I/O */
    conn_http_client *c = NULL;
    char err[256];
    assert_int_equal(conn_http_client_new(&c, err, sizeof err), DG_OK);
    conn_http_req rq = {.method = "GET", .url = "http://example.com/x", .timeout_ms = 1000};
    conn_http_resp rs;
    assert_int_equal(conn_http_do(c, &rq, &rs, err, sizeof err), DG_EINVAL);
    assert_non_null(strstr(err, "loopback"));
    conn_http_resp_free(&rs);
    rq.url = "file:///etc/passwd";
    assert_int_equal(conn_http_do(c, &rq, &rs, err, sizeof err), DG_EINVAL);
    conn_http_resp_free(&rs);
    conn_http_client_free(c);
    char x[16];
    conn_http_excerpt("  line one\nline\ttwo and more text", x, sizeof x);
    assert_string_equal(x, "line one lin...");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_id),
        cmocka_unit_test(test_open_checks),
        cmocka_unit_test_setup(test_states_and_origin, fake_reset),
        cmocka_unit_test_setup(test_invalid_id_never_sent, fake_reset),
        cmocka_unit_test_setup(test_by_crm_id, fake_reset),
        cmocka_unit_test(test_paging_and_foreign_next_link),
        cmocka_unit_test(test_token_expiry_and_rotation),
        cmocka_unit_test(test_rotated_token_kept_across_restarts),
        cmocka_unit_test_setup(test_v2_token_endpoint, fake_reset),
        cmocka_unit_test(test_401_refreshes_once),
        cmocka_unit_test(test_upstream_failures),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test_setup(test_concurrent_callers_share_one_refresh, fake_reset),
        cmocka_unit_test(test_url_helpers),
    };
    return cmocka_run_group_tests(tests, group_setup, fake_group_teardown);
}
