/* test_comp.c — the commission verdict: every code, rounding, currencies, tolerance,
 * split, plan look-up, overflow. The config is built by hand (no INI parsing here). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "config/cfg.h"
#include "config/money.h"
#include "rules/comp.h"

#define PCT(x) ((dg_rate)((x)*10000000LL)) /* whole percents as dg_rate */

typedef struct {
    struct cfg c;
    cfg_map fees[2];
    dg_rate fee_rates[2];
    cfg_map plans[3];
    dg_rate plan_rates[3];
    rules_comp_ctx ctx;
} fixture;

static void setup_cfg(fixture *f, const char *tolerance, dg_rounding rounding, int allow_uplift,
                      int with_default)
{
    char err[160];
    memset(f, 0, sizeof *f);
    memcpy(f->c.server.currency, "USD", 4);
    f->fees[0] = (cfg_map){"aws", "3%"};
    f->fee_rates[0] = PCT(3);
    f->fees[1] = (cfg_map){"azure", "3%"};
    f->fee_rates[1] = PCT(3);
    f->c.comp.fees = f->fees;
    f->c.comp.fee_rates = f->fee_rates;
    f->c.comp.nfees = 2;
    f->plans[0] = (cfg_map){"partner", "8%"};
    f->plan_rates[0] = PCT(8);
    f->plans[1] = (cfg_map){"default", "10%"};
    f->plan_rates[1] = PCT(10);
    f->c.comp.plans = f->plans;
    f->c.comp.plan_rates = f->plan_rates;
    f->c.comp.nplans = with_default ? 2 : 1;
    if (tolerance) {
        f->c.comp.has_tolerance = 1;
        f->c.comp.tolerance = (char *)tolerance;
    }
    f->c.comp.rounding = rounding;
    f->c.comp.allow_uplift = allow_uplift;
    assert_int_equal(rules_comp_ctx_init(&f->ctx, &f->c, err, sizeof err), DG_OK);
}

/* A marketplace AWS line in USD: amounts in cents. */
static rules_comp_line mp(int64_t acv, int64_t commission)
{
    rules_comp_line l;
    memset(&l, 0, sizeof l);
    l.marketplace = 1;
    l.cloud = "aws";
    l.exponent = 2;
    l.acv = acv;
    l.commission = commission;
    l.split = DG_RATE_SCALE;
    return l;
}

static rules_comp_verdict check_ok(const fixture *f, const rules_comp_line *l)
{
    rules_comp_verdict v;
    char err[256] = "";
    dg_err rc = rules_comp_check(&f->ctx, l, &v, err, sizeof err);
    if (rc != DG_OK) fail_msg("unexpected error: %s", err);
    return v;
}

static int has_code(const rules_comp_verdict *v, rules_comp_code c)
{
    return (v->codes >> c) & 1u;
}

static const char *reason_msg(const rules_comp_verdict *v, rules_comp_code c)
{
    for (size_t i = 0; i < v->nreasons; i++)
        if (v->reasons[i].code == c) return v->reasons[i].message;
    return "";
}

static void test_code_names(void **state)
{
    (void)state;
    assert_string_equal(rules_comp_code_name(RULES_COMP_FEE_DEDUCTED_FROM_BASE),
                        "fee_deducted_from_base");
    assert_string_equal(rules_comp_code_name(RULES_COMP_RATE_BELOW_DIRECT), "rate_below_direct");
    assert_string_equal(rules_comp_code_name(RULES_COMP_COMMISSION_BELOW_DIRECT_EQUIVALENT),
                        "commission_below_direct_equivalent");
    assert_string_equal(rules_comp_code_name(RULES_COMP_CALCULATION_MISMATCH),
                        "calculation_mismatch");
    assert_string_equal(rules_comp_code_name(RULES_COMP_MARKETPLACE_UPLIFT), "marketplace_uplift");
    assert_string_equal(rules_comp_code_name(RULES_COMP_NCODES), "unknown");
}

static void test_clean_marketplace(void **state)
{
    (void)state;
    fixture f;
    setup_cfg(&f, NULL, DG_ROUND_HALF_UP, 1, 1);
    rules_comp_line l = mp(10000000, 1000000); /* 100,000.00 and 10,000.00 */
    l.has_base = 1;
    l.base = 10000000;
    l.has_rate = 1;
    l.rate = PCT(10);
    rules_comp_verdict v = check_ok(&f, &l);
    assert_int_equal(v.nreasons, 0);
    assert_int_equal(v.violation, 0);
    assert_int_equal(v.warning, 0);
    assert_int_equal(v.expected, 1000000);
    assert_int_equal(v.actual, 1000000);
    assert_int_equal(v.shortfall, 0);
    assert_int_equal(v.dr_source, RULES_COMP_DR_DEFAULT);
    assert_int_equal(v.direct_rate, PCT(10));
}

static void test_fee_deducted_explained(void **state)
{
    (void)state;
    fixture f;
    setup_cfg(&f, NULL, DG_ROUND_HALF_UP, 1, 1);
    rules_comp_line l = mp(10000000, 970000);
    l.has_base = 1;
    l.base = 9700000;
    l.has_rate = 1;
    l.rate = PCT(10);
    rules_comp_verdict v = check_ok(&f, &l);
    assert_true(v.violation);
    assert_int_equal(v.nreasons, 2);
    assert_int_equal(v.reasons[0].code, RULES_COMP_FEE_DEDUCTED_FROM_BASE);
    assert_string_equal(v.reasons[0].message,
                        "base 97,000.00 is ACV 100,000.00 less the 3% AWS fee");
    assert_int_equal(v.reasons[1].code, RULES_COMP_COMMISSION_BELOW_DIRECT_EQUIVALENT);
    assert_non_null(strstr(v.reasons[1].message, "3% AWS fee came out of the rep's pay"));
    assert_false(has_code(&v, RULES_COMP_CALCULATION_MISMATCH)); /* 10% x 97,000 = 9,700 */
    assert_false(has_code(&v, RULES_COMP_RATE_BELOW_DIRECT));
    assert_int_equal(v.expected, 1000000);
    assert_int_equal(v.actual, 970000);
    assert_int_equal(v.shortfall, 30000);
}

static void test_fee_deducted_unexplained(void **state)
{
    (void)state;
    fixture f;
    setup_cfg(&f, NULL, DG_ROUND_HALF_UP, 1, 1);
    rules_comp_line l = mp(10000000, 1000000);
    l.has_base = 1;
    l.base = 9500000;
    rules_comp_verdict v = check_ok(&f, &l);
    assert_int_equal(v.nreasons, 1);
    assert_true(has_code(&v, RULES_COMP_FEE_DEDUCTED_FROM_BASE));
    assert_string_equal(reason_msg(&v, RULES_COMP_FEE_DEDUCTED_FROM_BASE),
                        "base 95,000.00 is 5,000.00 below ACV 100,000.00");
    assert_int_equal(v.shortfall, 0); /* paid the neutral commission anyway */
    /* a cloud without a fee entry cannot explain it either */
    l.cloud = "gcp";
    l.base = 9700000;
    v = check_ok(&f, &l);
    assert_string_equal(reason_msg(&v, RULES_COMP_FEE_DEDUCTED_FROM_BASE),
                        "base 97,000.00 is 3,000.00 below ACV 100,000.00");
}

static void test_base_at_or_above_gross(void **state)
{
    (void)state;
    fixture f;
    setup_cfg(&f, NULL, DG_ROUND_HALF_UP, 1, 1);
    rules_comp_line l = mp(10000000, 1000000);
    l.has_base = 1;
    l.base = 9999999; /* 0.01 below: within tolerance */
    assert_false(
        has_code((rules_comp_verdict[]){check_ok(&f, &l)}, RULES_COMP_FEE_DEDUCTED_FROM_BASE));
    l.base = 9999998; /* 0.02 below */
    assert_true(
        has_code((rules_comp_verdict[]){check_ok(&f, &l)}, RULES_COMP_FEE_DEDUCTED_FROM_BASE));
    l.base = 12000000; /* above is not this code's business */
    assert_false(
        has_code((rules_comp_verdict[]){check_ok(&f, &l)}, RULES_COMP_FEE_DEDUCTED_FROM_BASE));
}

static void test_rate_below_direct(void **state)
{
    (void)state;
    fixture f;
    setup_cfg(&f, NULL, DG_ROUND_HALF_UP, 1, 1);
    rules_comp_line l = mp(10000000, 970000);
    l.has_base = 1;
    l.base = 10000000;
    l.has_rate = 1;
    l.rate = 97000000; /* 9.7% = 10% less 3% of it */
    rules_comp_verdict v = check_ok(&f, &l);
    assert_true(has_code(&v, RULES_COMP_RATE_BELOW_DIRECT));
    assert_string_equal(reason_msg(&v, RULES_COMP_RATE_BELOW_DIRECT),
                        "rate 9.7% is the direct rate 10% (plan.default) less the 3% AWS fee");
    assert_true(has_code(&v, RULES_COMP_COMMISSION_BELOW_DIRECT_EQUIVALENT));
    assert_false(has_code(&v, RULES_COMP_CALCULATION_MISMATCH));
    assert_int_equal(v.shortfall, 30000);

    l.rate = PCT(9);
    l.commission = 900000;
    v = check_ok(&f, &l);
    assert_string_equal(reason_msg(&v, RULES_COMP_RATE_BELOW_DIRECT),
                        "rate 9% is below the direct rate 10% (plan.default)");
    /* equal rate: fine */
    l.rate = PCT(10);
    l.commission = 1000000;
    v = check_ok(&f, &l);
    assert_int_equal(v.nreasons, 0);
}

static void test_commission_below_direct_equivalent(void **state)
{
    (void)state;
    fixture f;
    setup_cfg(&f, NULL, DG_ROUND_HALF_UP, 1, 1);
    rules_comp_line l = mp(10000000, 950000); /* no base, no rate */
    rules_comp_verdict v = check_ok(&f, &l);
    assert_int_equal(v.nreasons, 1);
    assert_true(v.violation);
    assert_true(has_code(&v, RULES_COMP_COMMISSION_BELOW_DIRECT_EQUIVALENT));
    assert_string_equal(v.reasons[0].message, "paid 9,500.00, 500.00 less than the direct "
                                              "equivalent 10,000.00 (10% x ACV 100,000.00)");
    assert_int_equal(v.shortfall, 50000);
    assert_int_equal(v.expected, 1000000);
}

static void test_calculation_mismatch(void **state)
{
    (void)state;
    fixture f;
    setup_cfg(&f, NULL, DG_ROUND_HALF_UP, 1, 1);
    rules_comp_line l = mp(5000000, 490000);
    l.marketplace = 0;
    l.has_base = 1;
    l.base = 5000000;
    l.has_rate = 1;
    l.rate = PCT(10);
    rules_comp_verdict v = check_ok(&f, &l);
    assert_int_equal(v.nreasons, 1);
    assert_true(has_code(&v, RULES_COMP_CALCULATION_MISMATCH));
    assert_string_equal(v.reasons[0].message,
                        "commission 4,900.00 is not rate 10% x base 50,000.00 = 5,000.00");
    assert_int_equal(v.expected, 500000);
    assert_int_equal(v.shortfall, 10000);

    l.commission = 510000; /* overpaid: a mismatch, no shortfall */
    v = check_ok(&f, &l);
    assert_true(has_code(&v, RULES_COMP_CALCULATION_MISMATCH));
    assert_int_equal(v.shortfall, 0);

    l.commission = 500001; /* within tolerance */
    v = check_ok(&f, &l);
    assert_int_equal(v.nreasons, 0);

    /* only when both rate and base are given */
    l.commission = 1;
    l.has_base = 0;
    v = check_ok(&f, &l);
    assert_int_equal(v.nreasons, 0);
    assert_int_equal(v.expected, 1); /* nothing to compare on a direct line */
    l.has_base = 1;
    l.has_rate = 0;
    v = check_ok(&f, &l);
    assert_int_equal(v.nreasons, 0);

    /* on a marketplace line too, beside the other codes */
    l = mp(10000000, 900000);
    l.has_base = 1;
    l.base = 10000000;
    l.has_rate = 1;
    l.rate = PCT(10);
    v = check_ok(&f, &l);
    assert_true(has_code(&v, RULES_COMP_CALCULATION_MISMATCH));
    assert_true(has_code(&v, RULES_COMP_COMMISSION_BELOW_DIRECT_EQUIVALENT));
    assert_int_equal(v.shortfall, 100000);
}

static void test_direct_lines_skip_marketplace_codes(void **state)
{
    (void)state;
    fixture f;
    setup_cfg(&f, NULL, DG_ROUND_HALF_UP, 1, 0); /* no plan.default */
    rules_comp_line l = mp(10000000, 500000);
    l.marketplace = 0;
    l.has_base = 1;
    l.base = 9700000;
    rules_comp_verdict v = check_ok(&f, &l);
    assert_int_equal(v.nreasons, 0);
    assert_int_equal(v.dr_source, RULES_COMP_DR_NONE);
}

static void test_uplift(void **state)
{
    (void)state;
    fixture f;
    setup_cfg(&f, NULL, DG_ROUND_HALF_UP, 1, 1);
    rules_comp_line l = mp(10000000, 1050000);
    rules_comp_verdict v = check_ok(&f, &l);
    assert_int_equal(v.nreasons, 1);
    assert_true(has_code(&v, RULES_COMP_MARKETPLACE_UPLIFT));
    assert_false(v.violation);
    assert_true(v.warning);
    assert_int_equal(v.reasons[0].violation, 0);
    assert_string_equal(v.reasons[0].message,
                        "paid 10,500.00, 500.00 more than the direct equivalent 10,000.00");
    assert_int_equal(v.shortfall, 0);

    setup_cfg(&f, NULL, DG_ROUND_HALF_UP, 0, 1); /* allow_uplift = no */
    v = check_ok(&f, &l);
    assert_true(v.violation);
    assert_false(v.warning);
    assert_int_equal(v.reasons[0].violation, 1);
    assert_non_null(strstr(v.reasons[0].message, "allow_uplift = no"));

    l.commission = 1000001; /* within tolerance: no uplift */
    v = check_ok(&f, &l);
    assert_int_equal(v.nreasons, 0);
}

static void test_tolerance(void **state)
{
    (void)state;
    fixture f;
    setup_cfg(&f, NULL, DG_ROUND_HALF_UP, 1, 1);
    assert_int_equal(f.ctx.tolerance[0], 0);  /* 0.01 is finer than a yen */
    assert_int_equal(f.ctx.tolerance[2], 1);  /* one cent */
    assert_int_equal(f.ctx.tolerance[3], 10); /* ten fils */

    rules_comp_line l = mp(10000000, 999999);
    assert_int_equal(check_ok(&f, &l).nreasons, 0); /* exactly the tolerance: clean */
    l.commission = 999998;
    rules_comp_verdict v = check_ok(&f, &l);
    assert_true(has_code(&v, RULES_COMP_COMMISSION_BELOW_DIRECT_EQUIVALENT));
    assert_int_equal(v.shortfall, 2);

    setup_cfg(&f, "5", DG_ROUND_HALF_UP, 1, 1); /* five dollars */
    assert_int_equal(f.ctx.tolerance[2], 500);
    assert_int_equal(f.ctx.tolerance[0], 5);
    l.commission = 999500;
    assert_int_equal(check_ok(&f, &l).nreasons, 0);
    l.commission = 999499;
    assert_int_equal(check_ok(&f, &l).nreasons, 1);

    setup_cfg(&f, "0", DG_ROUND_HALF_UP, 1, 1);
    l.commission = 999999;
    assert_int_equal(check_ok(&f, &l).nreasons, 1);

    /* a bad or negative tolerance is a config error */
    char err[160];
    f.c.comp.tolerance = "abc";
    assert_int_equal(rules_comp_ctx_init(&f.ctx, &f.c, err, sizeof err), DG_ECONFIG);
    assert_non_null(strstr(err, "tolerance"));
    f.c.comp.tolerance = "-1";
    assert_int_equal(rules_comp_ctx_init(&f.ctx, &f.c, err, sizeof err), DG_ECONFIG);
}

static void test_rounding(void **state)
{
    (void)state;
    fixture f;
    /* 10% of 0.25 is 0.025: half_up 0.03, half_even 0.02 */
    setup_cfg(&f, "0", DG_ROUND_HALF_UP, 1, 1);
    rules_comp_line l = mp(25, 3);
    rules_comp_verdict v = check_ok(&f, &l);
    assert_int_equal(v.expected, 3);
    assert_int_equal(v.nreasons, 0);
    setup_cfg(&f, "0", DG_ROUND_HALF_EVEN, 1, 1);
    v = check_ok(&f, &l);
    assert_int_equal(v.expected, 2);
    assert_true(has_code(&v, RULES_COMP_MARKETPLACE_UPLIFT));
    /* 10% of 0.35 is 0.035: both round to 0.04 */
    l.acv = 35;
    l.commission = 4;
    assert_int_equal(check_ok(&f, &l).expected, 4);
    /* one rounding at the end: 10% x 50% of 0.05 = 0.0025 -> 0.00, not 0.01 */
    setup_cfg(&f, "0", DG_ROUND_HALF_UP, 1, 1);
    l.acv = 5;
    l.split = PCT(50);
    l.commission = 0;
    assert_int_equal(check_ok(&f, &l).expected, 0);
    /* negative amounts (clawbacks) round away from zero on half_up */
    l = mp(-25, -3);
    assert_int_equal(check_ok(&f, &l).expected, -3);
}

static void test_currencies(void **state)
{
    (void)state;
    fixture f;
    setup_cfg(&f, NULL, DG_ROUND_HALF_UP, 1, 1);
    /* JPY: exponent 0, tolerance 0.01 -> 0 yen */
    rules_comp_line l = mp(1000000, 99999);
    l.exponent = 0;
    rules_comp_verdict v = check_ok(&f, &l);
    assert_int_equal(v.expected, 100000);
    assert_int_equal(v.shortfall, 1);
    assert_string_equal(v.reasons[0].message, "paid 99,999, 1 less than the direct equivalent "
                                              "100,000 (10% x ACV 1,000,000)");
    /* 10% of 5 yen is 0.5 -> 1 yen (half up) */
    l = mp(5, 1);
    l.exponent = 0;
    assert_int_equal(check_ok(&f, &l).nreasons, 0);

    /* KWD: exponent 3, tolerance 0.010 */
    l = mp(1000000, 99990); /* 1,000.000 KWD, paid 99.990 */
    l.exponent = 3;
    v = check_ok(&f, &l);
    assert_int_equal(v.expected, 100000);
    assert_int_equal(v.nreasons, 0);
    l.commission = 99989;
    v = check_ok(&f, &l);
    assert_int_equal(v.shortfall, 11);
    assert_non_null(strstr(v.reasons[0].message, "0.011 less than the direct equivalent 100.000"));

    l.exponent = RULES_COMP_MAX_EXPONENT + 1;
    char err[160];
    assert_int_equal(rules_comp_check(&f.ctx, &l, &v, err, sizeof err), DG_ERANGE);
}

static void test_overflow(void **state)
{
    (void)state;
    fixture f;
    char err[256];
    rules_comp_verdict v;
    setup_cfg(&f, NULL, DG_ROUND_HALF_UP, 1, 1);
    rules_comp_line l = mp(INT64_MAX, 0);
    l.has_direct_rate = 1;
    l.direct_rate = 2 * DG_RATE_SCALE; /* 200% of the largest amount does not fit */
    assert_int_equal(rules_comp_check(&f.ctx, &l, &v, err, sizeof err), DG_EOVERFLOW);
    assert_non_null(strstr(err, "too large"));

    l = mp(INT64_MAX, INT64_MIN); /* neutral - commission does not fit */
    assert_int_equal(rules_comp_check(&f.ctx, &l, &v, err, sizeof err), DG_EOVERFLOW);

    l = mp(100, 10);
    l.marketplace = 0;
    l.has_base = 1;
    l.base = INT64_MAX;
    l.has_rate = 1;
    l.rate = 5 * DG_RATE_SCALE;
    assert_int_equal(rules_comp_check(&f.ctx, &l, &v, err, sizeof err), DG_EOVERFLOW);
    assert_non_null(strstr(err, "commission_base"));

    /* large but fitting amounts are exact */
    l = mp(INT64_MAX / 2, 0);
    l.has_direct_rate = 1;
    l.direct_rate = DG_RATE_SCALE;
    v = check_ok(&f, &l);
    assert_int_equal(v.expected, INT64_MAX / 2);
    assert_int_equal(v.shortfall, INT64_MAX / 2);
}

static void test_split(void **state)
{
    (void)state;
    fixture f;
    setup_cfg(&f, NULL, DG_ROUND_HALF_UP, 1, 1);
    rules_comp_line l = mp(10000000, 500000);
    l.split = PCT(50);
    l.has_base = 1;
    l.base = 5000000;
    l.has_rate = 1;
    l.rate = PCT(10);
    rules_comp_verdict v = check_ok(&f, &l);
    assert_int_equal(v.nreasons, 0);
    assert_int_equal(v.expected, 500000);

    l.base = 4850000; /* 50% of 97,000 */
    l.commission = 485000;
    v = check_ok(&f, &l);
    assert_string_equal(reason_msg(&v, RULES_COMP_FEE_DEDUCTED_FROM_BASE),
                        "base 48,500.00 is ACV 100,000.00 x 50% split less the 3% AWS fee");
    assert_int_equal(v.shortfall, 15000);

    l.base = 4000000;
    v = check_ok(&f, &l);
    assert_string_equal(reason_msg(&v, RULES_COMP_FEE_DEDUCTED_FROM_BASE),
                        "base 40,000.00 is 10,000.00 below ACV 100,000.00 x 50% split = 50,000.00");

    /* a third: 10% x 1/3 of 1,000.00 = 33.333.. -> 33.33 */
    l = mp(100000, 3333);
    l.split = 333333333;
    v = check_ok(&f, &l);
    assert_int_equal(v.expected, 3333);
    assert_int_equal(v.nreasons, 0);
}

static void test_plan_lookup(void **state)
{
    (void)state;
    fixture f;
    char err[256];
    rules_comp_verdict v;
    setup_cfg(&f, NULL, DG_ROUND_HALF_UP, 1, 1);
    rules_comp_line l = mp(10000000, 800000);
    l.plan = "Partner"; /* plan.partner = 8%, matched ignoring case */
    v = check_ok(&f, &l);
    assert_int_equal(v.dr_source, RULES_COMP_DR_PLAN);
    assert_string_equal(v.dr_plan, "partner");
    assert_int_equal(v.direct_rate, PCT(8));
    assert_int_equal(v.nreasons, 0);

    l.plan = "gold"; /* unknown plan: plan.default */
    v = check_ok(&f, &l);
    assert_int_equal(v.dr_source, RULES_COMP_DR_DEFAULT);
    assert_int_equal(v.shortfall, 200000);

    l.has_direct_rate = 1; /* the line's own rate wins over any plan */
    l.direct_rate = PCT(8);
    l.plan = "default";
    v = check_ok(&f, &l);
    assert_int_equal(v.dr_source, RULES_COMP_DR_LINE);
    assert_int_equal(v.nreasons, 0);

    /* no plan.default: an unknown plan on a marketplace line is an error for the line */
    setup_cfg(&f, NULL, DG_ROUND_HALF_UP, 1, 0);
    l.has_direct_rate = 0;
    l.plan = "gold";
    assert_int_equal(rules_comp_check(&f.ctx, &l, &v, err, sizeof err), DG_EINVAL);
    assert_non_null(strstr(err, "direct_rate"));
    assert_non_null(strstr(err, "plan.gold"));
    l.plan = "partner";
    assert_int_equal(check_ok(&f, &l).direct_rate, PCT(8));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_code_names),
        cmocka_unit_test(test_clean_marketplace),
        cmocka_unit_test(test_fee_deducted_explained),
        cmocka_unit_test(test_fee_deducted_unexplained),
        cmocka_unit_test(test_base_at_or_above_gross),
        cmocka_unit_test(test_rate_below_direct),
        cmocka_unit_test(test_commission_below_direct_equivalent),
        cmocka_unit_test(test_calculation_mismatch),
        cmocka_unit_test(test_direct_lines_skip_marketplace_codes),
        cmocka_unit_test(test_uplift),
        cmocka_unit_test(test_tolerance),
        cmocka_unit_test(test_rounding),
        cmocka_unit_test(test_currencies),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_plan_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
