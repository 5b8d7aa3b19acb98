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

#include "config/err.h"
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_numbers_and_raw_controls_are_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
