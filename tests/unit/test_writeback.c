/* test_writeback.c — gate_writeback_payload(), the pure half of the CRM write-back: which
 * decisions call for one (a block in enforce mode whose revert value differs from the value
 * the deal arrived with, for a CRM whose section says writeback = yes) and what the job
 * carries. gate_decide queues exactly this payload with the decision (test_dlog.c covers the
 * log's side; tests/blackbox/test_writeback.py the whole path). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/cfg.h"
#include "gate/writeback.h"
#include "cfg_fixture.h"

static const char config_text[] = "[server]\n"
                                  "listen = 127.0.0.1:8080\n"
                                  "[auth]\n"
                                  "open = yes\n"
                                  "[pipeline]\n"
                                  "stages = Qualification, Demo, Closed Won, Closed Lost\n"
                                  "won = Closed Won\n"
                                  "lost = Closed Lost\n"
                                  "[salesforce]\n"
                                  "writeback = yes\n"
                                  "instance_url = https://x.my.salesforce.com\n"
                                  "client_id = id\n"
                                  "client_secret = sec\n";

static int setup(void **state)
{
    (void)state;
    return cfg_fixture_load(config_text);
}

/* A decision object as gate_decide builds it (the members the write-back reads). */
static cJSON *decision(const char *outcome, const char *mode, const char *revert, const char *to)
{
    cJSON *d = cJSON_CreateObject();
    assert_non_null(d);
    cJSON_AddStringToObject(d, "decision_id", "dg_01m8fww2rv5pzyf6wqyjjmv3ey");
    cJSON_AddStringToObject(d, "outcome", outcome);
    cJSON_AddStringToObject(d, "mode", mode);
    cJSON_AddStringToObject(d, "message", "Register this deal in AWS ACE before moving to Demo.");
    cJSON_AddStringToObject(d, "opportunity_id", "006R");
    if (revert)
        cJSON_AddStringToObject(d, "revert_to_value", revert);
    else
        cJSON_AddNullToObject(d, "revert_to_value");
    cJSON_AddStringToObject(d, "to_value", to);
    return d;
}

/* The payload for crm and d (NULL when none), d freed. */
static char *payload_of(const char *crm, cJSON *d)
{
    char *p = (char *)"unset";
    assert_int_equal(gate_writeback_payload(cfg, crm, d, &p), DG_OK);
    cJSON_Delete(d);
    return p;
}

static void test_block_calls_for_one(void **state)
{
    (void)state;
    char *p = payload_of("salesforce", decision("block", "enforce", "Qualification", "Demo"));
    assert_non_null(p);
    cJSON *j = cJSON_Parse(p);
    free(p);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "opportunity_id")->valuestring, "006R");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "stage_value")->valuestring,
                        "Qualification");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "blocked_value")->valuestring, "Demo");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "reason")->valuestring,
                        "Register this deal in AWS ACE before moving to Demo.");
    cJSON_Delete(j);
}

static void test_nothing_called_for(void **state)
{
    (void)state;
    /* allowed; report mode; no revert value; already at the revert value */
    assert_null(payload_of("salesforce", decision("allow", "enforce", "Qualification", "Demo")));
    assert_null(payload_of("salesforce", decision("block", "report", "Qualification", "Demo")));
    assert_null(payload_of("salesforce", decision("block", "enforce", NULL, "Demo")));
    assert_null(payload_of("salesforce", decision("block", "enforce", "", "Demo")));
    assert_null(payload_of("salesforce", decision("block", "enforce", "Demo", "Demo")));
    /* a CRM whose write-back is off, the canonical adapter, no CRM */
    assert_null(payload_of("hubspot", decision("block", "enforce", "Qualification", "Demo")));
    assert_null(payload_of("stage", decision("block", "enforce", "Qualification", "Demo")));
    assert_null(payload_of(NULL, decision("block", "enforce", "Qualification", "Demo")));
    char *p = (char *)"unset";
    assert_int_equal(gate_writeback_payload(cfg, "salesforce", NULL, &p), DG_OK);
    assert_null(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_calls_for_one),
        cmocka_unit_test(test_nothing_called_for),
    };
    return cmocka_run_group_tests(tests, setup, cfg_fixture_free);
}
