/* test_comp_intake.c — commission intake: JSON lines (numbers, strings, duplicates), CSV
 * (malformed, missing columns, bad values named by line and column, BOM, CRLF, quoted
 * separators, streaming in any split), the response object and the log rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "config/cfg.h"
#include "gate/comp_intake.h"

#define PCT(x) ((dg_rate)((x)*10000000LL))

typedef struct {
    struct cfg c;
    cfg_map fees[1];
    dg_rate fee_rates[1];
    cfg_map plans[2];
    dg_rate plan_rates[2];
    cfg_map columns[2];
} fixture;

static void setup_cfg(fixture *f)
{
    memset(f, 0, sizeof *f);
    memcpy(f->c.server.currency, "USD", 4);
    f->fees[0] = (cfg_map){"aws", "3%"};
    f->fee_rates[0] = PCT(3);
    f->c.comp.fees = f->fees;
    f->c.comp.fee_rates = f->fee_rates;
    f->c.comp.nfees = 1;
    f->plans[0] = (cfg_map){"default", "10%"};
    f->plan_rates[0] = PCT(10);
    f->plans[1] = (cfg_map){"partner", "8%"};
    f->plan_rates[1] = PCT(8);
    f->c.comp.plans = f->plans;
    f->c.comp.plan_rates = f->plan_rates;
    f->c.comp.nplans = 2;
    f->c.comp.allow_uplift = 1;
    f->columns[0] = (cfg_map){"acv", "Contract Value"};
    f->columns[1] = (cfg_map){"deal_id", "Opportunity ID"};
    f->c.comp.columns = f->columns;
    f->c.comp.ncolumns = 2;
}

typedef struct {
    gate_comp_result *r;
    cJSON *j;
    char err[512];
} answer;

static answer post(const fixture *f, const char *ctype, const char *body, int all)
{
    answer a;
    memset(&a, 0, sizeof a);
    dg_err rc =
        gate_comp_check_body(&f->c, ctype, body, strlen(body), all, &a.r, a.err, sizeof a.err);
    assert_int_equal(rc, DG_OK);
    assert_non_null(a.r);
    assert_non_null(a.r->body);
    assert_int_equal(strlen(a.r->body), a.r->body_len);
    a.j = cJSON_Parse(a.r->body);
    if (a.j == NULL) fail_msg("response is not JSON: %s", a.r->body);
    return a;
}

static void done(answer *a)
{
    cJSON_Delete(a->j);
    gate_comp_result_free(a->r);
}

static const char *error_message(const answer *a)
{
    const cJSON *e = cJSON_GetObjectItem(a->j, "error");
    assert_non_null(e);
    return cJSON_GetObjectItem(e, "message")->valuestring;
}

static const char *error_code(const answer *a)
{
    return cJSON_GetObjectItem(cJSON_GetObjectItem(a->j, "error"), "code")->valuestring;
}

static const cJSON *result(const answer *a, int i)
{
    const cJSON *rs = cJSON_GetObjectItem(a->j, "results");
    assert_non_null(rs);
    const cJSON *r = cJSON_GetArrayItem(rs, i);
    assert_non_null(r);
    return r;
}

static const char *rstr(const cJSON *r, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(r, k);
    if (v == NULL) fail_msg("no member %s", k);
    return cJSON_IsString(v) ? v->valuestring : "(not a string)";
}

static int num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    if (!cJSON_IsNumber(v)) fail_msg("no number %s", k);
    return v->valueint;
}

static int nresults(const answer *a)
{
    return cJSON_GetArraySize(cJSON_GetObjectItem(a->j, "results"));
}

/* Asserts a 4xx whose message contains every given fragment. */
static void expect_error(const fixture *f, const char *ctype, const char *body, int status,
                         const char *code, const char *frag1, const char *frag2)
{
    answer a = post(f, ctype, body, 0);
    if (a.r->status != status) fail_msg("status %d, want %d: %s", a.r->status, status, a.r->body);
    assert_string_equal(error_code(&a), code);
    assert_string_equal(a.r->err_code, code);
    const char *m = error_message(&a);
    if (frag1 && !strstr(m, frag1)) fail_msg("message \"%s\" lacks \"%s\"", m, frag1);
    if (frag2 && !strstr(m, frag2)) fail_msg("message \"%s\" lacks \"%s\"", m, frag2);
    assert_string_equal(a.err, m);
    assert_int_equal(a.r->nlines, 0);
    done(&a);
}

/* ---------------------------------------------------------------- JSON */

static void test_json_one_line(void **state)
{
    (void)state;
    fixture f;
    setup_cfg(&f);
    answer a = post(&f, "application/json",
                    "{\"deal_id\": \"D-1\", \"rep\": \"jane@example.com\", \"channel\": "
                    "\"Marketplace\", \"cloud\": \"aws\", \"acv\": \"100000.00\", "
                    "\"commission_base\": \"97000.00\", \"rate\": \"10%\", \"commission\": "
                    "\"9700.00\", \"crm_extra\": {\"ignored\": true}}",
                    0);
    assert_int_equal(a.r->status, 200);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(a.j, "ok")));
    assert_int_equal(num(a.j, "checked"), 1);
    assert_int_equal(num(a.j, "violations"), 1);
    assert_string_equal(rstr(cJSON_GetObjectItem(a.j, "total_shortfall"), "USD"), "300.00");
    assert_int_equal(num(cJSON_GetObjectItem(a.j, "violations_by_code"), "fee_deducted_from_base"),
                     1);
    const cJSON *r = result(&a, 0);
    assert_int_equal(num(r, "line"), 1);
    assert_string_equal(rstr(r, "deal_id"), "D-1");
    assert_string_equal(rstr(r, "channel"), "marketplace");
    assert_string_equal(rstr(r, "status"), "violation");
    assert_string_equal(rstr(r, "expected"), "10000.00");
    assert_string_equal(rstr(r, "actual"), "9700.00");
    assert_string_equal(rstr(r, "shortfall"), "300.00");
    assert_string_equal(rstr(r, "direct_rate"), "10%");
    assert_string_equal(rstr(r, "direct_rate_source"), "plan.default");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(r, "plan")));
    const cJSON *codes = cJSON_GetObjectItem(r, "codes");
    assert_int_equal(cJSON_GetArraySize(codes), 2);
    assert_string_equal(cJSON_GetArrayItem(codes, 0)->valuestring, "fee_deducted_from_base");
    assert_string_equal(cJSON_GetArrayItem(codes, 1)->valuestring,
                        "commission_below_direct_equivalent");
    const cJSON *reason = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "reasons"), 0);
    assert_string_equal(rstr(reason, "severity"), "violation");
    assert_string_equal(rstr(reason, "message"),
                        "base 97,000.00 is ACV 100,000.00 less the 3% AWS fee");
    assert_non_null(strstr(rstr(r, "message"), "(+1 more)"));

    /* the log row */
    assert_int_equal(a.r->nlines, 1);
    const dlog_comp_line *l = &a.r->lines[0];
    assert_string_equal(l->deal_id, "D-1");
    assert_string_equal(l->rep, "jane@example.com");
    assert_string_equal(l->channel, "marketplace");
    assert_string_equal(l->cloud, "aws");
    assert_string_equal(l->currency, "USD");
    assert_int_equal(l->violation, 1);
    assert_string_equal(l->codes_json,
                        "[\"fee_deducted_from_base\",\"commission_below_direct_equivalent\"]");
    assert_string_equal(l->shortfall, "300.00");
    assert_null(l->id);
    assert_null(l->batch_id);
    cJSON *rj = cJSON_Parse(l->result_json);
    assert_non_null(rj);
    assert_string_equal(rstr(rj, "deal_id"), "D-1");
    cJSON_Delete(rj);
    done(&a);
}

static void test_json_lines_and_all(void **state)
{
    (void)state;
    fixture f;
    setup_cfg(&f);
    const char *body = "{\"lines\": ["
                       "{\"deal_id\": \"A\", \"channel\": \"direct\", \"acv\": 1000, "
                       "\"commission\": 100},"
                       "{\"deal_id\": \"B\", \"channel\": \"marketplace\", \"acv\": \"1000\", "
                       "\"commission\": \"120\"},"
                       "{\"deal_id\": \"C\", \"channel\": \"marketplace\", \"acv\": \"1000\", "
                       "\"commission\": \"90\", \"currency\": \"eur\"}]}";
    answer a = post(&f, "application/json; charset=utf-8", body, 0);
    assert_int_equal(a.r->status, 200);
    assert_int_equal(num(a.j, "checked"), 3);
    assert_int_equal(num(a.j, "violations"), 1);
    assert_int_equal(num(a.j, "warnings"), 1);
    assert_int_equal(nresults(&a), 2); /* the clean line A is left out */
    assert_string_equal(rstr(result(&a, 0), "deal_id"), "B");
    assert_string_equal(rstr(result(&a, 0), "status"), "warning");
    assert_int_equal(num(result(&a, 1), "line"), 3);
    assert_string_equal(rstr(result(&a, 1), "currency"), "EUR");
    const cJSON *tot = cJSON_GetObjectItem(a.j, "total_shortfall");
    assert_string_equal(rstr(tot, "USD"), "0.00");
    assert_string_equal(rstr(tot, "EUR"), "10.00");
    assert_int_equal(a.r->nlines, 3); /* every line is logged */
    assert_null(a.r->lines[0].rep);
    assert_string_equal(a.r->lines[0].codes_json, "[]");
    assert_string_equal(a.r->lines[0].shortfall, "0.00");
    done(&a);

    a = post(&f, "application/json", body, 1);
    assert_int_equal(nresults(&a), 3);
    assert_string_equal(rstr(result(&a, 0), "status"), "clean");
    done(&a);

    char with_all[1024];
    snprintf(with_all, sizeof with_all, "%.*s, \"all\": true}", (int)strlen(body) - 1, body);
    a = post(&f, "application/json", with_all, 0);
    assert_int_equal(nresults(&a), 3);
    done(&a);

    a = post(&f, "application/json", "{\"lines\": []}", 0);
    assert_int_equal(a.r->status, 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(a.j, "ok")));
    assert_int_equal(num(a.j, "checked"), 0);
    done(&a);
}

static void test_json_numbers(void **state)
{
    (void)state;
    fixture f;
    setup_cfg(&f);
    /* exact numbers within the limit are money; 0.1 is a fraction rate */
    answer a = post(&f, "application/json",
                    "{\"deal_id\": \"N\", \"channel\": \"direct\", \"acv\": 123456.78, "
                    "\"commission_base\": 123456.78, \"rate\": 0.1, \"commission\": 12345.68}",
                    1);
    assert_int_equal(a.r->status, 200);
    assert_string_equal(rstr(result(&a, 0), "status"), "clean");
    assert_string_equal(rstr(result(&a, 0), "expected"), "12345.68");
    done(&a);

    expect_error(&f, "application/json",
                 "{\"deal_id\": \"N\", \"channel\": \"direct\", \"acv\": 1e13, \"commission\": 1}",
                 422, "invalid_field", "acv", "string");
    expect_error(&f, "application/json",
                 "{\"deal_id\": \"N\", \"channel\": \"direct\", \"acv\": 1.005, \"commission\": 1}",
                 422, "invalid_field", "acv", NULL);
    expect_error(&f, "application/json",
                 "{\"deal_id\": \"N\", \"channel\": \"direct\", \"acv\": 1, \"commission\": 1, "
                 "\"rate\": 10}",
                 422, "invalid_field", "rate", "ambiguous");
    expect_error(&f, "application/json",
                 "{\"deal_id\": \"N\", \"channel\": \"direct\", \"acv\": true, \"commission\": 1}",
                 422, "invalid_field", "acv", "string or number");
    expect_error(&f, "application/json",
                 "{\"deal_id\": 17, \"channel\": \"direct\", \"acv\": 1, \"commission\": 1}", 422,
                 "invalid_field", "deal_id", "must be a string");

    /* with rate_format = percent a bare 10 is 10% */
    f.c.comp.rate_format = DG_RATE_BARE_PERCENT;
    a = post(&f, "application/json",
             "{\"deal_id\": \"N\", \"channel\": \"direct\", \"acv\": \"100\", \"commission\": "
             "\"10\", \"commission_base\": \"100\", \"rate\": 10}",
             1);
    assert_string_equal(rstr(result(&a, 0), "status"), "clean");
    done(&a);
    a = post(&f, "application/json",
             "{\"deal_id\": \"N\", \"channel\": \"direct\", \"acv\": \"100\", \"commission\": "
             "\"10\", \"commission_base\": \"100\", \"rate\": \"10\"}",
             1);
    assert_string_equal(rstr(result(&a, 0), "status"), "clean");
    done(&a);
    f.c.comp.rate_format = DG_RATE_BARE_FRACTION;
    a = post(&f, "application/json",
             "{\"deal_id\": \"N\", \"channel\": \"direct\", \"acv\": \"100\", \"commission\": "
             "\"100\", \"commission_base\": \"100\", \"rate\": \"1\"}",
             1);
    assert_string_equal(rstr(result(&a, 0), "status"), "clean");
    done(&a);
}

static void test_json_errors(void **state)
{
    (void)state;
    fixture f;
    setup_cfg(&f);
    expect_error(&f, "application/json", "{\"deal_id\": \"x\",", 400, "invalid_json", "byte", NULL);
    expect_error(&f, "application/json",
                 "{\"deal_id\": \"A\", \"deal_id\": \"B\", \"channel\": \"direct\", \"acv\": 1, "
                 "\"commission\": 1}",
                 422, "invalid_field", "deal_id", NULL);
    expect_error(&f, "application/json",
                 "{\"deal_id\": \"A\", \"channel\": \"direct\", \"acv\": 1, \"ACV\": 2, "
                 "\"commission\": 1}",
                 422, "invalid_field", "\"acv\" and \"ACV\"", NULL);
    expect_error(&f, "application/json",
                 "{\"deal_id\": \"A\", \"channel\": \"direct\", \"acv\": 1, \"Contract Value\": "
                 "2, \"commission\": 1}",
                 422, "invalid_field", "both name field acv", NULL);
    expect_error(&f, "application/json",
                 "{\"lines\": [{\"deal_id\": \"A\", \"channel\": \"direct\", \"acv\": 1, "
                 "\"commission\": 1}, {\"deal_id\": \"B\", \"channel\": \"direct\", \"acv\": "
                 "1}]}",
                 422, "invalid_field", "lines[1].commission", "required");
    expect_error(&f, "application/json",
                 "{\"deal_id\": \"A\", \"channel\": \"partner\", \"acv\": 1, \"commission\": 1}",
                 422, "invalid_field", "channel", "neither direct nor marketplace");
    expect_error(&f, "application/json",
                 "{\"deal_id\": \"A\", \"channel\": \"direct\", \"acv\": 1, \"commission\": 1, "
                 "\"currency\": \"dollars\"}",
                 422, "invalid_field", "currency", "ISO 4217");
    expect_error(&f, "application/json",
                 "{\"deal_id\": \"A\", \"channel\": \"direct\", \"acv\": 1, \"commission\": 1, "
                 "\"split\": \"150%\"}",
                 422, "invalid_field", "split", "above 100%");
    expect_error(&f, "application/json", "[1, 2]", 422, "invalid_field", "must be an object", NULL);
    expect_error(&f, "application/json", "{\"lines\": [1]}", 422, "invalid_field", "lines[0]",
                 NULL);
    expect_error(&f, "application/json", "{\"lines\": {}}", 422, "invalid_field", "array", NULL);
    expect_error(&f, "application/json", "{\"all\": 1, \"lines\": []}", 422, "invalid_field", "all",
                 NULL);
    expect_error(&f, "application/json", "{\"deal_id\": \"A\\u0000B\"}", 422, "invalid_field", NULL,
                 NULL);
    expect_error(&f, "application/xml", "<x/>", 415, "unsupported_media_type", "text/csv", NULL);
    expect_error(&f, NULL, "{}", 415, "unsupported_media_type", NULL, NULL);

    /* a marketplace line with no direct rate anywhere */
    f.c.comp.nplans = 0;
    expect_error(&f, "application/json",
                 "{\"lines\": [{\"deal_id\": \"A\", \"channel\": \"marketplace\", \"acv\": 1, "
                 "\"commission\": 1}]}",
                 422, "invalid_field", "lines[0]", "direct_rate");
}

/* ---------------------------------------------------------------- CSV */

static void test_csv_basic(void **state)
{
    (void)state;
    fixture f;
    setup_cfg(&f);
    const char *csv = "\xEF\xBB\xBF"
                      "Opportunity ID,Rep,CHANNEL,Cloud,Contract Value,Commission_Base,Rate,"
                      "Commission,Notes\r\n"
                      "D-1,jane,marketplace,aws,\"100,000.00\",\"97,000.00\",10%,\"9,700.00\","
                      "\"said \"\"ok\"\", fine\"\r\n"
                      "D-2,joe,direct,,\"1,250,000.00\",,,\"125,000.00\",\r\n"
                      "\"D-3\nsecond line\",\"ann, jr\",Marketplace,aws,100000,100000,0.10,10000,"
                      "x\r\n"
                      ",,,,,,,,\r\n"
                      "D-4,bob,marketplace,aws,100000,,,9000,last";
    answer a = post(&f, "text/csv", csv, 0);
    if (a.r->status != 200) fail_msg("%s", a.r->body);
    assert_int_equal(num(a.j, "checked"), 4);
    assert_int_equal(num(a.j, "violations"), 2);
    assert_int_equal(nresults(&a), 2);
    const cJSON *r = result(&a, 0);
    assert_int_equal(num(r, "line"), 2);
    assert_string_equal(rstr(r, "deal_id"), "D-1");
    assert_string_equal(rstr(r, "shortfall"), "300.00");
    r = result(&a, 1);
    assert_string_equal(rstr(r, "deal_id"), "D-4");
    assert_int_equal(num(r, "line"), 7); /* D-3 spans lines 4-5, line 6 is blank cells */
    assert_string_equal(rstr(r, "shortfall"), "1000.00");
    assert_string_equal(rstr(cJSON_GetObjectItem(a.j, "total_shortfall"), "USD"), "1300.00");
    assert_int_equal(a.r->nlines, 4);
    assert_string_equal(a.r->lines[2].deal_id, "D-3\nsecond line");
    assert_string_equal(a.r->lines[2].rep, "ann, jr");
    done(&a);

    /* header only: nothing to check, ok */
    a = post(&f, "text/csv", "deal_id,channel,acv,commission\n", 0);
    assert_int_equal(a.r->status, 200);
    assert_int_equal(num(a.j, "checked"), 0);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(a.j, "ok")));
    done(&a);
}

static void test_csv_currencies(void **state)
{
    (void)state;
    fixture f;
    setup_cfg(&f);
    const char *csv = "deal_id,channel,acv,commission,currency,split\n"
                      "J-1,marketplace,\"1,000,000\",99999,JPY,\n"
                      "K-1,marketplace,1000.000,99.989,kwd,\n"
                      "U-1,marketplace,100000,4850,USD,50%\n";
    answer a = post(&f, "text/csv", csv, 1);
    if (a.r->status != 200) fail_msg("%s", a.r->body);
    assert_string_equal(rstr(result(&a, 0), "expected"), "100000");
    assert_string_equal(rstr(result(&a, 0), "shortfall"), "1");
    assert_string_equal(rstr(result(&a, 1), "expected"), "100.000");
    assert_string_equal(rstr(result(&a, 1), "shortfall"), "0.011");
    assert_string_equal(rstr(result(&a, 2), "expected"), "5000.00");
    assert_string_equal(rstr(result(&a, 2), "shortfall"), "150.00");
    const cJSON *tot = cJSON_GetObjectItem(a.j, "total_shortfall");
    assert_string_equal(rstr(tot, "JPY"), "1");
    assert_string_equal(rstr(tot, "KWD"), "0.011");
    assert_string_equal(rstr(tot, "USD"), "150.00");
    done(&a);

    expect_error(&f, "text/csv", "deal_id,channel,acv,commission,currency\nJ,direct,100.5,1,JPY\n",
                 422, "invalid_field", "line 2, column \"acv\"", "100.5");
    expect_error(&f, "text/csv", "deal_id,channel,acv,commission,currency\nK,direct,1.0001,1,KWD\n",
                 422, "invalid_field", "line 2, column \"acv\"", NULL);
}

static void test_csv_errors(void **state)
{
    (void)state;
    fixture f;
    setup_cfg(&f);
    expect_error(&f, "text/csv", "deal_id,channel,acv,commission\nD,direct,1\"0,1\n", 400,
                 "invalid_csv", "line 2", "malformed");
    expect_error(&f, "text/csv", "deal_id,channel,acv,commission\nD,direct,\"10\"x,1\n", 400,
                 "invalid_csv", "line 2, column 3", NULL);
    expect_error(&f, "text/csv", "deal_id,channel,acv,commission\nD,direct,\"10,1\n", 400,
                 "invalid_csv", "unterminated", "line 2");
    expect_error(&f, "text/csv", "deal_id,channel,commission\nD,direct,1\n", 422, "invalid_field",
                 "line 1", "\"Contract Value\" (acv)");
    expect_error(&f, "text/csv", "deal_id,Channel,channel,acv,commission\n", 422, "invalid_field",
                 "both name field channel", NULL);
    expect_error(&f, "text/csv",
                 "deal_id,channel,acv,commission,rate\nA,direct,1,1,5%\nB,direct,1,1,10\n", 422,
                 "invalid_field", "line 3, column \"rate\"", "10");
    expect_error(&f, "text/csv", "deal_id,channel,Contract Value,commission\nA,direct,ten,1\n", 422,
                 "invalid_field", "line 2, column \"Contract Value\" (acv)", "ten");
    expect_error(&f, "text/csv", "deal_id,channel,acv,commission\nA,direct,1,1,extra\n", 422,
                 "invalid_field", "line 2, column 5", "more fields");
    expect_error(&f, "text/csv", "deal_id,channel,acv,commission\n,direct,1,1\n", 422,
                 "invalid_field", "line 2, column \"deal_id\"", "required");
    expect_error(&f, "text/csv", "deal_id,channel,acv,commission\nA,direct,1,\"1,0\"\n", 422,
                 "invalid_field", "column \"commission\"", NULL);
    expect_error(&f, "text/csv", "", 422, "invalid_field", "no header", NULL);
    {
        static const char nul[] = "deal_id,channel,acv,commission\nA\0B,direct,1,1\n";
        gate_comp_result *r = NULL;
        char err[256];
        assert_int_equal(
            gate_comp_check_body(&f.c, "text/csv", nul, sizeof nul - 1, 0, &r, err, sizeof err),
            DG_OK);
        assert_int_equal(r->status, 422);
        assert_non_null(strstr(err, "NUL"));
        gate_comp_result_free(r);
    }

    char big[600];
    memset(big, 'x', sizeof big);
    big[sizeof big - 1] = '\0';
    char body[1024];
    snprintf(body, sizeof body, "deal_id,channel,acv,commission\n%s,direct,1,1\n", big);
    expect_error(&f, "text/csv", body, 422, "invalid_field", "line 2, column \"deal_id\"",
                 "longer than 256");
    /* long cells of columns we do not read are fine */
    snprintf(body, sizeof body, "deal_id,channel,acv,commission,notes\nA,direct,1,1,%s\n", big);
    answer a = post(&f, "text/csv", body, 0);
    assert_int_equal(a.r->status, 200);
    done(&a);
}

/* ---------------------------------------------------------------- streaming */

typedef struct {
    size_t n;
    size_t lines[8];
    char deals[8][32];
    int64_t shortfall[8];
} seen;

static dg_err on_item(void *arg, const gate_comp_item *it, char *err, size_t errlen)
{
    seen *s = arg;
    (void)err;
    (void)errlen;
    if (s->n < 8) {
        s->lines[s->n] = it->line;
        snprintf(s->deals[s->n], sizeof s->deals[0], "%s", it->deal_id);
        s->shortfall[s->n] = it->v.shortfall;
    }
    s->n++;
    return DG_OK;
}

static dg_err stop_at_two(void *arg, const gate_comp_item *it, char *err, size_t errlen)
{
    (void)arg;
    if (it->line == 3) return dg_errf(err, errlen, DG_EIO, "sink failed");
    return DG_OK;
}

static void test_csv_stream_any_split(void **state)
{
    (void)state;
    fixture f;
    char err[512];
    rules_comp_ctx ctx;
    setup_cfg(&f);
    assert_int_equal(rules_comp_ctx_init(&ctx, &f.c, err, sizeof err), DG_OK);
    const char *csv = "\xEF\xBB\xBF"
                      "deal_id,channel,acv,commission\r\n"
                      "\r\n"
                      "\"A\r\nB\",marketplace,\"1,000.00\",90\r\n"
                      "C,direct,5,1\r\n"
                      "D,marketplace,100,9";
    size_t len = strlen(csv);
    for (size_t step = 1; step <= len; step++) {
        gate_comp_csv *s = NULL;
        seen sn;
        memset(&sn, 0, sizeof sn);
        assert_int_equal(gate_comp_csv_new(&ctx, on_item, &sn, &s), DG_OK);
        for (size_t off = 0; off < len; off += step) {
            size_t n = len - off < step ? len - off : step;
            dg_err rc = gate_comp_csv_feed(s, csv + off, n, err, sizeof err);
            if (rc != DG_OK) fail_msg("step %zu: %s", step, err);
        }
        assert_int_equal(gate_comp_csv_finish(s, err, sizeof err), DG_OK);
        gate_comp_csv_free(s);
        assert_int_equal(sn.n, 3);
        assert_int_equal(sn.lines[0], 3);
        assert_string_equal(sn.deals[0], "A\r\nB");
        assert_int_equal(sn.shortfall[0], 1000);
        assert_int_equal(sn.lines[1], 5);
        assert_int_equal(sn.lines[2], 6);
        assert_int_equal(sn.shortfall[2], 100);
    }

    /* a callback error stops the stream and is returned as is */
    gate_comp_csv *s = NULL;
    assert_int_equal(gate_comp_csv_new(&ctx, stop_at_two, NULL, &s), DG_OK);
    const char *two = "deal_id,channel,acv,commission\nA,direct,1,1\nB,direct,1,1\nC,direct,1,1\n";
    assert_int_equal(gate_comp_csv_feed(s, two, strlen(two), err, sizeof err), DG_EIO);
    assert_string_equal(err, "sink failed");
    assert_int_equal(gate_comp_csv_feed(s, "x", 1, err, sizeof err), DG_EIO);
    gate_comp_csv_free(s);

    /* a BOM-like prefix that is not a BOM is data */
    seen sn;
    memset(&sn, 0, sizeof sn);
    assert_int_equal(gate_comp_csv_new(&ctx, on_item, &sn, &s), DG_OK);
    const char *nobom = "\xEF"
                        "deal_id,channel,acv,commission\n";
    gate_comp_csv_feed(s, nobom, strlen(nobom), err, sizeof err);
    assert_int_equal(gate_comp_csv_finish(s, err, sizeof err), DG_EINVAL); /* no deal_id */
    gate_comp_csv_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_one_line),     cmocka_unit_test(test_json_lines_and_all),
        cmocka_unit_test(test_json_numbers),      cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_csv_basic),         cmocka_unit_test(test_csv_currencies),
        cmocka_unit_test(test_csv_errors),        cmocka_unit_test(test_csv_stream_any_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
