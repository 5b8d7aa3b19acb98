/* test_adapters.c — the pure halves of the CRM adapters: Salesforce and HubSpot payloads to
 * the canonical event (field mapping, cloud and registration mapping, errors naming the
 * field) and decisions to each CRM's answer shape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/cfg.h"
#include "connectors/crm.h"
#include "gate/adapters.h"
#include "cfg_fixture.h"

static const char config_text[] =
    "[server]\n"
    "listen = 127.0.0.1:8080\n"
    "currency = EUR\n"
    "[auth]\n"
    "open = yes\n"
    "[pipeline]\n"
    "stages = Prospecting, Qualification, Demo, Closed Won, Closed Lost\n"
    "won = Closed Won\n"
    "lost = Closed Lost\n"
    "alias.qualifiedtobuy = Qualification\n"
    "alias.presentationscheduled = Demo\n"
    "[pipeline:partner]\n"
    "stages = Discovery, Demo, Closed Won, Closed Lost\n"
    "won = Closed Won\n"
    "lost = Closed Lost\n"
    "[rule:demo]\n"
    "type = registration\n"
    "stage = Demo\n"
    "pipelines = default\n"
    "accept.aws-prod = Approved\n"
    "[cloud:aws-prod]\n"
    "connector = ace\n"
    "endpoint = https://partnercentral-selling.us-east-1.api.aws\n"
    "access_key_id = AKIDEXAMPLE\n"
    "secret_access_key = secret\n"
    "[cloud:azure]\n"
    "connector = none\n"
    "[cloud:gcp]\n"
    "connector = none\n"
    "[salesforce]\n"
    "cloud.Amazon Web Services = aws-prod\n"
    "cloud.Microsoft = azure\n"
    "[hubspot]\n"
    "property.clouds = cloud_programs\n"
    "property.registration.aws-prod = ace_id\n"
    "property.account = company\n"
    "cloud.aws_marketplace = aws-prod\n";

static int setup(void **state)
{
    (void)state;
    return cfg_fixture_load(config_text);
}

/* Parses json and runs the Salesforce adapter; returns its result, err filled. */
static dg_err sf(const char *json, dg_event *ev, char *err, size_t n)
{
    cJSON *root = cJSON_Parse(json);
    assert_non_null(root);
    err[0] = '\0';
    dg_err rc = gate_sf_event(cfg, root, ev, err, n);
    cJSON_Delete(root);
    return rc;
}

static dg_err hs(const char *json, dg_event *ev, gate_hs_kind *kind, char *err, size_t n)
{
    cJSON *root = cJSON_Parse(json);
    assert_non_null(root);
    err[0] = '\0';
    dg_err rc = gate_hs_event(cfg, root, ev, kind, err, n);
    cJSON_Delete(root);
    return rc;
}

static const char *reg_of(const dg_event *ev, const char *cloud)
{
    for (size_t i = 0; i < ev->nregs; i++)
        if (strcmp(ev->regs[i].cloud, cloud) == 0) return ev->regs[i].id;
    return NULL;
}

static void test_sf_full_body(void **state)
{
    (void)state;
    dg_event ev;
    char err[256];
    assert_int_equal(
        sf("{\"opportunityId\":\"006A\",\"name\":\"Acme\",\"accountName\":\"Acme Corp\","
           "\"ownerEmail\":\"j@x.com\",\"amount\":1200.5,\"currencyIsoCode\":\"USD\","
           "\"stageName\":\"Demo\",\"priorStageName\":\"Qualification\","
           "\"pipeline\":\"partner\",\"cloudPrograms\":\" amazon web services ;Microsoft\","
           "\"aceOpportunityId\":\"O123\",\"gcpOpportunityId\":null,\"source\":\"Cloud\","
           "\"eventId\":\"e-1\",\"unknownField\":1}",
           &ev, err, sizeof err),
        DG_OK);
    assert_string_equal(ev.opp_id, "006A");
    assert_string_equal(ev.name, "Acme");
    assert_string_equal(ev.account, "Acme Corp");
    assert_string_equal(ev.owner, "j@x.com");
    assert_string_equal(ev.to_stage, "Demo");
    assert_string_equal(ev.from_stage, "Qualification");
    assert_string_equal(ev.pipeline, "partner");
    assert_string_equal(ev.source, "cloud");
    assert_string_equal(ev.event_id, "e-1");
    assert_string_equal(ev.currency, "USD");
    assert_true(ev.has_amount);
    assert_int_equal(ev.amount, 120050);
    assert_int_equal(ev.nclouds, 2);
    assert_string_equal(ev.clouds[0], "aws-prod");
    assert_string_equal(ev.clouds[1], "azure");
    /* aceOpportunityId belongs to the cloud whose connector is ace, whatever its key */
    assert_string_equal(reg_of(&ev, "aws-prod"), "O123");
    dg_event_free(&ev);
}

static void test_sf_registration_fields_without_connector_use_keys(void **state)
{
    (void)state;
    dg_event ev;
    char err[256];
    assert_int_equal(sf("{\"opportunityId\":\"006B\",\"stageName\":\"Demo\","
                        "\"partnerCenterReferralId\":\"ref-1\",\"gcpOpportunityId\":\"g-1\","
                        "\"amount\":\"99.99\"}",
                        &ev, err, sizeof err),
                     DG_OK);
    assert_string_equal(reg_of(&ev, "azure"), "ref-1");
    assert_string_equal(reg_of(&ev, "gcp"), "g-1");
    assert_int_equal(ev.nclouds, 2);         /* a registration puts the deal in that program */
    assert_string_equal(ev.currency, "EUR"); /* [server] currency */
    assert_int_equal(ev.amount, 9999);
    dg_event_free(&ev);
}

static void test_sf_errors_name_the_field(void **state)
{
    (void)state;
    static const struct {
        const char *body, *want;
    } cases[] = {
        {"{\"stageName\":\"Demo\"}", "opportunityId"},
        {"{\"opportunityId\":\"006C\"}", "stageName"},
        {"{\"opportunityId\":\"006C\",\"stageName\":\"Demo\",\"cloudPrograms\":\"AWS;Oracle\"}",
         "\"AWS\""},
        {"{\"opportunityId\":\"006C\",\"stageName\":\"Demo\",\"cloudPrograms\":7}",
         "cloudPrograms"},
        {"{\"opportunityId\":\"006C\",\"stageName\":\"Demo\",\"source\":\"direct\"}", "source"},
        {"{\"opportunityId\":\"006C\",\"stageName\":\"Demo\",\"pipeline\":\"emea\"}", "pipeline"},
        {"{\"opportunityId\":\"006C\",\"stageName\":\"Demo\",\"amount\":\"1e3\"}", "amount"},
        {"{\"opportunityId\":\"006C\",\"stageName\":\"Demo\",\"currencyIsoCode\":\"EURO\"}",
         "currency"},
        {"{\"opportunityId\":\"006C\",\"stageName\":[\"Demo\"]}", "stageName"},
        {"{\"opportunityId\":\"006\\u0001C\",\"stageName\":\"Demo\"}", "opportunityId"},
        {"[1]", "JSON object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dg_event ev;
        char err[256];
        assert_int_equal(sf(cases[i].body, &ev, err, sizeof err), DG_EINVAL);
        if (!strstr(err, cases[i].want))
            fail_msg("case %zu: \"%s\" lacks %s", i, err, cases[i].want);
        dg_event_free(&ev);
    }
}

static void test_sf_response_is_flat_scalars(void **state)
{
    (void)state;
    cJSON *d = cJSON_Parse("{\"decision_id\":\"dg_1\",\"allowed\":false,\"outcome\":\"block\","
                           "\"message\":\"Register it.\",\"revert_to\":\"Qualification\","
                           "\"revert_to_value\":\"qualifiedtobuy\",\"reasons\":[{\"code\":"
                           "\"registration_missing\"},{\"code\":\"other\"}]}");
    cJSON *r = gate_sf_response(d);
    char *t = cJSON_PrintUnformatted(r);
    assert_string_equal(t, "{\"allowed\":false,\"outcome\":\"block\",\"message\":\"Register it.\","
                           "\"revertTo\":\"qualifiedtobuy\",\"decisionId\":\"dg_1\","
                           "\"reasonCode\":\"registration_missing\"}");
    free(t);
    cJSON_Delete(r);
    /* custom action: the same fields, every one a string */
    r = gate_hs_response(d, GATE_HS_CUSTOM_ACTION);
    t = cJSON_PrintUnformatted(r);
    assert_string_equal(t, "{\"outputFields\":{\"allowed\":\"false\",\"outcome\":\"block\","
                           "\"message\":\"Register it.\",\"revertTo\":\"qualifiedtobuy\","
                           "\"decisionId\":\"dg_1\",\"reasonCode\":\"registration_missing\"}}");
    free(t);
    cJSON_Delete(r);
    cJSON_Delete(d);
    /* allowed: no revert value even if one is present */
    d = cJSON_Parse("{\"decision_id\":\"dg_2\",\"allowed\":true,\"outcome\":\"allow\","
                    "\"message\":\"\",\"revert_to_value\":\"x\",\"reasons\":[]}");
    r = gate_sf_response(d);
    assert_string_equal(cJSON_GetObjectItem(r, "revertTo")->valuestring, "");
    assert_string_equal(cJSON_GetObjectItem(r, "reasonCode")->valuestring, "");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(r, "allowed")));
    cJSON_Delete(r);
    cJSON_Delete(d);
}

static void test_hs_custom_action(void **state)
{
    (void)state;
    dg_event ev;
    gate_hs_kind kind;
    char err[256];
    assert_int_equal(
        hs("{\"callbackId\":\"cb-1\",\"origin\":{\"portalId\":1},\"object\":{\"objectId\":904,"
           "\"objectType\":\"DEAL\",\"properties\":{\"dealstage\":\"presentationscheduled\","
           "\"pipeline\":\"default\",\"dealname\":\"Acme\",\"amount\":\"1000\","
           "\"deal_currency_code\":\"USD\",\"cloud_programs\":\"aws_marketplace;azure\","
           "\"hubspot_owner_id\":12345}},\"inputFields\":{\"ace_id\":\"O77\",\"company\":\"Acme "
           "Corp\"}}",
           &ev, &kind, err, sizeof err),
        DG_OK);
    assert_int_equal(kind, GATE_HS_CUSTOM_ACTION);
    assert_string_equal(ev.event_id, "cb-1");
    assert_string_equal(ev.opp_id, "904");
    assert_string_equal(ev.to_stage, "presentationscheduled");
    assert_null(ev.from_stage);
    assert_ptr_equal(cfg_pipeline_find(cfg, ev.pipeline), &cfg->pipelines[0]); /* "default" */
    assert_string_equal(ev.name, "Acme");
    assert_string_equal(ev.owner, "12345");
    assert_string_equal(ev.account, "Acme Corp"); /* from inputFields */
    assert_int_equal(ev.amount, 100000);
    assert_string_equal(ev.currency, "USD");
    assert_int_equal(ev.nclouds, 2);
    assert_string_equal(reg_of(&ev, "aws-prod"), "O77");
    dg_event_free(&ev);
}

static void test_hs_webhook_shapes(void **state)
{
    (void)state;
    dg_event ev;
    gate_hs_kind kind;
    char err[256];
    /* the deal object, properties as {"value": ...} */
    assert_int_equal(
        hs("{\"objectId\":55,\"properties\":{\"dealstage\":{\"value\":\"qualifiedtobuy\","
           "\"timestamp\":1},\"pipeline\":{\"value\":\"partner\"},\"amount\":"
           "{\"value\":\"\"}}}",
           &ev, &kind, err, sizeof err),
        DG_OK);
    assert_int_equal(kind, GATE_HS_WEBHOOK);
    assert_null(ev.event_id);
    assert_string_equal(ev.opp_id, "55");
    assert_string_equal(ev.to_stage, "qualifiedtobuy");
    assert_string_equal(ev.pipeline, "partner");
    assert_false(ev.has_amount);
    dg_event_free(&ev);
    /* a customised body: the top level is the property map */
    assert_int_equal(hs("{\"hs_object_id\":\"56\",\"dealstage\":\"presentationscheduled\","
                        "\"amount\":250}",
                        &ev, &kind, err, sizeof err),
                     DG_OK);
    assert_string_equal(ev.opp_id, "56");
    assert_int_equal(ev.amount, 25000);
    dg_event_free(&ev);
    /* legacy deal objects carry dealId */
    assert_int_equal(hs("{\"dealId\":57,\"properties\":{\"dealstage\":{\"value\":\"x\"}}}", &ev,
                        &kind, err, sizeof err),
                     DG_OK);
    assert_string_equal(ev.opp_id, "57");
    dg_event_free(&ev);
}

static void test_hs_errors_name_the_field(void **state)
{
    (void)state;
    static const struct {
        const char *body, *want;
    } cases[] = {
        {"{\"objectId\":1,\"properties\":{}}", "properties.dealstage"},
        {"{\"properties\":{\"dealstage\":\"x\"}}", "objectId"},
        {"{\"callbackId\":\"c\"}", "object"},
        {"{\"callbackId\":\"\",\"object\":{}}", "callbackId"},
        {"{\"callbackId\":\"c\",\"object\":{\"objectId\":1,\"objectType\":\"CONTACT\"}}",
         "objectType"},
        {"{\"callbackId\":\"c\",\"object\":{\"objectId\":1,\"properties\":{\"dealstage\":\"x\","
         "\"cloud_programs\":\"oracle\"}}}",
         "\"oracle\""},
        {"{\"objectId\":1,\"properties\":{\"dealstage\":\"x\",\"pipeline\":\"123\"}}", "123"},
        {"{\"objectId\":1,\"properties\":{\"dealstage\":\"x\",\"amount\":\"ten\"}}",
         "properties.amount"},
        {"{\"objectId\":1,\"properties\":{\"dealstage\":{\"value\":[1]}}}", "properties.dealstage"},
        {"{\"objectId\":1,\"properties\":7}", "properties"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dg_event ev;
        gate_hs_kind kind;
        char err[256];
        assert_int_equal(hs(cases[i].body, &ev, &kind, err, sizeof err), DG_EINVAL);
        if (!strstr(err, cases[i].want))
            fail_msg("case %zu: \"%s\" lacks %s", i, err, cases[i].want);
        dg_event_free(&ev);
    }
}

static void test_hs_stage_property_default(void **state)
{
    (void)state;
    assert_string_equal(gate_hs_stage_property(cfg), "dealstage");
}

static void test_crm_cut_reason_keeps_utf8_whole(void **state)
{
    (void)state;
    char out[16];
    crm_cut_reason("abc\xc3\xa9"
                   "def",
                   4, out, sizeof out); /* "abcé": cut inside é */
    assert_string_equal(out, "abc");
    crm_cut_reason("abc\xc3\xa9"
                   "def",
                   5, out, sizeof out);
    assert_string_equal(out, "abc\xc3\xa9");
    crm_cut_reason("short", 255, out, sizeof out);
    assert_string_equal(out, "short");
    crm_cut_reason("0123456789abcdefXYZ", 255, out, sizeof out); /* the buffer bounds too */
    assert_string_equal(out, "0123456789abcde");
    crm_cut_reason(NULL, 10, out, sizeof out);
    assert_string_equal(out, "");
    assert_ptr_equal(crm_ops_find("salesforce"), &crm_salesforce_ops);
    assert_ptr_equal(crm_ops_find("hubspot"), &crm_hubspot_ops);
    assert_null(crm_ops_find("pipedrive"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sf_full_body),
        cmocka_unit_test(test_sf_registration_fields_without_connector_use_keys),
        cmocka_unit_test(test_sf_errors_name_the_field),
        cmocka_unit_test(test_sf_response_is_flat_scalars),
        cmocka_unit_test(test_hs_custom_action),
        cmocka_unit_test(test_hs_webhook_shapes),
        cmocka_unit_test(test_hs_errors_name_the_field),
        cmocka_unit_test(test_hs_stage_property_default),
        cmocka_unit_test(test_crm_cut_reason_keeps_utf8_whole),
    };
    return cmocka_run_group_tests(tests, setup, cfg_fixture_free);
}
