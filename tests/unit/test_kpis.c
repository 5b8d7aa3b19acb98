/* test_kpis.c — KPIs, blocked deals, recent decisions and comp-by-rep from the decision log,
 * against a fixture computed by hand (the arithmetic is written next to each assertion;
 * docs/kpis.md defines every figure). Also: the same figures when decisions arrive out of
 * order, after a reopened deal, and after the KPI state is rebuilt from the decisions (the
 * migration path of a log written before schema step 2).
 *
 * Fixture (day0 = 2026-10-01, UTC; "verified" means the registration entry says so):
 *   A aws        d0 block registration_missing; d1 allow (aws verified, created 09-20,
 *                partner); d5 won, 100000.00 USD
 *   B aws+azure  d0 allow (aws verified created 09-25 origin cloud; azure verified created
 *                09-28 partner); d3 lost
 *   C aws        d0 allow in report mode (aws not verified); d2 won, 5000.00 EUR
 *   D aws        d1 block registration_not_accepted; d2 block again (blocked now)
 *   E no cloud   d0 ungated allow; d4 lost
 *   F azure      d2 allow (azure verified, created 10-01, cloud); d6 won, 2500.50 USD
 *   comp lines   d1 ann USD 12.34 aws; d2 ann USD 0.66 azure; d3 bob USD 100.00; d3 cy clean
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "gate/dlog.h"
#include "dlog_fixture.h"

#define DAY_MS INT64_C(86400000)
#define DAY0_MS INT64_C(1790812800000) /* 2026-10-01T00:00:00Z */
#define AT(day, hour) (DAY0_MS + (day)*DAY_MS + (hour)*INT64_C(3600000))

static int setup(void **state)
{
    return dlog_fixture_open(state, "/tmp/kpis_test_XXXXXX");
}

/* ---- the fixture ------------------------------------------------------------------------ */

typedef struct {
    const char *opp, *owner, *name;
    int64_t time_ms;
    const char *outcome, *mode;
    int gated, won, lost;
    const char *from, *to;
    const char *clouds, *reasons, *warnings, *regs;
    int has_amount;
    int64_t amount;
    const char *ccy;
} step;

#define REG(cloud, verified, created, origin)                                                      \
    "{\"cloud\":\"" cloud "\",\"id\":\"R-" cloud                                                   \
    "\",\"status\":\"Approved\",\"verified\":" verified ",\"created_at\":\"" created               \
    "\",\"origin\":\"" origin "\"}"
#define REASON(code, cloud) "{\"rule\":\"r\",\"code\":\"" code "\",\"cloud\":\"" cloud "\"}"

static const step fixture_steps[] = {
    {"A", "ann@x", "Alpha", AT(0, 10), "block", "enforce", 1, 0, 0, "Qualification", "Demo",
     "[\"aws\"]", "[" REASON("registration_missing", "aws") "]", "[]",
     "[{\"cloud\":\"aws\",\"id\":null,\"verified\":false,\"lookup\":\"not_found\"}]", 1, 10000000,
     "USD"},
    {"A", "ann@x", "Alpha", AT(1, 10), "allow", "enforce", 1, 0, 0, "Qualification", "Demo",
     "[\"aws\"]", "[]", "[]", "[" REG("aws", "true", "2026-09-20T09:00:00Z", "partner") "]", 1,
     10000000, "USD"},
    {"A", "ann@x", "Alpha", AT(5, 10), "allow", "enforce", 0, 1, 0, "Negotiation", "Closed Won",
     "[\"aws\"]", "[]", "[]", "[]", 1, 10000000, "USD"},
    {"B", "bob@x", "Beta", AT(0, 11), "allow", "enforce", 1, 0, 0, "Qualification", "Demo",
     "[\"aws\",\"azure\"]", "[]", "[]",
     "[" REG("aws", "true", "2026-09-25T09:00:00Z",
             "cloud") "," REG("azure", "true", "2026-09-28T09:00:00Z", "partner") "]",
     1, 50000, "USD"},
    {"B", "bob@x", "Beta", AT(3, 11), "allow", "enforce", 0, 0, 1, "Demo", "Closed Lost",
     "[\"aws\",\"azure\"]", "[]", "[]", "[]", 1, 50000, "USD"},
    {"C", "cy@x", "Gamma", AT(0, 12), "allow", "report", 1, 0, 0, "Qualification", "Demo",
     "[\"aws\"]", "[]", "[" REASON("report_only", "aws") "]",
     "[" REG("aws", "false", "2026-09-01T00:00:00Z", "partner") "]", 1, 500000, "EUR"},
    {"C", "cy@x", "Gamma", AT(2, 12), "allow", "enforce", 0, 1, 0, "Demo", "Closed Won",
     "[\"aws\"]", "[]", "[]", "[]", 1, 500000, "EUR"},
    {"D", "dan@x", "<script>alert(1)</script>", AT(1, 13), "block", "enforce", 1, 0, 0,
     "Qualification", "Demo", "[\"aws\"]", "[" REASON("registration_not_accepted", "aws") "]", "[]",
     "[" REG("aws", "false", "2026-09-02T00:00:00Z", "partner") "]", 1, 7700, "USD"},
    {"D", "dan@x", "<script>alert(1)</script>", AT(2, 13), "block", "enforce", 1, 0, 0,
     "Qualification", "Proposal", "[\"aws\"]", "[" REASON("registration_not_accepted", "aws") "]",
     "[]", "[" REG("aws", "false", "2026-09-02T00:00:00Z", "partner") "]", 1, 7700, "USD"},
    {"E", "eve@x", "Epsilon", AT(0, 14), "allow", "enforce", 0, 0, 0, "Prospecting",
     "Qualification", "[]", "[]", "[]", "[]", 0, 0, NULL},
    {"E", "eve@x", "Epsilon", AT(4, 14), "allow", "enforce", 0, 0, 1, "Qualification",
     "Closed Lost", "[]", "[]", "[]", "[]", 0, 0, NULL},
    {"F", "fay@x", "Phi", AT(2, 15), "allow", "enforce", 1, 0, 0, "Qualification", "Demo",
     "[\"azure\"]", "[]", "[]", "[" REG("azure", "true", "2026-10-01T00:00:00Z", "cloud") "]", 1,
     250050, "USD"},
    {"F", "fay@x", "Phi", AT(6, 15), "allow", "enforce", 0, 1, 0, "Negotiation", "Closed Won",
     "[\"azure\"]", "[]", "[]", "[]", 1, 250050, "USD"},
};
#define NSTEPS (sizeof fixture_steps / sizeof fixture_steps[0])

static void append_step(dlog *l, const step *s, int n)
{
    char id[40], json[512], err[256] = "";
    snprintf(id, sizeof id, "dg_kpi%020d", n);
    snprintf(json, sizeof json,
             "{\"decision_id\":\"%s\",\"outcome\":\"%s\",\"opportunity_id\":\"%s\"}", id,
             s->outcome, s->opp);
    dlog_decision d = {
        .id = id,
        .time_ms = s->time_ms,
        .adapter = "stage",
        .opp_id = s->opp,
        .pipeline = "default",
        .name = s->name,
        .owner = s->owner,
        .has_amount = s->has_amount,
        .amount = s->amount,
        .currency = s->ccy,
        .clouds_json = s->clouds,
        .from_stage = s->from,
        .to_stage = s->to,
        .outcome = s->outcome,
        .mode = s->mode,
        .message = strcmp(s->outcome, "block") == 0 ? "Register this deal." : "",
        .reasons_json = s->reasons,
        .warnings_json = s->warnings,
        .registrations_json = s->regs,
        .gated = s->gated,
        .won = s->won,
        .lost = s->lost,
        .decision_json = json,
    };
    dg_err rc = dlog_append(l, &d, err, sizeof err);
    if (rc != DG_OK) print_message("append %s: %s\n", id, err);
    assert_int_equal(rc, DG_OK);
}

static void append_comp(dlog *l, int n, int64_t t, const char *rep, const char *cloud,
                        const char *shortfall, int violation)
{
    char id[40], err[256] = "";
    snprintf(id, sizeof id, "cc_kpi%020d", n);
    dlog_comp_line c = {.id = id,
                        .time_ms = t,
                        .batch_id = "b1",
                        .deal_id = "X",
                        .rep = rep,
                        .channel = "marketplace",
                        .cloud = cloud,
                        .currency = "USD",
                        .violation = violation,
                        .codes_json = violation ? "[\"commission_below_direct_equivalent\"]" : "[]",
                        .shortfall = shortfall,
                        .result_json = "{\"ok\":false}"};
    assert_int_equal(dlog_append_comp(l, &c, 1, err, sizeof err), DG_OK);
}

static void load_fixture(dlog *l, const int *order)
{
    for (size_t i = 0; i < NSTEPS; i++) {
        size_t k = order ? (size_t)order[i] : i;
        append_step(l, &fixture_steps[k], (int)k);
    }
    append_comp(l, 1, AT(1, 9), "ann", "aws", "12.34", 1);
    append_comp(l, 2, AT(2, 9), "ann", "azure", "0.66", 1);
    append_comp(l, 3, AT(3, 9), "bob", NULL, "100.00", 1);
    append_comp(l, 4, AT(3, 10), "cy", "aws", "0.00", 0);
}

/* ---- reading the KPI object -------------------------------------------------------------- */

static cJSON *kpis(dlog *l, const char *since, const char *until, const char *cloud, int comp)
{
    dlog_kpi_query q = {.since_day = since, .until_day = until, .cloud = cloud, .comp = comp};
    char *json = NULL, err[256] = "";
    dg_err rc = dlog_kpis(l, &q, &json, err, sizeof err);
    if (rc != DG_OK) print_message("kpis: %s\n", err);
    assert_int_equal(rc, DG_OK);
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    free(json);
    return o;
}

static void assert_rate(const cJSON *o, const char *k, double expect)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (expect < 0) {
        if (!cJSON_IsNull(v)) print_message("%s: expected null\n", k);
        assert_true(cJSON_IsNull(v));
        return;
    }
    assert_true(cJSON_IsNumber(v));
    if (!(v->valuedouble > expect - 1e-9 && v->valuedouble < expect + 1e-9))
        print_message("%s: %.12g, expected %.12g\n", k, v->valuedouble, expect);
    assert_true(v->valuedouble > expect - 1e-9 && v->valuedouble < expect + 1e-9);
}

static void assert_num(const cJSON *o, const char *k, double expect)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_true(cJSON_IsNumber(v));
    assert_true(v->valuedouble == expect);
}

static void assert_money(const cJSON *o, const char *path1, const char *path2, const char *expect)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, path1);
    if (path2) v = cJSON_GetObjectItemCaseSensitive(v, path2);
    if (!cJSON_IsString(v) || strcmp(v->valuestring, expect) != 0)
        print_message("%s.%s: expected %s\n", path1, path2 ? path2 : "", expect);
    assert_true(cJSON_IsString(v));
    assert_string_equal(v->valuestring, expect);
}

static int nmembers(const cJSON *o)
{
    return cJSON_GetArraySize(o);
}

static const char *const keys[] = {
    "registration_rate",     "first_pass_rate",
    "late_registrations",    "win_rate_registered",
    "win_rate_unregistered", "inbound_share",
    "attributed_revenue",    "median_days_registration_to_close",
    "blocks_by_code",        "comp_violations",
    "comp_total_shortfall",
};

/* The whole-window figures, hand-computed (see the fixture above). */
static void check_full_window(dlog *l)
{
    cJSON *o = kpis(l, "2026-10-01", "2026-10-07", NULL, 1);
    /* exactly DESIGN.md's keys */
    assert_int_equal(nmembers(o), (int)(sizeof keys / sizeof keys[0]));
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        assert_non_null(cJSON_GetObjectItemCaseSensitive(o, keys[i]));
    /* reached a gated stage: A (d1), B (d0), C (d0), F (d2) = 4; all verified: A, B, F */
    assert_rate(o, "registration_rate", 3.0 / 4);
    /* allowed on the first gated move: B, C, F; blocked first, allowed later: A */
    assert_rate(o, "first_pass_rate", 3.0 / 4);
    assert_num(o, "late_registrations", 1);
    /* registered: won A, F; lost B -> 2/3. unregistered: won C; lost E -> 1/2 */
    assert_rate(o, "win_rate_registered", 2.0 / 3);
    assert_rate(o, "win_rate_unregistered", 1.0 / 2);
    /* verified registrations: A aws (partner), B aws (cloud), B azure (partner), F azure
     * (cloud) -> 2/4 */
    assert_rate(o, "inbound_share", 0.5);
    /* won with a verified registration: A 100000.00 USD on aws, F 2500.50 USD on azure */
    const cJSON *rev = cJSON_GetObjectItemCaseSensitive(o, "attributed_revenue");
    assert_int_equal(nmembers(rev), 2);
    assert_money(rev, "aws", "USD", "100000.00");
    assert_money(rev, "azure", "USD", "2500.50");
    /* A: 10-06 - 09-20 = 16 days; F: 10-07 - 10-01 = 6 days; median (6 + 16) / 2 */
    assert_rate(o, "median_days_registration_to_close", 11);
    /* one decision blocked for a missing registration (A), two for a rejected one (D) */
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "blocks_by_code");
    assert_int_equal(nmembers(b), 2);
    assert_num(b, "registration_missing", 1);
    assert_num(b, "registration_not_accepted", 2);
    /* 3 violating lines, 12.34 + 0.66 + 100.00 */
    assert_num(o, "comp_violations", 3);
    assert_money(o, "comp_total_shortfall", "USD", "113.00");
    cJSON_Delete(o);
}

static void test_full_window(void **state)
{
    fixture *f = *state;
    load_fixture(f->l, NULL);
    check_full_window(f->l);
}

static void test_cloud_filter(void **state)
{
    fixture *f = *state;
    load_fixture(f->l, NULL);
    cJSON *o = kpis(f->l, "2026-10-01", "2026-10-07", "aws", 1);
    /* reached with aws checked: A, B, C; aws verified: A, B; first pass: B, C */
    assert_rate(o, "registration_rate", 2.0 / 3);
    assert_rate(o, "first_pass_rate", 2.0 / 3);
    assert_num(o, "late_registrations", 1);
    /* deals naming aws that closed: A won (aws reg), B lost (aws reg), C won (no reg) */
    assert_rate(o, "win_rate_registered", 1.0 / 2);
    assert_rate(o, "win_rate_unregistered", 1.0);
    assert_rate(o, "inbound_share", 0.5); /* A partner, B cloud */
    const cJSON *rev = cJSON_GetObjectItemCaseSensitive(o, "attributed_revenue");
    assert_int_equal(nmembers(rev), 1);
    assert_money(rev, "aws", "USD", "100000.00");
    assert_rate(o, "median_days_registration_to_close", 16);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "blocks_by_code");
    assert_num(b, "registration_missing", 1);
    assert_num(b, "registration_not_accepted", 2);
    assert_num(o, "comp_violations", 1);
    assert_money(o, "comp_total_shortfall", "USD", "12.34");
    cJSON_Delete(o);

    o = kpis(f->l, "2026-10-01", "2026-10-07", "azure", 1);
    /* reached with azure checked: B, F, both verified, both first pass */
    assert_rate(o, "registration_rate", 1.0);
    assert_rate(o, "first_pass_rate", 1.0);
    assert_num(o, "late_registrations", 0);
    assert_rate(o, "win_rate_registered", 1.0 / 2); /* F won, B lost */
    assert_rate(o, "win_rate_unregistered", -1);    /* no unregistered azure deal closed */
    assert_rate(o, "inbound_share", 0.5);           /* B partner, F cloud */
    assert_money(cJSON_GetObjectItemCaseSensitive(o, "attributed_revenue"), "azure", "USD",
                 "2500.50");
    assert_rate(o, "median_days_registration_to_close", 6);
    assert_int_equal(nmembers(cJSON_GetObjectItemCaseSensitive(o, "blocks_by_code")), 0);
    assert_num(o, "comp_violations", 1);
    assert_money(o, "comp_total_shortfall", "USD", "0.66");
    cJSON_Delete(o);

    o = kpis(f->l, "2026-10-01", "2026-10-07", "gcp", 1);
    assert_rate(o, "registration_rate", -1);
    assert_rate(o, "inbound_share", -1);
    assert_rate(o, "median_days_registration_to_close", -1);
    assert_num(o, "comp_violations", 0);
    cJSON_Delete(o);
}

static void test_windows(void **state)
{
    fixture *f = *state;
    load_fixture(f->l, NULL);
    /* d0..d2: every deal reached the gate by d2; closed in it: only C (won, unregistered) */
    cJSON *o = kpis(f->l, "2026-10-01", "2026-10-03", NULL, 1);
    assert_rate(o, "registration_rate", 3.0 / 4);
    assert_rate(o, "win_rate_registered", -1);
    assert_rate(o, "win_rate_unregistered", 1.0);
    assert_rate(o, "median_days_registration_to_close", -1);
    assert_int_equal(nmembers(cJSON_GetObjectItemCaseSensitive(o, "attributed_revenue")), 0);
    assert_num(o, "comp_violations", 2); /* d1, d2 */
    assert_money(o, "comp_total_shortfall", "USD", "13.00");
    cJSON_Delete(o);
    /* d1 alone: A reached (late), D blocked, ann's first line */
    o = kpis(f->l, "2026-10-02", "2026-10-02", NULL, 1);
    assert_rate(o, "registration_rate", 1.0);
    assert_rate(o, "first_pass_rate", 0.0);
    assert_num(o, "late_registrations", 1);
    assert_rate(o, "inbound_share", 0.0); /* A's aws registration, origin partner */
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "blocks_by_code");
    assert_int_equal(nmembers(b), 1);
    assert_num(b, "registration_not_accepted", 1);
    cJSON_Delete(o);
    /* d6 alone: F won (6 days) */
    o = kpis(f->l, "2026-10-07", "2026-10-07", NULL, 1);
    assert_rate(o, "registration_rate", -1);
    assert_rate(o, "win_rate_registered", 1.0);
    assert_rate(o, "median_days_registration_to_close", 6);
    cJSON_Delete(o);
    /* an empty window */
    o = kpis(f->l, "2027-01-01", "2027-01-31", NULL, 1);
    assert_rate(o, "registration_rate", -1);
    assert_rate(o, "first_pass_rate", -1);
    assert_num(o, "late_registrations", 0);
    assert_rate(o, "win_rate_registered", -1);
    assert_rate(o, "win_rate_unregistered", -1);
    assert_rate(o, "inbound_share", -1);
    assert_num(o, "comp_violations", 0);
    assert_int_equal(nmembers(cJSON_GetObjectItemCaseSensitive(o, "comp_total_shortfall")), 0);
    cJSON_Delete(o);
}

static void test_comp_hidden_without_comp(void **state)
{
    fixture *f = *state;
    load_fixture(f->l, NULL);
    cJSON *o = kpis(f->l, "2026-10-01", "2026-10-07", NULL, 0);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "comp_violations")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "comp_total_shortfall")));
    assert_rate(o, "registration_rate", 3.0 / 4); /* the rest is unchanged */
    cJSON_Delete(o);
}

static void test_bad_queries(void **state)
{
    fixture *f = *state;
    char *json = NULL, err[256] = "";
    dlog_kpi_query q = {.since_day = "2026-10-07", .until_day = "2026-10-01"};
    assert_int_equal(dlog_kpis(f->l, &q, &json, err, sizeof err), DG_EINVAL);
    assert_null(json);
    q = (dlog_kpi_query){.since_day = "2026-13-01", .until_day = "2026-12-01"};
    assert_int_equal(dlog_kpis(f->l, &q, &json, err, sizeof err), DG_EINVAL);
    q = (dlog_kpi_query){.since_day = "2026-10-01'; --", .until_day = "2026-12-01"};
    assert_int_equal(dlog_kpis(f->l, &q, &json, err, sizeof err), DG_EINVAL);
    q = (dlog_kpi_query){.since_day = "2026-10-01", .until_day = "2026-12-01", .cloud = "a|b"};
    assert_int_equal(dlog_kpis(f->l, &q, &json, err, sizeof err), DG_EINVAL);
}

/* Decisions arriving in another order (late commits of concurrent requests) give the same
 * counters: each deal's contribution is recomputed from its state. */
static void test_out_of_order_same_kpis(void **state)
{
    fixture *f = *state;
    static const int order[NSTEPS] = {12, 2, 4, 0, 6, 10, 1, 3, 11, 5, 8, 7, 9};
    load_fixture(f->l, order);
    check_full_window(f->l);
    cJSON *o = kpis(f->l, "2026-10-02", "2026-10-02", NULL, 1);
    assert_rate(o, "first_pass_rate", 0.0);
    assert_num(o, "late_registrations", 1);
    cJSON_Delete(o);
}

/* A won deal that is reopened no longer counts as won; won again, it counts on that day. */
static void test_reopened_deal(void **state)
{
    fixture *f = *state;
    load_fixture(f->l, NULL);
    step s = fixture_steps[2]; /* A won on d5 */
    s.time_ms = AT(6, 1);
    s.from = "Closed Won";
    s.to = "Negotiation";
    s.won = 0;
    append_step(f->l, &s, 100);
    cJSON *o = kpis(f->l, "2026-10-01", "2026-10-07", NULL, 1);
    assert_rate(o, "win_rate_registered", 1.0 / 2); /* F won, B lost */
    assert_int_equal(nmembers(cJSON_GetObjectItemCaseSensitive(o, "attributed_revenue")), 1);
    assert_rate(o, "median_days_registration_to_close", 6);
    cJSON_Delete(o);
    s.time_ms = AT(7, 1);
    s.from = "Negotiation";
    s.to = "Closed Won";
    s.won = 1;
    append_step(f->l, &s, 101);
    o = kpis(f->l, "2026-10-08", "2026-10-08", NULL, 1);
    assert_rate(o, "win_rate_registered", 1.0);
    assert_money(cJSON_GetObjectItemCaseSensitive(o, "attributed_revenue"), "aws", "USD",
                 "100000.00");
    assert_rate(o, "median_days_registration_to_close", 18); /* 10-08 - 09-20 */
    cJSON_Delete(o);
}

static cJSON *blocked(dlog *l, const char *owner, const char *cloud, const char *reason)
{
    dlog_ui_filter uf = {.owner = owner, .cloud = cloud, .reason = reason};
    char *json = NULL, err[256] = "";
    assert_int_equal(dlog_blocked(l, &uf, &json, err, sizeof err), DG_OK);
    cJSON *o = cJSON_Parse(json);
    free(json);
    assert_non_null(o);
    return o;
}

static void check_blocked_d(dlog *l)
{
    cJSON *o = blocked(l, NULL, NULL, NULL);
    assert_num(o, "total", 1); /* A was allowed after its block; D is blocked now */
    const cJSON *d = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "deals"), 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(d, "opportunity_id")->valuestring, "D");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(d, "name")->valuestring,
                        "<script>alert(1)</script>");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(d, "owner")->valuestring, "dan@x");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(d, "stage")->valuestring, "Proposal");
    assert_num(d, "amount", 7700);
    assert_num(d, "since", (double)AT(1, 13)); /* blocked twice in a row: since the first */
    assert_num(d, "time", (double)AT(2, 13));
    const cJSON *codes = cJSON_GetObjectItemCaseSensitive(d, "codes");
    assert_int_equal(cJSON_GetArraySize(codes), 1);
    assert_string_equal(cJSON_GetArrayItem(codes, 0)->valuestring, "registration_not_accepted");
    cJSON_Delete(o);
}

static void test_blocked_now(void **state)
{
    fixture *f = *state;
    load_fixture(f->l, NULL);
    check_blocked_d(f->l);
    cJSON *o = blocked(f->l, "dan@x", "aws", "registration_not_accepted");
    assert_num(o, "total", 1);
    cJSON_Delete(o);
    o = blocked(f->l, "ann@x", NULL, NULL);
    assert_num(o, "total", 0);
    cJSON_Delete(o);
    o = blocked(f->l, NULL, "azure", NULL);
    assert_num(o, "total", 0);
    cJSON_Delete(o);
    o = blocked(f->l, NULL, "aw", NULL); /* a prefix of a cloud key is not that cloud */
    assert_num(o, "total", 0);
    cJSON_Delete(o);
    o = blocked(f->l, NULL, NULL, "registration_missing");
    assert_num(o, "total", 0);
    cJSON_Delete(o);
    /* the deal is allowed: no longer blocked */
    step s = fixture_steps[8];
    s.time_ms = AT(3, 13);
    s.outcome = "allow";
    s.reasons = "[]";
    append_step(f->l, &s, 102);
    o = blocked(f->l, NULL, NULL, NULL);
    assert_num(o, "total", 0);
    cJSON_Delete(o);
}

static void test_recent(void **state)
{
    fixture *f = *state;
    load_fixture(f->l, NULL);
    dlog_ui_filter uf = {.limit = 3};
    char *json = NULL, err[256] = "";
    assert_int_equal(dlog_recent(f->l, &uf, 1000, &json, err, sizeof err), DG_OK);
    cJSON *o = cJSON_Parse(json);
    free(json);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "decisions");
    assert_int_equal(cJSON_GetArraySize(arr), 3);
    /* newest first: F won d6, A won d5, E lost d4 */
    const char *want[] = {"F", "A", "E"};
    for (int i = 0; i < 3; i++)
        assert_string_equal(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(arr, i), "opportunity_id")
                ->valuestring,
            want[i]);
    cJSON_Delete(o);
    uf = (dlog_ui_filter){.reason = "registration_missing", .cloud = "aws"};
    assert_int_equal(dlog_recent(f->l, &uf, 1000, &json, err, sizeof err), DG_OK);
    o = cJSON_Parse(json);
    free(json);
    arr = cJSON_GetObjectItemCaseSensitive(o, "decisions");
    assert_int_equal(cJSON_GetArraySize(arr), 1);
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(arr, 0), "opportunity_id")->valuestring,
        "A");
    cJSON_Delete(o);
    uf = (dlog_ui_filter){.owner = "bob@x"};
    assert_int_equal(dlog_recent(f->l, &uf, 1000, &json, err, sizeof err), DG_OK);
    o = cJSON_Parse(json);
    free(json);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, "decisions")), 2);
    cJSON_Delete(o);
}

static void test_comp_by_rep(void **state)
{
    fixture *f = *state;
    load_fixture(f->l, NULL);
    dlog_kpi_query q = {.since_day = "2026-10-01", .until_day = "2026-10-07"};
    char *json = NULL, err[256] = "";
    assert_int_equal(dlog_comp_by_rep(f->l, &q, 10, &json, err, sizeof err), DG_OK);
    cJSON *o = cJSON_Parse(json);
    free(json);
    const cJSON *reps = cJSON_GetObjectItemCaseSensitive(o, "reps");
    assert_int_equal(cJSON_GetArraySize(reps), 2); /* cy's line is clean */
    const cJSON *ann = cJSON_GetArrayItem(reps, 0), *bob = cJSON_GetArrayItem(reps, 1);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(ann, "rep")->valuestring, "ann");
    assert_num(ann, "violations", 2);
    assert_money(ann, "shortfall", "USD", "13.00");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(bob, "rep")->valuestring, "bob");
    assert_num(bob, "violations", 1);
    assert_money(bob, "shortfall", "USD", "100.00");
    cJSON_Delete(o);
}

/* A log written before schema step 2: the KPI state is rebuilt from the decisions at open. */
static void test_rebuild_on_open(void **state)
{
    fixture *f = *state;
    load_fixture(f->l, NULL);
    dlog_close(f->l);
    f->l = NULL;
    char path[256];
    snprintf(path, sizeof path, "%s/dealgate.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "DELETE FROM deal_kpi; DELETE FROM deal_regs;"
                                  " DELETE FROM daily WHERE metric GLOB 'k_*'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    char err[256] = "";
    assert_int_equal(dlog_open(f->dir, &f->l, err, sizeof err), DG_OK);
    check_full_window(f->l);
    check_blocked_d(f->l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_window, setup, dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_cloud_filter, setup, dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_windows, setup, dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_comp_hidden_without_comp, setup, dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_bad_queries, setup, dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_out_of_order_same_kpis, setup, dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_reopened_deal, setup, dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_blocked_now, setup, dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_recent, setup, dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_comp_by_rep, setup, dlog_fixture_close),
        cmocka_unit_test_setup_teardown(test_rebuild_on_open, setup, dlog_fixture_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
