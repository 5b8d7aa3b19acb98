/* test_cfg.c — the config loader: the shipped default, every error with its exact
 * "path:line: message", several at once, ${ENV}, @secret files, inih's traps (long lines,
 * ':' delimiters, indented lines, BOM, CRLF), aliases and look-ups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/cfg.h"

/* A valid config; lines appended after it start at line 10. BASE_REST is BASE without its
 * first line "[server]", for tests that put keys of their own into [server]. AUTH_CLOUD has
 * no [pipeline], for tests that write their own. */
#define AUTH_CLOUD                                                                                 \
    "[auth]\n"                                                                                     \
    "webhook_tokens = w1\n"                                                                        \
    "reader_tokens = r1\n"                                                                         \
    "[cloud:aws]\n"                                                                                \
    "connector = none\n"
#define BASE_REST                                                                                  \
    "listen = 127.0.0.1:8080\n"                                                                    \
    "[auth]\n"                                                                                     \
    "webhook_tokens = w1\n"                                                                        \
    "reader_tokens = r1\n"                                                                         \
    "[pipeline]\n"                                                                                 \
    "stages = A, B, C\n"                                                                           \
    "[cloud:aws]\n"                                                                                \
    "connector = none\n"
#define BASE "[server]\n" BASE_REST

static struct cfg *load_ok(const char *text)
{
    struct cfg *c = NULL;
    cfg_errors e = {0};
    dg_err rc = cfg_load_string("t.ini", text, &c, &e);
    for (size_t i = 0; i < e.lines.n; i++)
        fprintf(stderr, "unexpected: %s\n", e.lines.v[i]);
    assert_int_equal(rc, DG_OK);
    assert_non_null(c);
    assert_int_equal(e.lines.n, 0);
    return c;
}

/* Loads text and checks that the errors are exactly the NULL-terminated list. */
static void expect_errors(const char *text, ...)
{
    struct cfg *c = (struct cfg *)1;
    cfg_errors e = {0};
    assert_int_equal(cfg_load_string("t.ini", text, &c, &e), DG_ECONFIG);
    assert_null(c);
    va_list ap;
    va_start(ap, text);
    size_t i = 0;
    for (const char *want; (want = va_arg(ap, const char *)) != NULL; i++) {
        if (i >= e.lines.n) fail_msg("missing error: %s", want);
        if (strcmp(e.lines.v[i], want) != 0)
            fail_msg("error %zu:\n  got  %s\n  want %s", i, e.lines.v[i], want);
    }
    va_end(ap);
    if (i != e.lines.n) fail_msg("extra error: %s", e.lines.v[i]);
    cfg_errors_free(&e);
}

static void test_default_config(void **state)
{
    (void)state;
    const char *src = getenv("DG_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/config/dealgate.ini", src ? src : ".");
    struct cfg *c = NULL;
    cfg_errors e = {0};
    dg_err rc = cfg_load(path, &c, &e);
    for (size_t i = 0; i < e.lines.n; i++)
        fprintf(stderr, "%s\n", e.lines.v[i]);
    assert_int_equal(rc, DG_OK);
    assert_string_equal(c->server.listen, "127.0.0.1:8080");
    assert_string_equal(c->server.data_dir, "./var");
    assert_string_equal(c->server.currency, "USD");
    assert_int_equal(c->auth.open, 1);
    assert_int_equal(strlen(c->version), 16);
    assert_int_equal(strspn(c->version, "0123456789abcdef"), 16);
    assert_int_equal(c->npipelines, 1);
    const cfg_pipeline *p = cfg_pipeline_find(c, NULL);
    assert_non_null(p);
    assert_int_equal(p->stages.n, 7);
    assert_int_equal(p->naliases, 7);
    assert_int_equal(cfg_stage_index(p, "presentationscheduled"), 2);
    assert_int_equal(cfg_stage_index(p, "closedlost"), 6);
    assert_int_equal(c->nrules, 1);
    const cfg_rule *r = &c->rules[0];
    assert_string_equal(r->name, "demo-needs-registration");
    assert_string_equal(r->stage, "Demo");
    assert_int_equal(r->all_pipelines, 1);
    assert_int_equal(r->clouds_deal, 1);
    assert_int_equal(r->naccept, 3);
    assert_string_equal(r->message, "Register this deal in {cloud_name} before moving to {stage}.");
    assert_int_equal(c->nclouds, 3);
    for (size_t i = 0; i < c->nclouds; i++) {
        assert_int_equal(c->clouds[i].connector, CFG_CONN_FILE);
        assert_string_equal(c->clouds[i].path, "config/registrations.csv");
    }
    assert_string_equal(cfg_cloud_find(c, "aws")->name, "AWS ACE");
    assert_string_equal(c->comp.tolerance, "0.01");
    assert_int_equal(c->comp.rounding, DG_ROUND_HALF_UP);
    assert_int_equal(c->comp.nfees, 3);
    assert_string_equal(c->comp.fees[0].label, "aws");
    assert_int_equal(c->comp.fee_rates[0], 30000000);
    assert_int_equal(c->comp.nplans, 1);
    assert_string_equal(c->comp.plans[0].label, "default");
    assert_int_equal(c->comp.plan_rates[0], 100000000);
    assert_int_equal(c->salesforce.present, 0);
    assert_int_equal(c->hubspot.present, 0);
    /* the open = yes warning, with its line */
    int warned = 0;
    for (size_t i = 0; i < c->warnings.n; i++)
        if (strstr(c->warnings.v[i], "warning: [auth] open = yes")) warned = 1;
    assert_true(warned);
    cfg_free(c);
}

static void test_defaults(void **state)
{
    (void)state;
    struct cfg *c = load_ok(BASE "[rule:r]\nstage = B\n");
    assert_int_equal(c->server.threads, 32);
    assert_int_equal(c->server.max_body, 1024 * 1024);
    assert_int_equal(c->server.request_timeout_ms, 10000);
    assert_int_equal(c->server.decision_budget_ms, 5000);
    assert_int_equal(c->server.retain_days, 0);
    assert_string_equal(c->server.data_dir, "./var");
    assert_int_equal(c->auth.open, 0);
    assert_string_equal(c->auth.webhook_tokens.v[0], "w1");
    assert_string_equal(c->pipelines[0].name, "");
    assert_int_equal(c->pipelines[0].unknown_block, 1);
    const cfg_rule *r = &c->rules[0];
    assert_int_equal(r->type, CFG_RULE_REGISTRATION);
    assert_int_equal(r->all_pipelines, 1);
    assert_int_equal(r->clouds_deal, 1);
    assert_int_equal(r->match_all, 1);
    assert_int_equal(r->require_clouds, 0);
    assert_int_equal(r->require_link, 0);
    assert_int_equal(r->has_min_amount, 0);
    assert_int_equal(r->on_lookup_error, CFG_LOOKUP_BLOCK);
    assert_int_equal(r->retry_window_s, 900);
    assert_int_equal(r->mode, CFG_MODE_ENFORCE);
    const cfg_cloud *cl = cfg_cloud_find(c, "aws");
    assert_string_equal(cl->name, "aws");
    assert_int_equal(cl->connector, CFG_CONN_NONE);
    assert_int_equal(cl->timeout_ms, 2000);
    assert_int_equal(cl->cache_ttl_s, 300);
    assert_int_equal(cl->negative_cache_ttl_s, 30);
    assert_null(cl->endpoint);
    assert_string_equal(c->comp.tolerance, "0.01");
    assert_int_equal(c->comp.allow_uplift, 1);
    assert_int_equal(c->comp.rate_format, DG_RATE_BARE_ERROR);
    assert_string_equal(c->salesforce.api_version, "v60.0");
    assert_string_equal(c->hubspot.api_base, "https://api.hubapi.com");
    assert_int_equal(c->warnings.n, 0);
    cfg_free(c);
}

static void test_full_sections(void **state)
{
    (void)state;
    struct cfg *c = load_ok(
        "[server]\nlisten = [::1]:9000\nthreads = 4\nmax_body = 64k\ncurrency = EUR\n"
        "retain_days = 30\n"
        "[auth]\nwebhook_tokens = a , b\nreader_tokens = r\ncomp_reader_tokens = c\n"
        "desk_tokens = d\n"
        "[pipeline]\nstages = A, B, C, Won, Lost\nwon = Won\nlost = Lost\nunknown_stage = allow\n"
        "[pipeline:emea]\nstages = X, B, Y\n"
        "[cloud:aws]\nconnector = ace\naccess_key_id = AK\nsecret_access_key = SK\n"
        "session_token =\nendpoint = http://127.0.0.1:4566\n"
        "[cloud:azure]\nconnector = partner_center\nclient_id = ci\nclient_secret = cs\n"
        "refresh_token = rt\ntoken_url = http://localhost:9/token\n"
        "[cloud:gcp]\nconnector = gcp\npartner_id = 123\naccess_token = at\n"
        "[rule:r]\nstage = B\npipelines = default, emea\nclouds = aws, azure\nmatch = any\n"
        "require_clouds = yes\naccept.aws = Approved, In review\naccept.azure = Accepted\n"
        "require_link = on\nmin_amount = 10000\nmin_amount.JPY = 900000\n"
        "on_lookup_error = retry\nretry_window_s = 60\nmode = report\n"
        "message = {cloud} {rule} {deal} {id}\n"
        "[comp]\nrate_format = percent\nfee.aws = 3\nplan.default = 0.1\nplan.senior = 12.5%\n"
        "rounding = half_even\ntolerance = 0.5\nallow_uplift = no\n"
        "column.acv = Contract Value\ncolumn.deal_id = Opp ID\n"
        "[salesforce]\ncloud.AWS = aws\ncloud.Google Cloud = gcp\nwriteback = yes\n"
        "instance_url = https://x.my.salesforce.com\nclient_id = id\nclient_secret = sec\n"
        "api_version = v61.0\nreason_field = R__c\n"
        "[hubspot]\nclient_secret = hs\npublic_url = https://gate.example.com\n"
        "property.stage = dealstage\nproperty.registration.aws = ace_id\ncloud.aws = aws\n"
        "writeback = yes\ntoken = tok\nreason_property = why\n");
    assert_string_equal(c->server.listen, "[::1]:9000");
    assert_int_equal(c->server.max_body, 65536);
    assert_string_equal(c->server.currency, "EUR");
    assert_int_equal(c->server.retain_days, 30);
    assert_int_equal(c->auth.webhook_tokens.n, 2);
    assert_string_equal(c->auth.webhook_tokens.v[1], "b");
    assert_int_equal(c->npipelines, 2);
    assert_int_equal(c->pipelines[0].unknown_block, 0);
    assert_string_equal(c->pipelines[0].won.v[0], "Won");
    assert_ptr_equal(cfg_pipeline_find(c, "emea"), &c->pipelines[1]);
    assert_ptr_equal(cfg_pipeline_find(c, "default"), &c->pipelines[0]);
    assert_null(cfg_pipeline_find(c, "apac"));
    const cfg_cloud *aws = cfg_cloud_find(c, "aws");
    assert_string_equal(aws->endpoint, "http://127.0.0.1:4566");
    assert_string_equal(aws->region, "us-east-1");
    assert_string_equal(aws->catalog, "AWS");
    assert_string_equal(aws->session_token, "");
    const cfg_cloud *az = cfg_cloud_find(c, "azure");
    assert_string_equal(az->endpoint, "https://api.partner.microsoft.com");
    assert_string_equal(az->token_url, "http://localhost:9/token");
    assert_string_equal(cfg_cloud_find(c, "gcp")->endpoint,
                        "https://cloudcrmpartners.googleapis.com");
    assert_null(cfg_cloud_find(c, "ibm"));
    const cfg_rule *r = &c->rules[0];
    assert_int_equal(r->all_pipelines, 0);
    assert_int_equal(r->pipelines.n, 2);
    assert_string_equal(r->pipelines.v[0], "default");
    assert_int_equal(r->clouds_deal, 0);
    assert_int_equal(r->clouds.n, 2);
    assert_int_equal(r->match_all, 0);
    assert_int_equal(r->require_clouds, 1);
    assert_int_equal(r->require_link, 1);
    assert_int_equal(r->naccept, 2);
    assert_string_equal(r->accept[0].states.v[1], "In review");
    assert_int_equal(r->has_min_amount, 1);
    assert_int_equal(r->min_amount.minor, 1000000);
    assert_string_equal(r->min_amount.ccy, "EUR");
    assert_int_equal(r->nmin_amount_ccy, 1);
    assert_int_equal(r->min_amount_ccy[0].minor, 900000);
    assert_string_equal(r->min_amount_ccy[0].ccy, "JPY");
    assert_int_equal(r->on_lookup_error, CFG_LOOKUP_RETRY);
    assert_int_equal(r->retry_window_s, 60);
    assert_int_equal(r->mode, CFG_MODE_REPORT);
    assert_int_equal(c->comp.rate_format, DG_RATE_BARE_PERCENT);
    assert_int_equal(c->comp.fee_rates[0], 30000000);
    assert_string_equal(c->comp.fees[0].cloud, "3");
    assert_int_equal(c->comp.plan_rates[0], 100000000);
    assert_int_equal(c->comp.plan_rates[1], 125000000);
    assert_int_equal(c->comp.rounding, DG_ROUND_HALF_EVEN);
    assert_string_equal(c->comp.tolerance, "0.5");
    assert_int_equal(c->comp.allow_uplift, 0);
    assert_int_equal(c->comp.ncolumns, 2);
    assert_string_equal(c->comp.columns[0].label, "acv");
    assert_string_equal(c->comp.columns[0].cloud, "Contract Value");
    assert_int_equal(c->salesforce.present, 1);
    assert_int_equal(c->salesforce.nclouds, 2);
    assert_string_equal(c->salesforce.clouds[1].label, "Google Cloud");
    assert_string_equal(c->salesforce.clouds[1].cloud, "gcp");
    assert_string_equal(c->salesforce.api_version, "v61.0");
    assert_int_equal(c->hubspot.present, 1);
    assert_int_equal(c->hubspot.nproperties, 2);
    assert_string_equal(c->hubspot.properties[1].label, "registration.aws");
    assert_string_equal(c->hubspot.properties[1].cloud, "ace_id");
    assert_int_equal(c->hubspot.writeback, 1);
    cfg_free(c);
}

static void test_error_kinds(void **state)
{
    (void)state;
    expect_errors(BASE "bogus = 1\n", "t.ini:10: unknown key 'bogus' in [cloud:aws]", NULL);
    expect_errors(BASE "[nope]\nx = 1\n",
                  "t.ini:10: unknown section [nope] (known: server, auth, pipeline, "
                  "pipeline:NAME, rule:NAME, comp, cloud:KEY, salesforce, hubspot, reverify)",
                  NULL);
    expect_errors(BASE "connector = file\n",
                  "t.ini:10: duplicate key 'connector' (first at line 9)", NULL);
    expect_errors(BASE "[server]\n", "t.ini:10: duplicate section [server] (first at line 1)",
                  NULL);
    expect_errors("x = 1\n" BASE, "t.ini:1: key 'x' outside any section", NULL);
    expect_errors(BASE "[cloud:a b]\n",
                  "t.ini:10: bad section name [cloud:a b]: the part after ':' must be 1-63 "
                  "letters, digits, '-' or '_'",
                  NULL);
    expect_errors(BASE "[comp\n", "t.ini:10: section header without ']'", NULL);
    expect_errors(BASE "[comp] x\n", "t.ini:10: unexpected text after section header", NULL);
    expect_errors(BASE "[pipeline:default]\nstages = A\n",
                  "t.ini:10: [pipeline:default] is not allowed: \"default\" names [pipeline]",
                  NULL);
    expect_errors(BASE "just words\n", "t.ini:10: expected key = value", NULL);
    expect_errors(BASE "= 1\n", "t.ini:10: missing key before '='", NULL);
    expect_errors(BASE "[server]\n", "t.ini:10: duplicate section [server] (first at line 1)",
                  NULL);
    /* types */
    expect_errors(BASE "[comp]\nallow_uplift = maybe\n",
                  "t.ini:11: allow_uplift: expected yes or no (got \"maybe\")", NULL);
    expect_errors(BASE "timeout_ms = 0\n",
                  "t.ini:10: timeout_ms: expected an integer from 1 to 120000 (got \"0\")", NULL);
    expect_errors(BASE "timeout_ms = 12ms\n",
                  "t.ini:10: timeout_ms: expected an integer from 1 to 120000 (got \"12ms\")",
                  NULL);
    expect_errors("[server]\nmax_body = 2g\n" BASE_REST,
                  "t.ini:2: max_body: expected a size from 1024 to 67108864 bytes, with an "
                  "optional k or m suffix (got \"2g\")",
                  NULL);
    expect_errors("[server]\ncurrency = usd\n" BASE_REST,
                  "t.ini:2: currency: expected an ISO 4217 currency code like USD (got \"usd\")",
                  NULL);
    expect_errors("[server]\nlisten = localhost\n[pipeline]\nstages = A\n" AUTH_CLOUD,
                  "t.ini:2: listen: listen must be host:port or [ipv6]:port with a port 1-65535 "
                  "(e.g. 127.0.0.1:8080) (got \"localhost\")",
                  NULL);
    expect_errors(BASE "[pipeline:p]\nstages = A,,B\n",
                  "t.ini:11: stages: empty item 2 in a comma list", NULL);
    expect_errors(BASE "[pipeline:p]\nstages = A, a\n",
                  "t.ini:11: stages: stage 'a' is listed twice", NULL);
    expect_errors(BASE "[pipeline:p]\nunknown_stage = maybe\n",
                  "t.ini:10: [pipeline:p] needs stages = a comma list",
                  "t.ini:11: unknown_stage: expected block | allow (got \"maybe\")", NULL);
    expect_errors(BASE "[comp]\nfee.aws = 10\n",
                  "t.ini:11: fee.aws: rate \"10\" is ambiguous: write 10% or a fraction like "
                  "0.10 (got \"10\")",
                  NULL);
    expect_errors(BASE "[comp]\ntolerance = abc\n",
                  "t.ini:11: tolerance: expected a non-negative decimal like 0.01 (got \"abc\")",
                  NULL);
    expect_errors(BASE "[comp]\ncolumn.amount = Amount\n",
                  "t.ini:11: column.amount: unknown field 'amount' (fields: deal_id rep channel "
                  "cloud acv commission_base rate commission plan direct_rate split currency)",
                  NULL);
    expect_errors(BASE "[hubspot]\nproperty.color = c\n",
                  "t.ini:11: property.color: unknown field 'color' (fields: id name account "
                  "owner amount currency source clouds pipeline stage registration.<cloud>)",
                  NULL);
    expect_errors(BASE "[salesforce]\napi_version = 60\n",
                  "t.ini:11: api_version: expected a version like v60.0 (got \"60\")", NULL);
}

static void test_cross_checks(void **state)
{
    (void)state;
    expect_errors("[server]\n[auth]\nwebhook_tokens = w\nreader_tokens = r\n[cloud:aws]\n"
                  "connector = none\n",
                  "t.ini: no [pipeline] section (the default pipeline: stages = ...)", NULL);
    expect_errors(BASE "[rule:r]\nstage = Z\n", "t.ini:11: stage: 'Z' is not a stage of [pipeline]",
                  NULL);
    expect_errors(BASE "[pipeline:emea]\nstages = X, Y\n[rule:r]\nstage = B\n",
                  "t.ini:13: stage: 'B' is not a stage of [pipeline:emea]", NULL);
    /* a rule limited to the default pipeline does not need the stage in emea */
    cfg_free(load_ok(BASE "[pipeline:emea]\nstages = X, Y\n[rule:r]\nstage = B\n"
                          "pipelines = default\n"));
    expect_errors(BASE "[rule:r]\nstage = B\npipelines = apac\n",
                  "t.ini:12: pipelines: no [pipeline:apac] section", NULL);
    expect_errors(BASE "[rule:r]\nclouds = aws, ibm\n",
                  "t.ini:10: [rule:r] needs stage = the first gated stage",
                  "t.ini:11: clouds: no [cloud:ibm] section", NULL);
    expect_errors(BASE "[rule:r]\nstage = B\naccept.ibm = Approved\n",
                  "t.ini:12: accept.ibm: no [cloud:ibm] section", NULL);
    expect_errors(BASE "[rule:r]\nstage = B\nmessage = Hi {name}\n",
                  "t.ini:12: message: unknown placeholder {name} (known: {cloud} {cloud_name} "
                  "{stage} {deal} {id} {rule})",
                  NULL);
    expect_errors(BASE "[rule:r]\nstage = B\nmin_amount.EUR = 5 USD\n",
                  "t.ini:12: min_amount.EUR: amount is in USD, the key names EUR", NULL);
    expect_errors(BASE "won = Z\nlost = A\n", "t.ini:10: unknown key 'won' in [cloud:aws]",
                  "t.ini:11: unknown key 'lost' in [cloud:aws]", NULL);
    expect_errors("[pipeline]\nstages = A, B\nwon = Z\nlost = A\nalias.x = Q\n"
                  "alias.X = A\nalias.y = A\nalias.b = A\n" AUTH_CLOUD,
                  "t.ini:3: won: 'Z' is not a stage of this pipeline",
                  "t.ini:5: alias.x: 'Q' is not a stage of this pipeline",
                  "t.ini:8: alias.b: alias 'b' is the name of another stage", NULL);
    expect_errors("[pipeline]\nstages = A, B\nalias.x = A\nalias.X = B\n" AUTH_CLOUD,
                  "t.ini:4: alias.X: alias 'X' is defined twice (aliases ignore case)", NULL);
    /* connectors */
    expect_errors(BASE "[cloud:az]\nconnector = partner_center\nclient_id = x\n",
                  "t.ini:11: connector partner_center needs client_secret in [cloud:az]",
                  "t.ini:11: connector partner_center needs refresh_token in [cloud:az]", NULL);
    expect_errors(BASE "[cloud:g]\nconnector = gcp\npartner_id = 1\naccess_token = ${DG_T_E:-}\n",
                  "t.ini:13: access_token: must not be empty (connector gcp needs it)", NULL);
    expect_errors(BASE "[cloud:f]\nconnector = file\n",
                  "t.ini:11: connector file needs path in [cloud:f]", NULL);
    expect_errors(BASE "[cloud:f]\nname = F\n",
                  "t.ini:10: [cloud:f] needs connector = ace | partner_center | gcp | file | none",
                  NULL);
    expect_errors(BASE "[cloud:f]\nconnector = sap\n",
                  "t.ini:11: connector: expected none | file | ace | partner_center | gcp (got "
                  "\"sap\")",
                  NULL);
    expect_errors(BASE "region = eu\n", "t.ini:10: key 'region' does not apply to connector none",
                  NULL);
    expect_errors(BASE "[cloud:a2]\nconnector = ace\naccess_key_id = a\nsecret_access_key = s\n"
                       "endpoint = http://example.com\n",
                  "t.ini:14: endpoint: plain http:// is accepted for loopback hosts only; use "
                  "https:// (got \"http://example.com\")",
                  NULL);
    expect_errors(BASE "[hubspot]\napi_base = ftp://x\n",
                  "t.ini:11: api_base: must be an https:// URL (got \"ftp://x\")", NULL);
    expect_errors(BASE "[salesforce]\ninstance_url = https://u:p@x.com\n",
                  "t.ini:11: instance_url: URL must not carry credentials (user@host) (got "
                  "\"https://u:p@x.com\")",
                  NULL);
    expect_errors(BASE "[salesforce]\ncloud.AWS = aws\ncloud.aws = aws\ncloud.X = ibm\n",
                  "t.ini:12: cloud.aws: 'aws' is mapped twice (labels ignore case)",
                  "t.ini:13: cloud.X: no [cloud:ibm] section", NULL);
    expect_errors(BASE "[hubspot]\nwriteback = yes\n",
                  "t.ini:11: writeback = yes needs token in [hubspot]", NULL);
    cfg_free(load_ok(BASE "[cloud:a2]\nconnector = ace\naccess_key_id = a\n"
                          "secret_access_key = s\nendpoint = http://[::1]:4566/\n"));
}

static void test_auth_rules(void **state)
{
    (void)state;
    expect_errors("[server]\n[auth]\nwebhook_tokens =\n[pipeline]\nstages = A\n",
                  "t.ini:2: reader_tokens is empty: set at least one token, or open = yes for a "
                  "loopback-only setup",
                  "t.ini:3: webhook_tokens is empty: set at least one token, or open = yes for a "
                  "loopback-only setup",
                  NULL);
    expect_errors("[pipeline]\nstages = A\n",
                  "t.ini: webhook_tokens is empty: set at least one token, or open = yes for a "
                  "loopback-only setup",
                  "t.ini: reader_tokens is empty: set at least one token, or open = yes for a "
                  "loopback-only setup",
                  NULL);
    expect_errors("[server]\nlisten = 0.0.0.0:8080\n[auth]\nopen = yes\n[pipeline]\nstages = A\n",
                  "t.ini:4: open = yes needs a loopback listen address (listen = 0.0.0.0:8080): "
                  "it would let anyone in",
                  NULL);
    struct cfg *c = load_ok("[server]\nlisten = localhost:1\n[auth]\nopen = yes\n"
                            "[pipeline]\nstages = A\n");
    assert_int_equal(c->auth.open, 1);
    assert_int_equal(c->auth.webhook_tokens.n, 0);
    assert_int_equal(c->warnings.n, 1);
    assert_string_equal(c->warnings.v[0],
                        "t.ini:4: warning: [auth] open = yes: requests need no token (loopback "
                        "only)");
    cfg_free(c);
}

static void test_many_errors(void **state)
{
    (void)state;
    /* five bad lines, five errors, in line order, parsing goes on past each */
    expect_errors("[server]\nthreads = x\nlisten: 1\nmax_body = -1\n  indented\nbogus = 2\n"
                  "[auth]\nopen = yes\n[pipeline]\nstages = A\n",
                  "t.ini:2: threads: expected an integer from 1 to 1024 (got \"x\")",
                  "t.ini:3: ':' is not a delimiter here: write key = value",
                  "t.ini:4: max_body: expected a size from 1024 to 67108864 bytes, with an "
                  "optional k or m suffix (got \"-1\")",
                  "t.ini:5: indented line without '=': continuation lines are not supported, "
                  "keep each value on one line",
                  "t.ini:6: unknown key 'bogus' in [server]", NULL);
}

static void test_env(void **state)
{
    (void)state;
    setenv("DG_T_TOKEN", "tok-1", 1);
    setenv("DG_T_EMPTY", "", 1);
    unsetenv("DG_T_UNSET");
    struct cfg *c = load_ok("[auth]\nwebhook_tokens = ${DG_T_TOKEN}, x${DG_T_UNSET:-def}y, "
                            "${DG_T_EMPTY:-e}\nreader_tokens = ${DG_T_TOKEN}${DG_T_EMPTY}\n"
                            "desk_tokens = ${DG_T_UNSET:-}\n[pipeline]\nstages = A\n");
    assert_int_equal(c->auth.webhook_tokens.n, 3);
    assert_string_equal(c->auth.webhook_tokens.v[0], "tok-1");
    assert_string_equal(c->auth.webhook_tokens.v[1], "xdefy");
    assert_string_equal(c->auth.webhook_tokens.v[2], "e");
    assert_string_equal(c->auth.reader_tokens.v[0], "tok-1");
    assert_int_equal(c->auth.desk_tokens.n, 0);
    cfg_free(c);
    expect_errors("[auth]\nwebhook_tokens = ${DG_T_UNSET}\nreader_tokens = r\n"
                  "[pipeline]\nstages = A\n",
                  "t.ini:2: webhook_tokens: environment variable DG_T_UNSET is not set (write "
                  "${DG_T_UNSET:-} for an intended empty value)",
                  NULL);
    expect_errors(BASE "name = ${DG_T_TOKEN\n",
                  "t.ini:10: name: unterminated ${DG_T_TOKEN (missing '}')", NULL);
    expect_errors(BASE "name = ${1X}\n",
                  "t.ini:10: name: bad ${...}: expected a variable name (letters, digits, '_')",
                  NULL);
    expect_errors(BASE "name = ${A:-x\n", "t.ini:10: name: unterminated ${A:-...} (missing '}')",
                  NULL);
    /* an expansion is bounded: 64 KiB of value, its NUL included */
    static char big[64 * 1024];
    memset(big, 'v', sizeof big - 2);
    big[sizeof big - 2] = '\0'; /* 65,534 bytes */
    setenv("DG_T_BIG", big, 1);
    c = load_ok(
        "[auth]\nwebhook_tokens = x${DG_T_BIG}\nreader_tokens = r\n[pipeline]\nstages = A\n");
    assert_int_equal(strlen(c->auth.webhook_tokens.v[0]), sizeof big - 1);
    cfg_free(c);
    expect_errors(
        "[auth]\nwebhook_tokens = xy${DG_T_BIG}\nreader_tokens = r\n[pipeline]\nstages = A\n",
        "t.ini:2: webhook_tokens: value too long after expansion (max 65536 bytes)", NULL);
    unsetenv("DG_T_BIG");
    /* a literal '$' and a value expanded into a typed key */
    setenv("DG_T_THREADS", "7", 1);
    c = load_ok("[server]\nthreads = ${DG_T_THREADS}\ndata_dir = ./v$x\n" BASE_REST);
    assert_int_equal(c->server.threads, 7);
    assert_string_equal(c->server.data_dir, "./v$x");
    cfg_free(c);
}

/* Writes content to a fresh temp file with mode; returns its path in buf. */
static void secret_file(char *buf, size_t n, const char *content, mode_t mode)
{
    snprintf(buf, n, "/tmp/dg_test_secret_XXXXXX");
    int fd = mkstemp(buf);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    assert_int_equal(chmod(buf, mode), 0);
}

/* The file permission policy of a secret file at path, which text (valid at mode 0600)
 * reads: 0644 loads with a warning; 0666 and 0620 are refused, never showing the value.
 * `at` is "t.ini:LINE: ", `what` "KEY: secret file". Leaves path at 0600. */
static void check_modes(const char *text, const char *path, const char *at, const char *what)
{
    char want[512];
    assert_int_equal(chmod(path, 0644), 0);
    struct cfg *c = load_ok(text);
    assert_int_equal(c->warnings.n, 1);
    snprintf(want, sizeof want, "%swarning: %s %s is world-readable (mode 644); consider chmod o-r",
             at, what, path);
    assert_string_equal(c->warnings.v[0], want);
    cfg_free(c);
    static const mode_t refused[] = {0666, 0620};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(chmod(path, refused[i]), 0);
        snprintf(want, sizeof want,
                 "%s%s %s is group- or world-writable (mode %03o); run chmod go-w", at, what, path,
                 (unsigned)refused[i]);
        expect_errors(text, want, NULL);
    }
    assert_int_equal(chmod(path, 0600), 0);
}

static void test_secret_files(void **state)
{
    (void)state;
    char path[64], text[512], want[512];
    /* 0600: read, trailing newline stripped, no warning */
    secret_file(path, sizeof path, "s3cret-value\n", 0600);
    snprintf(text, sizeof text, BASE "[hubspot]\nclient_secret = @%s\n", path);
    struct cfg *c = load_ok(text);
    assert_string_equal(c->hubspot.client_secret, "s3cret-value");
    assert_int_equal(c->warnings.n, 0);
    cfg_free(c);
    check_modes(text, path, "t.ini:11: ", "client_secret: secret file");
    /* a secret that is a bad value: the message does not echo it */
    assert_int_equal(chmod(path, 0600), 0);
    snprintf(text, sizeof text, BASE "[hubspot]\napi_base = @%s\n", path);
    expect_errors(text, "t.ini:11: api_base: must be an https:// URL", NULL);
    /* ${} inside the path */
    setenv("DG_T_DIR", "/tmp", 1);
    snprintf(text, sizeof text, BASE "[hubspot]\ntoken = @${DG_T_DIR}%s\n", path + 4);
    c = load_ok(text);
    assert_string_equal(c->hubspot.token, "s3cret-value");
    cfg_free(c);
    /* a token list from a file */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("t1, t2\r\n\n", f);
    fclose(f);
    snprintf(text, sizeof text,
             "[auth]\nwebhook_tokens = @%s\nreader_tokens = r\n"
             "[pipeline]\nstages = A\n",
             path);
    c = load_ok(text);
    assert_int_equal(c->auth.webhook_tokens.n, 2);
    assert_string_equal(c->auth.webhook_tokens.v[1], "t2");
    cfg_free(c);
    unlink(path);
    /* missing */
    snprintf(text, sizeof text, BASE "[hubspot]\ntoken = @%s\n", path);
    snprintf(want, sizeof want,
             "t.ini:11: token: cannot open secret file %s: No such file or directory", path);
    expect_errors(text, want, NULL);
    expect_errors(BASE "[hubspot]\ntoken = @\n",
                  "t.ini:11: token: '@' must be followed by a secret file path", NULL);
    /* an env value starting with '@' is not a file reference */
    setenv("DG_T_AT", "@not-a-file", 1);
    c = load_ok(BASE "[hubspot]\ntoken = ${DG_T_AT}\n");
    assert_string_equal(c->hubspot.token, "@not-a-file");
    cfg_free(c);
}

/* connector = gcp: exactly one of access_token and credentials (a key file, checked like an
 * @file secret); token_url only with credentials. */
static void test_gcp_auth_keys(void **state)
{
    (void)state;
    char path[64], text[512], want[512];
    secret_file(path, sizeof path, "{\"type\": \"service_account\"}\n", 0600);
    snprintf(text, sizeof text,
             BASE "[cloud:g]\nconnector = gcp\npartner_id = 1\ncredentials = %s\n"
                  "token_url = http://127.0.0.1:9/token\n",
             path);
    struct cfg *c = load_ok(text);
    const cfg_cloud *g = cfg_cloud_find(c, "g");
    assert_string_equal(g->credentials, path);
    assert_string_equal(g->token_url, "http://127.0.0.1:9/token");
    assert_null(g->access_token);
    assert_int_equal(c->warnings.n, 0);
    cfg_free(c);
    /* no token_url: the key file's token_uri (NULL here) */
    snprintf(text, sizeof text,
             BASE "[cloud:g]\nconnector = gcp\npartner_id = 1\ncredentials = %s\n", path);
    c = load_ok(text);
    assert_null(cfg_cloud_find(c, "g")->token_url);
    cfg_free(c);
    /* both, neither, token_url with access_token */
    snprintf(text, sizeof text,
             BASE "[cloud:g]\nconnector = gcp\npartner_id = 1\naccess_token = at\n"
                  "credentials = %s\n",
             path);
    expect_errors(text,
                  "t.ini:14: credentials: give access_token or credentials in [cloud:g], not both",
                  NULL);
    expect_errors(BASE "[cloud:g]\nconnector = gcp\npartner_id = 1\n",
                  "t.ini:11: connector gcp needs access_token or credentials in [cloud:g]", NULL);
    expect_errors(BASE "[cloud:g]\nconnector = gcp\npartner_id = 1\naccess_token = at\n"
                       "token_url = https://oauth2.googleapis.com/token\n",
                  "t.ini:14: token_url: applies to connector gcp only with credentials", NULL);
    expect_errors(BASE "[cloud:g]\nconnector = gcp\npartner_id = 1\ncredentials =\n",
                  "t.ini:13: credentials: must not be empty", NULL);
    /* partner_center keeps its default token_url; credentials is gcp's alone */
    c = load_ok(BASE "[cloud:az]\nconnector = partner_center\nclient_id = i\n"
                     "client_secret = s\nrefresh_token = r\n");
    assert_string_equal(cfg_cloud_find(c, "az")->token_url,
                        "https://login.microsoftonline.com/common/oauth2/token");
    cfg_free(c);
    snprintf(text, sizeof text, BASE "[cloud:a]\nconnector = ace\ncredentials = %s\n", path);
    expect_errors(text, "t.ini:11: connector ace needs access_key_id in [cloud:a]",
                  "t.ini:11: connector ace needs secret_access_key in [cloud:a]",
                  "t.ini:12: key 'credentials' does not apply to connector ace", NULL);
    /* the key file's permissions: the @file policy */
    snprintf(text, sizeof text,
             BASE "[cloud:g]\nconnector = gcp\npartner_id = 1\ncredentials = %s\n", path);
    check_modes(text, path, "t.ini:13: ", "credentials: credentials file");
    unlink(path);
    snprintf(want, sizeof want,
             "t.ini:13: credentials: cannot open credentials file %s: No such file or directory",
             path);
    expect_errors(text, want, NULL);
}

static void test_inih_traps(void **state)
{
    (void)state;
    char text[4096], want[128];
    /* a 1024-character line is fine; 1025 is an error naming its line */
    char val[1100];
    memset(val, 'x', sizeof val);
    int klen = (int)strlen("name = ");
    snprintf(text, sizeof text, BASE "name = %.*s\nname2\n", 1024 - klen, val);
    expect_errors(text, "t.ini:11: expected key = value", NULL); /* line 10 was accepted */
    snprintf(text, sizeof text, BASE "name = %.*s\n", 1025 - klen, val);
    snprintf(want, sizeof want, "t.ini:10: line too long (max 1024 characters)");
    expect_errors(text, want, NULL);
    /* a long value arrives whole (inih's default would cut it at 200 bytes) */
    snprintf(text, sizeof text, BASE "name = %.*s\n", 900, val);
    struct cfg *c = load_ok(text);
    assert_int_equal(strlen(cfg_cloud_find(c, "aws")->name), 900);
    cfg_free(c);
    /* ':' is not a delimiter, even in a valid-looking line */
    expect_errors(BASE "name: x\n", "t.ini:10: ':' is not a delimiter here: write key = value",
                  NULL);
    /* but ':' in a value is fine */
    c = load_ok(BASE "name = a:b\n");
    assert_string_equal(cfg_cloud_find(c, "aws")->name, "a:b");
    cfg_free(c);
    /* an indented line never joins the previous key */
    expect_errors("[pipeline]\nstages = A, B,\n    C\n[auth]\nopen = yes\n",
                  "t.ini:2: stages: empty item 3 in a comma list",
                  "t.ini:3: indented line without '=': continuation lines are not supported, "
                  "keep each value on one line",
                  NULL);
    /* an indented key = value line is an ordinary key */
    c = load_ok("[auth]\n  open = yes\n[pipeline]\n\tstages = A, B\n");
    assert_int_equal(c->pipelines[0].stages.n, 2);
    cfg_free(c);
    /* inline comments need a space before ';'; '#' only starts a line */
    c = load_ok(BASE "name = a;b ; comment\n# full line\n  ; indented comment\n");
    assert_string_equal(cfg_cloud_find(c, "aws")->name, "a;b");
    cfg_free(c);
    /* BOM and CRLF */
    c = load_ok("\xEF\xBB\xBF[auth]\r\nopen = yes\r\n[pipeline]\r\nstages = A, B\r\n"
                "won = B\r\n");
    assert_string_equal(c->pipelines[0].won.v[0], "B");
    cfg_free(c);
    expect_errors("\xEF\xBB\xBF[auth]\r\nopen = yes\r\n[pipeline]\r\nstages = A\r\nx = 1\r\n",
                  "t.ini:5: unknown key 'x' in [pipeline]", NULL);
    /* a NUL byte inside a line (cfg_load reads the bytes, the string API stops at NUL) */
    char nulpath[] = "/tmp/dg_test_nul_XXXXXX";
    int fd = mkstemp(nulpath);
    assert_true(fd >= 0);
    static const char nul[] = "[auth]\nopen = yes\n[pipeline]\nstages = A\nx\0y = 1\n";
    assert_int_equal(write(fd, nul, sizeof nul - 1), (ssize_t)(sizeof nul - 1));
    close(fd);
    struct cfg *cn = NULL;
    cfg_errors e = {0};
    assert_int_equal(cfg_load(nulpath, &cn, &e), DG_ECONFIG);
    assert_int_equal(e.lines.n, 1);
    snprintf(text, sizeof text, "%s:5: line contains a NUL byte", nulpath);
    assert_string_equal(e.lines.v[0], text);
    cfg_errors_free(&e);
    unlink(nulpath);
    /* a long section name is not truncated by inih's 50-byte buffer */
    c = load_ok(BASE "[cloud:abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz0123456]\n"
                     "connector = none\n");
    assert_non_null(
        cfg_cloud_find(c, "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz0123456"));
    cfg_free(c);
}

static void test_stage_index(void **state)
{
    (void)state;
    struct cfg *c = load_ok("[auth]\nopen = yes\n[pipeline]\nstages = Prospecting, Demo, "
                            "Closed Won\nalias.presentationscheduled = demo\n"
                            "alias.ClosedWon = closed won\n");
    const cfg_pipeline *p = cfg_pipeline_find(c, "");
    assert_int_equal(cfg_stage_index(p, "Prospecting"), 0);
    assert_int_equal(cfg_stage_index(p, "PROSPECTING"), 0);
    assert_int_equal(cfg_stage_index(p, "closed won"), 2);
    assert_int_equal(cfg_stage_index(p, "PresentationScheduled"), 1);
    assert_int_equal(cfg_stage_index(p, "closedwon"), 2);
    assert_int_equal(cfg_stage_index(p, "Negotiation"), -1);
    assert_int_equal(cfg_stage_index(p, ""), -1);
    assert_int_equal(cfg_stage_index(p, NULL), -1);
    assert_int_equal(cfg_stage_index(NULL, "Demo"), -1);
    assert_string_equal(p->aliases[1].raw, "ClosedWon");
    assert_int_equal(p->aliases[1].stage, 2);
    cfg_free(c);
}

static void test_loopback(void **state)
{
    (void)state;
    assert_int_equal(cfg_is_loopback_host("127.0.0.1:8080"), 1);
    assert_int_equal(cfg_is_loopback_host("127.1.2.3:80"), 1);
    assert_int_equal(cfg_is_loopback_host("localhost:80"), 1);
    assert_int_equal(cfg_is_loopback_host("LOCALHOST"), 1);
    assert_int_equal(cfg_is_loopback_host("[::1]:8080"), 1);
    assert_int_equal(cfg_is_loopback_host("::1"), 1);
    assert_int_equal(cfg_is_loopback_host("[::ffff:127.0.0.1]:80"), 1);
    assert_int_equal(cfg_is_loopback_host("http://127.0.0.1:9000/path"), 1);
    assert_int_equal(cfg_is_loopback_host("http://[::1]/x"), 1);
    assert_int_equal(cfg_is_loopback_host("http://localhost"), 1);
    assert_int_equal(cfg_is_loopback_host("0.0.0.0:8080"), 0);
    assert_int_equal(cfg_is_loopback_host("10.0.0.1:8080"), 0);
    assert_int_equal(cfg_is_loopback_host("[::]:8080"), 0);
    assert_int_equal(cfg_is_loopback_host("example.com:80"), 0);
    assert_int_equal(cfg_is_loopback_host("localhost.example.com"), 0);
    assert_int_equal(cfg_is_loopback_host("127.0.0.1.example.com"), 0);
    assert_int_equal(cfg_is_loopback_host("http://127.0.0.1@evil.com/"), 0);
    assert_int_equal(cfg_is_loopback_host("http://evil.com/127.0.0.1"), 0);
    assert_int_equal(cfg_is_loopback_host(""), 0);
    assert_int_equal(cfg_is_loopback_host(NULL), 0);
}

static void test_missing_file(void **state)
{
    (void)state;
    struct cfg *c = (struct cfg *)1;
    cfg_errors e = {0};
    assert_int_equal(cfg_load("/nonexistent/dealgate.ini", &c, &e), DG_ECONFIG);
    assert_null(c);
    assert_int_equal(e.lines.n, 1);
    assert_string_equal(e.lines.v[0],
                        "/nonexistent/dealgate.ini: cannot open: No such file or directory");
    cfg_errors_free(&e);
}

static void test_version(void **state)
{
    (void)state;
    struct cfg *a = load_ok(BASE), *b = load_ok(BASE), *c = load_ok(BASE "\n");
    assert_string_equal(a->version, b->version);
    assert_string_not_equal(a->version, c->version);
    cfg_free(a);
    cfg_free(b);
    cfg_free(c);
}

static void test_reverify_section(void **state)
{
    (void)state;
    struct cfg *c = load_ok(BASE);
    assert_int_equal(c->reverify.enabled, 1);
    assert_int_equal(c->reverify.interval_s, 3600);
    assert_int_equal(c->reverify.batch, 100);
    assert_int_equal(c->reverify.pause_ms, 200);
    cfg_free(c);
    c = load_ok(BASE "[reverify]\nenabled = no\ninterval_s = 5\nbatch = 7\npause_ms = 0\n");
    assert_int_equal(c->reverify.enabled, 0);
    assert_int_equal(c->reverify.interval_s, 5);
    assert_int_equal(c->reverify.batch, 7);
    assert_int_equal(c->reverify.pause_ms, 0);
    cfg_free(c);
    expect_errors(BASE "[reverify]\ninterval_s = 0\nbatch = many\nevery = 1\n",
                  "t.ini:11: interval_s: expected an integer from 1 to 2592000 (got \"0\")",
                  "t.ini:12: batch: expected an integer from 1 to 10000 (got \"many\")",
                  "t.ini:13: unknown key 'every' in [reverify]", NULL);
}

static void *load_loop(void *arg)
{
    (void)arg;
    for (int i = 0; i < 50; i++) {
        struct cfg *c = NULL;
        cfg_errors e = {0};
        if (cfg_load_string("t.ini", BASE "[rule:r]\nstage = B\n", &c, &e) != DG_OK)
            return (void *)1;
        cfg_free(c);
    }
    return NULL;
}

static void test_concurrent_loads(void **state)
{
    (void)state;
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, load_loop, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *r = (void *)1;
        pthread_join(t[i], &r);
        assert_null(r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_config),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full_sections),
        cmocka_unit_test(test_error_kinds),
        cmocka_unit_test(test_reverify_section),
        cmocka_unit_test(test_cross_checks),
        cmocka_unit_test(test_auth_rules),
        cmocka_unit_test(test_many_errors),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_secret_files),
        cmocka_unit_test(test_inih_traps),
        cmocka_unit_test(test_stage_index),
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_concurrent_loads),
        cmocka_unit_test(test_gcp_auth_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
