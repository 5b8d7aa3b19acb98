/* test_regressions.c — one test per bug that the fuzzers (fuzz/) and the hostile black-box
 * table (tests/blackbox/test_hostile.py) found in the gate's intake, at the level of the
 * function that had it. Each test names the finding; docs/internals/robustness.md lists
 * them all. Connector findings are in test_conn_parse.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "config/cfg.h"
#include "config/err.h"
#include "gate/adapters.h"
#include "gate/event.h"
#include "gate/json.h"

static dg_err parse(const char *text)
{
    cJSON *root = NULL;
    char err[320];
    dg_err rc = gate_json_parse(text, strlen(text), &root, err, sizeof err);
    cJSON_Delete(root);
    return rc;
}

/* cJSON reads numbers with strtod and strings up to the closing quote: "0123" was 123,
 * "-.5" was -0.5, and a raw newline or BEL inside a string passed (found by the hostile
 * table: `"amount": 0123` was decided as 123.00). JSON forbids both: 400 now. */
static void test_json_numbers_and_raw_controls_are_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"a\": 0123}", "{\"a\": -.5}", "{\"a\": 1.}",    "{\"a\": 1.e5}", "{\"a\": 01}",
        "{\"a\": -}",    "{\"a\": 1e}",  "{\"a\": 1e+}",   "[1.2.3]",       "[00]",
        "[-01]",         "[1e5e5]",      "[--1]",          "[1-2]",         "[0x10]",
        "[\"a\nb\"]",    "[\"a\x07\"]",  "{\"k\tey\": 1}", "[\"\x1f\"]",    "[1, 2, 0.]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (parse(bad[i]) != DG_EPARSE) fail_msg("accepted as JSON: %s", bad[i]);
    }
    static const char *const good[] = {
        "[0]",      "[-0]",          "[0.5]",      "[1e5]",
        "[1E+5]",   "[-1.25e-3]",    "[10]",       "[123456]",
        "[0e0]",    "[1, -2, 3.0]",  "{\"a\":1}",  "[\"a\\nb\\u0007\"]",
        "[true]",   "[ 1 ]",         "[\"0123\"]", "1",
        "-1.5E-07", "[\"\\\\\", 1]",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        if (parse(good[i]) != DG_OK) fail_msg("refused: %s", good[i]);
    }
}

/* Duplicate keys were found by comparing every pair of keys of an object: a 1 MiB body
 * (the default max_body) of 90,000 keys took 29 s of CPU in one worker thread (found
 * reviewing the intake for the hostile table, then timed). Now large objects are sorted: under a
 * second even in the sanitizer build, and a duplicate is still found wherever it is. */
static void test_json_many_keys_are_checked_fast(void **state)
{
    (void)state;
    const int n = 90000;
    size_t cap = (size_t)n * 16 + 64, len = 0;
    char *b = malloc(cap);
    assert_non_null(b);
    for (int dup = 0; dup < 2; dup++) {
        len = 0;
        b[len++] = '{';
        for (int i = 0; i < n; i++)
            len += (size_t)snprintf(b + len, cap - len, "%s\"k%d\":0", i ? "," : "", i);
        if (dup) len += (size_t)snprintf(b + len, cap - len, ",\"k%d\":1", n / 2);
        b[len++] = '}';
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        cJSON *root = NULL;
        char err[320];
        dg_err rc = gate_json_parse(b, len, &root, err, sizeof err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        cJSON_Delete(root);
        double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        assert_true(s < 2.0);
        assert_int_equal(rc, dup ? DG_EINVAL : DG_OK);
        if (dup) assert_non_null(strstr(err, "duplicate key \"k45000\""));
    }
    free(b);
}

/* 1 if s is valid UTF-8 without newlines. */
static int clean_line(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (*p == '\n' || *p == '\r') return 0;
        if (*p < 0x80) {
            p++;
            continue;
        }
        size_t n = (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
        if (n == 0 || *p == 0xc0 || *p == 0xc1 || *p > 0xf4) return 0;
        for (size_t i = 1; i < n; i++)
            if ((p[i] & 0xc0) != 0x80) return 0;
        p += n;
    }
    return 1;
}

/* Error messages quote input and go into JSON answers as they are; "%.64s" cut a
 * two-byte character in half ("unknown cloud \"a\xc3\xa9...\xc3\""), and so did the end
 * of a full buffer, so a 422 carried invalid UTF-8 that a CRM's strict JSON parser refuses
 * (found by fuzz_event's message check and the hostile table). dg_errf now leaves one line
 * of valid UTF-8, replacing what is left of a cut character (or any stray byte) by '?'. */
static void test_messages_are_valid_utf8(void **state)
{
    (void)state;
    char m[16];
    dg_errf(m, sizeof m, DG_EINVAL, "%.3s|", "\xc3\xa9\xc3\xa9"); /* cut inside the 2nd */
    assert_string_equal(m, "\xc3\xa9?|");
    dg_errf(m, 7, DG_EINVAL, "ab%s", "\xe2\x82\xac\xe2\x82\xac"); /* cut by the buffer */
    assert_string_equal(m, "ab\xe2\x82\xac?");
    dg_errf(m, sizeof m, DG_EINVAL, "x\xff\xed\xa0\x80\ny");
    assert_string_equal(m, "x???? y");
    dg_errf(m, sizeof m, DG_EINVAL, "\xf0\x9f\x98\x80 ok");
    assert_string_equal(m, "\xf0\x9f\x98\x80 ok");

    struct cfg *c = NULL;
    cfg_errors errs = {0};
    static const char ini[] = "[server]\nlisten = 127.0.0.1:1\n[auth]\nopen = yes\n"
                              "[pipeline]\nstages = A, Demo\n[cloud:aws]\nconnector = none\n";
    assert_int_equal(cfg_load_string("t.ini", ini, &c, &errs), DG_OK);
    char body[512], err[320];
    int n = snprintf(body, sizeof body, "{\"opportunity\": {\"id\": \"x\", \"clouds\": [\"a");
    for (int i = 0; i < 40; i++)
        n += snprintf(body + n, sizeof body - (size_t)n, "\xc3\xa9");
    snprintf(body + n, sizeof body - (size_t)n, "\"]}, \"to_stage\": \"Demo\"}");
    cJSON *root = NULL;
    dg_event ev;
    assert_int_equal(gate_json_parse(body, strlen(body), &root, err, sizeof err), DG_OK);
    assert_int_equal(gate_event_from_json(c, root, &ev, err, sizeof err), DG_EINVAL);
    assert_non_null(strstr(err, "unknown cloud"));
    assert_true(clean_line(err));
    dg_event_free(&ev);
    cJSON_Delete(root);
    cfg_free(c);
}

static const char adapters_ini[] = "[server]\nlisten = 127.0.0.1:1\n[auth]\nopen = yes\n"
                                   "[pipeline]\nstages = A, Demo\n"
                                   "[cloud:aws]\nconnector = none\n"
                                   "[salesforce]\ncloud.AWS = aws\n"
                                   "[hubspot]\nclient_secret = s\n";

/* Flow and HubSpot send some fields as numbers; the adapters read an integral number by
 * comparing it with its cast to long long before checking its range, so 1e999 (infinity
 * to cJSON) was cast: undefined behaviour, an abort in the sanitizer build (found by
 * fuzz_salesforce and fuzz_hubspot). Now out of range is checked first: a 422. */
static void test_adapters_huge_numbers_are_refused_without_ub(void **state)
{
    (void)state;
    struct cfg *c = NULL;
    cfg_errors errs = {0};
    assert_int_equal(cfg_load_string("t.ini", adapters_ini, &c, &errs), DG_OK);
    static const char *const sf[] = {
        "{\"opportunityId\": 1e999, \"stageName\": \"Demo\"}",
        "{\"opportunityId\": -1e999, \"stageName\": \"Demo\"}",
        "{\"opportunityId\": 9.3e18, \"stageName\": \"Demo\"}",
        "{\"opportunityId\": \"o\", \"stageName\": 1e300}",
    };
    for (size_t i = 0; i < sizeof sf / sizeof *sf; i++) {
        cJSON *root = NULL;
        dg_event ev;
        char err[320];
        assert_int_equal(gate_json_parse(sf[i], strlen(sf[i]), &root, err, sizeof err), DG_OK);
        assert_int_equal(gate_sf_event(c, root, &ev, err, sizeof err), DG_EINVAL);
        dg_event_free(&ev);
        cJSON_Delete(root);
    }
    static const char *const hs[] = {
        "{\"objectId\": 1e999, \"properties\": {\"dealstage\": \"Demo\"}}",
        "{\"objectId\": 1, \"properties\": {\"dealstage\": -1e999}}",
        "{\"callbackId\": \"c\", \"object\": {\"objectId\": 1e19}, "
        "\"inputFields\": {\"dealstage\": \"Demo\"}}",
    };
    for (size_t i = 0; i < sizeof hs / sizeof *hs; i++) {
        cJSON *root = NULL;
        dg_event ev;
        gate_hs_kind kind;
        char err[320];
        assert_int_equal(gate_json_parse(hs[i], strlen(hs[i]), &root, err, sizeof err), DG_OK);
        assert_int_equal(gate_hs_event(c, root, &ev, &kind, err, sizeof err), DG_EINVAL);
        dg_event_free(&ev);
        cJSON_Delete(root);
    }
    cfg_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_numbers_and_raw_controls_are_malformed),
        cmocka_unit_test(test_adapters_huge_numbers_are_refused_without_ub),
        cmocka_unit_test(test_json_many_keys_are_checked_fast),
        cmocka_unit_test(test_messages_are_valid_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
