/* test_conn_parse.c — the pure parsers of the live connectors (connectors/parse.h) on raw
 * upstream bytes: the shapes the backends accept, how error answers are classified, and
 * regression cases for what the fuzzers (fuzz/fuzz_ace.c, fuzz_partner_center.c,
 * fuzz_gcp.c, fuzz_file.c) found. No network: the HTTP side is tested against the fakes in
 * test_ace.c, test_partner_center.c, test_gcp.c and test_file_connector.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "connectors/parse.h"

#define S(lit) lit, sizeof lit - 1

static dg_reg_fact fact0(void)
{
    dg_reg_fact f;
    memset(&f, 0, sizeof f);
    return f;
}

/* ---- ACE -------------------------------------------------------------------------------- */

static void test_ace_opportunity(void **state)
{
    (void)state;
    char err[256];
    dg_reg_fact f = fact0();
    assert_int_equal(conn_ace_parse_opportunity(
                         S("{\"Id\":\"O1234567\",\"LifeCycle\":{\"ReviewStatus\":\"Approved\"},"
                           "\"PartnerOpportunityIdentifier\":\"006A\",\"Origin\":\"AWS Referral\","
                           "\"CreatedDate\":\"2025-01-10T08:00:00Z\"}"),
                         "O1234567", &f, err, sizeof err),
                     DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_FOUND);
    assert_string_equal(f.status, "Approved");
    assert_string_equal(f.crm_id, "006A");
    assert_string_equal(f.origin, "cloud");
    assert_string_equal(f.created_at, "2025-01-10T08:00:00Z");
    dg_reg_fact_free(&f);

    f = fact0();
    assert_int_equal(
        conn_ace_parse_opportunity(S("{\"Id\":\"O7\"}"), "O1234567", &f, err, sizeof err),
        DG_EUPSTREAM);
    assert_int_equal(f.lookup, DG_LOOKUP_FAILED);
    assert_int_equal(f.retryable, 0);
    assert_non_null(strstr(err, "another opportunity"));
    dg_reg_fact_free(&f);

    f = fact0();
    assert_int_equal(conn_ace_parse_opportunity(S("{\"Id\": 5"), "O1", &f, err, sizeof err),
                     DG_EPARSE);
    assert_int_equal(f.lookup, DG_LOOKUP_FAILED);
    assert_int_equal(f.retryable, 1);
    dg_reg_fact_free(&f);

    f = fact0(); /* LifeCycle of the wrong type */
    assert_int_equal(
        conn_ace_parse_opportunity(S("{\"LifeCycle\":[1]}"), "O1", &f, err, sizeof err), DG_EPARSE);
    dg_reg_fact_free(&f);
}

static void test_ace_error_classes(void **state)
{
    (void)state;
    char type[128];
    int retry = -1;
    assert_int_equal(conn_ace_parse_error(400, "ThrottlingException:http://x/", S("{}"), type,
                                          sizeof type, &retry),
                     DG_ETHROTTLED);
    assert_string_equal(type, "ThrottlingException");
    assert_int_equal(retry, 1);
    assert_int_equal(
        conn_ace_parse_error(400, "", S("{\"__type\":\"com.amazonaws#ResourceNotFoundException\"}"),
                             type, sizeof type, &retry),
        DG_ENOTFOUND);
    assert_string_equal(type, "ResourceNotFoundException");
    assert_int_equal(conn_ace_parse_error(403, NULL, S("{\"__type\":\"AccessDeniedException\"}"),
                                          type, sizeof type, &retry),
                     DG_EAUTH);
    assert_int_equal(retry, 0);
    assert_int_equal(
        conn_ace_parse_error(502, NULL, S("<html>bad gateway</html>"), type, sizeof type, &retry),
        DG_EUPSTREAM);
    assert_string_equal(type, "");
    assert_int_equal(retry, 1);
    assert_int_equal(conn_ace_parse_error(400, NULL, S("garbage"), type, sizeof type, &retry),
                     DG_EUPSTREAM);
    assert_int_equal(retry, 0);
}

static void test_ace_list_page(void **state)
{
    (void)state;
    char err[256];
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(
        conn_ace_parse_list_page(
            S("{\"NextToken\":\"tok\",\"OpportunitySummaries\":["
              "{\"Id\":\"O1\",\"PartnerOpportunityIdentifier\":\"006A\","
              "\"LastModifiedDate\":\"2025-01-01T00:00:00Z\",\"LifeCycle\":{\"ReviewStatus\":"
              "\"Approved\"}},"
              "{\"Id\":\"O2\",\"PartnerOpportunityIdentifier\":\"006A\"},"
              "{\"Id\":\"bad\"},{\"Id\":\"O1\",\"PartnerOpportunityIdentifier\":\"006B\"}]}"),
            &n, &next, err, sizeof err),
        DG_OK);
    assert_int_equal(n, 2); /* O1 (relinked to 006B) and O2; "bad" is skipped */
    assert_string_equal(next, "tok");
    free(next);
    assert_int_equal(
        conn_ace_parse_list_page(S("{\"OpportunitySummaries\":{}}"), &n, &next, err, sizeof err),
        DG_EPARSE);
    assert_null(next);
}

/* ---- Partner Center --------------------------------------------------------------------- */

#define REF(id, sub, crm, created)                                                                 \
    "{\"id\":\"" id "\",\"status\":\"Active\",\"substatus\":\"" sub "\",\"externalReferenceId\":"  \
    "\"" crm "\",\"createdDateTime\":\"" created "\",\"direction\":\"Incoming\"}"

static void test_pc_referral(void **state)
{
    (void)state;
    char err[256];
    dg_reg_fact f = fact0();
    assert_int_equal(conn_pc_parse_referral(S(REF("ref-1", "Accepted", "006A", "2025-01-05")),
                                            "REF-1", &f, err, sizeof err),
                     DG_OK);
    assert_string_equal(f.status, "Accepted");
    assert_string_equal(f.origin, "cloud");
    dg_reg_fact_free(&f);
    f = fact0();
    assert_int_equal(conn_pc_parse_referral(S(REF("ref-2", "Won", "006A", "2025")), "ref-1", &f,
                                            err, sizeof err),
                     DG_EUPSTREAM);
    dg_reg_fact_free(&f);
}

static void test_pc_list_page(void **state)
{
    (void)state;
    char err[256];
    char *url = NULL;
    dg_reg_fact f = fact0();
    assert_int_equal(
        conn_pc_parse_list_page(
            S("{\"value\":[" REF("r-1", "Pending", "006A", "2025-01-01") "," REF(
                "r-2", "Accepted", "006A", "2025-01-02") "," REF("r-3", "Won", "006B",
                                                                 "2025-01-03") "],"
                                                                               "\"@odata.nextLink\""
                                                                               ":\"/v1.0/x?p=2\"}"),
            "006A", "https://api.partner.microsoft.com:443", &f, &url, err, sizeof err),
        DG_OK);
    assert_int_equal(f.lookup, DG_LOOKUP_FOUND);
    assert_string_equal(f.id, "r-2");
    assert_string_equal(url, "https://api.partner.microsoft.com:443/v1.0/x?p=2");
    free(url);
    dg_reg_fact_free(&f);

    f = fact0();
    assert_int_equal(conn_pc_parse_list_page(
                         S("{\"value\":[],\"@odata.nextLink\":\"https://evil.example/x\"}"), "006A",
                         "https://api.partner.microsoft.com:443", &f, &url, err, sizeof err),
                     DG_EUPSTREAM);
    assert_null(url);
    assert_int_equal(f.lookup, DG_LOOKUP_FAILED);
    dg_reg_fact_free(&f);
    f = fact0(); /* protocol-relative: another origin too */
    assert_int_equal(conn_pc_parse_list_page(S("{\"value\":[],\"@odata.nextLink\":\"//evil/x\"}"),
                                             "006A", "https://api.partner.microsoft.com:443", &f,
                                             &url, err, sizeof err),
                     DG_EUPSTREAM);
    dg_reg_fact_free(&f);
}

static void test_pc_token(void **state)
{
    (void)state;
    char err[256];
    char *access = NULL, *rotated = NULL;
    long long exp = 0;
    assert_int_equal(conn_pc_parse_token(S("{\"access_token\":\"a\",\"expires_in\":\"3599\","
                                           "\"refresh_token\":\"r2\"}"),
                                         &access, &exp, &rotated, err, sizeof err),
                     DG_OK);
    assert_string_equal(access, "a");
    assert_string_equal(rotated, "r2");
    assert_int_equal(exp, 3599);
    free(access);
    free(rotated);
    assert_int_equal(conn_pc_parse_token(S("{\"access_token\":\"a\",\"expires_in\":\"-1\"}"),
                                         &access, &exp, &rotated, err, sizeof err),
                     DG_EPARSE);
    assert_null(access);
    assert_null(rotated);
}

/* ---- Google Cloud ----------------------------------------------------------------------- */

static void test_gcp_opportunity(void **state)
{
    (void)state;
    char err[256];
    dg_reg_fact f = fact0();
    assert_int_equal(conn_gcp_parse_opportunity(
                         S("{\"name\":\"partners/1/opportunities/o-1\",\"qualificationState\":"
                           "\"QUALIFICATION_STATE_UNSPECIFIED\",\"salesStage\":\"QUALIFY\","
                           "\"createDate\":{\"year\":2025,\"month\":3,\"day\":4}}"),
                         "o-1", &f, err, sizeof err),
                     DG_OK);
    assert_string_equal(f.status, "QUALIFY");
    assert_string_equal(f.created_at, "2025-03-04T00:00:00Z");
    dg_reg_fact_free(&f);
    f = fact0();
    assert_int_equal(conn_gcp_parse_opportunity(S("{\"name\":\"partners/1/opportunities/xo-1\"}"),
                                                "o-1", &f, err, sizeof err),
                     DG_EUPSTREAM);
    dg_reg_fact_free(&f);
    f = fact0();
    assert_int_equal(conn_gcp_parse_opportunity(S("{\"createDate\":{\"year\":2025.5,\"month\":1,"
                                                  "\"day\":1}}"),
                                                "o-1", &f, err, sizeof err),
                     DG_EPARSE);
    dg_reg_fact_free(&f);
}

static void test_gcp_error_classes(void **state)
{
    (void)state;
    char gs[48], detail[160];
    int retry = -1;
    assert_int_equal(
        conn_gcp_parse_error(429,
                             S("{\"error\":{\"status\":\"RESOURCE_EXHAUSTED\",\"message\":\"q\"}}"),
                             gs, sizeof gs, detail, sizeof detail, &retry),
        DG_ETHROTTLED);
    assert_string_equal(gs, "RESOURCE_EXHAUSTED");
    assert_string_equal(detail, "q");
    assert_int_equal(
        conn_gcp_parse_error(404, S("not json"), gs, sizeof gs, detail, sizeof detail, &retry),
        DG_ENOTFOUND);
    assert_int_equal(conn_gcp_parse_error(503, S(""), gs, sizeof gs, detail, sizeof detail, &retry),
                     DG_EUPSTREAM);
    assert_int_equal(retry, 1);
    assert_int_equal(conn_gcp_parse_error(403, S("{\"error\":{\"status\":\"PERMISSION_DENIED\"}}"),
                                          gs, sizeof gs, detail, sizeof detail, &retry),
                     DG_EAUTH);
}

/* ---- file connector --------------------------------------------------------------------- */

static void test_file_parse(void **state)
{
    (void)state;
    char err[256];
    size_t rows = 0, regs = 0;
    assert_int_equal(conn_file_parse("r.csv", "aws",
                                     S("cloud,registration_id,crm_opportunity_id,status,created_at,"
                                       "origin\naws,O1,006A,Approved,2026-10-01,partner\n"
                                       "AWS,O1,006B,Rejected,,\nazure,x,,,,\n"),
                                     &rows, &regs, err, sizeof err),
                     DG_OK);
    assert_int_equal(rows, 2);
    assert_int_equal(regs, 1);
    assert_int_equal(conn_file_parse("r.csv", "aws", S("cloud,registration_id\naws,O1\n"), &rows,
                                     &regs, err, sizeof err),
                     DG_EPARSE);
    assert_non_null(strstr(err, "r.csv:1: missing column(s)"));
}

/* ---- regressions: what the fuzzers found ------------------------------------------------ */

/* Upstream strings that are not valid UTF-8 were copied into facts, and from there into
 * decision JSON (cJSON prints such bytes as they are): a CRM got an answer its JSON parser
 * may refuse, and the log kept it. Now such an answer has an unexpected shape: the look-up
 * fails (retryable), nothing of it reaches a decision. */
static void test_invalid_utf8_from_upstreams_is_refused(void **state)
{
    (void)state;
    char err[256];
    dg_reg_fact f = fact0();
    assert_int_equal(conn_ace_parse_opportunity(
                         S("{\"Id\":\"O1\",\"LifeCycle\":{\"ReviewStatus\":\"Appr\xc3\"}}"), "O1",
                         &f, err, sizeof err),
                     DG_EPARSE);
    assert_int_equal(f.lookup, DG_LOOKUP_FAILED);
    assert_null(f.status);
    dg_reg_fact_free(&f);

    f = fact0();
    assert_int_equal(conn_pc_parse_referral(S(REF("ref-1", "Won", "006\xed\xa0\x80", "2025")),
                                            "ref-1", &f, err, sizeof err),
                     DG_EPARSE);
    assert_null(f.crm_id);
    dg_reg_fact_free(&f);

    f = fact0();
    assert_int_equal(
        conn_gcp_parse_opportunity(S("{\"salesStage\":\"QUAL\xff\"}"), "o-1", &f, err, sizeof err),
        DG_EPARSE);
    dg_reg_fact_free(&f);

    f = fact0(); /* valid multi-byte text is kept */
    assert_int_equal(conn_gcp_parse_opportunity(S("{\"salesStage\":\"QUALIFI\xc3\xa9\"}"), "o-1",
                                                &f, err, sizeof err),
                     DG_OK);
    assert_string_equal(f.status, "QUALIFI\xc3\xa9");
    dg_reg_fact_free(&f);

    size_t rows, regs; /* the file connector names the line */
    assert_int_equal(conn_file_parse("r.csv", "aws",
                                     S("cloud,registration_id,crm_opportunity_id,status,created_at,"
                                       "origin\naws,O1,006A,Approved,,\naws,O2,006B,Appr\xe9,,\n"),
                                     &rows, &regs, err, sizeof err),
                     DG_EPARSE);
    assert_non_null(strstr(err, "r.csv:3: "));
    assert_non_null(strstr(err, "UTF-8"));
    /* bytes in columns it ignores and in other clouds' rows are not its business */
    assert_int_equal(conn_file_parse("r.csv", "aws",
                                     S("cloud,registration_id,crm_opportunity_id,status,created_at,"
                                       "origin,company\naws,O1,006A,Approved,,,Soci\xe9t\xe9\n"
                                       "azure,\xff,,\xfe,,,\n"),
                                     &rows, &regs, err, sizeof err),
                     DG_OK);
    assert_int_equal(rows, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ace_opportunity),
        cmocka_unit_test(test_ace_error_classes),
        cmocka_unit_test(test_ace_list_page),
        cmocka_unit_test(test_pc_referral),
        cmocka_unit_test(test_pc_list_page),
        cmocka_unit_test(test_pc_token),
        cmocka_unit_test(test_gcp_opportunity),
        cmocka_unit_test(test_gcp_error_classes),
        cmocka_unit_test(test_file_parse),
        cmocka_unit_test(test_invalid_utf8_from_upstreams_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
