/* test_money.c — exact money: currencies, parsing, formatting, rates, rounding, overflow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>
#include <cmocka.h>

#include "config/money.h"

static dg_err amt(const char *s, int exp, unsigned flags, int64_t *v)
{
    char err[128];
    return dg_amount_parse(s, strlen(s), exp, flags, v, err, sizeof err);
}

static void test_ccy(void **state)
{
    (void)state;
    assert_int_equal(dg_ccy_valid("USD"), 1);
    assert_int_equal(dg_ccy_valid("usd"), 0);
    assert_int_equal(dg_ccy_valid("US"), 0);
    assert_int_equal(dg_ccy_valid("USDX"), 0);
    assert_int_equal(dg_ccy_valid(NULL), 0);
    assert_int_equal(dg_ccy_exponent("JPY"), 0);
    assert_int_equal(dg_ccy_exponent("KRW"), 0);
    assert_int_equal(dg_ccy_exponent("CLP"), 0);
    assert_int_equal(dg_ccy_exponent("ISK"), 0);
    assert_int_equal(dg_ccy_exponent("VND"), 0);
    assert_int_equal(dg_ccy_exponent("XOF"), 0);
    assert_int_equal(dg_ccy_exponent("XAF"), 0);
    assert_int_equal(dg_ccy_exponent("UGX"), 0);
    assert_int_equal(dg_ccy_exponent("PYG"), 0);
    assert_int_equal(dg_ccy_exponent("USD"), 2);
    assert_int_equal(dg_ccy_exponent("EUR"), 2);
    assert_int_equal(dg_ccy_exponent("XYZ"), 2);
    assert_int_equal(dg_ccy_exponent("KWD"), 3);
    assert_int_equal(dg_ccy_exponent("BHD"), 3);
    assert_int_equal(dg_ccy_exponent("OMR"), 3);
    assert_int_equal(dg_ccy_exponent("JOD"), 3);
    assert_int_equal(dg_ccy_exponent("TND"), 3);
    assert_int_equal(dg_ccy_exponent("LYD"), 3);
    assert_int_equal(dg_ccy_exponent("IQD"), 3);
    assert_int_equal(dg_ccy_exponent("jpy"), -1);
}

static void test_amount_parse(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_int_equal(amt("120000.00", 2, 0, &v), DG_OK);
    assert_int_equal(v, 12000000);
    assert_int_equal(amt("  12.5 ", 2, 0, &v), DG_OK);
    assert_int_equal(v, 1250);
    assert_int_equal(amt("7", 2, 0, &v), DG_OK);
    assert_int_equal(v, 700);
    assert_int_equal(amt("-0.01", 2, 0, &v), DG_OK);
    assert_int_equal(v, -1);
    assert_int_equal(amt("-0", 2, 0, &v), DG_OK);
    assert_int_equal(v, 0);
    /* every exponent */
    assert_int_equal(amt("1500", 0, 0, &v), DG_OK);
    assert_int_equal(v, 1500);
    assert_int_equal(amt("1500.5", 0, 0, &v), DG_ERANGE);
    assert_int_equal(amt("1.234", 3, 0, &v), DG_OK);
    assert_int_equal(v, 1234);
    assert_int_equal(amt("1.2345", 3, 0, &v), DG_ERANGE);
    assert_int_equal(amt("1.005", 2, 0, &v), DG_ERANGE);
    /* zeros beyond the exponent change nothing and are accepted */
    assert_int_equal(amt("1500.00", 0, 0, &v), DG_OK);
    assert_int_equal(v, 1500);
    /* malformed */
    assert_int_equal(amt("", 2, 0, &v), DG_EPARSE);
    assert_int_equal(amt("   ", 2, 0, &v), DG_EPARSE);
    assert_int_equal(amt("abc", 2, 0, &v), DG_EPARSE);
    assert_int_equal(amt("1.", 2, 0, &v), DG_EPARSE);
    assert_int_equal(amt(".5", 2, 0, &v), DG_EPARSE);
    assert_int_equal(amt("+5", 2, 0, &v), DG_EPARSE);
    assert_int_equal(amt("--5", 2, 0, &v), DG_EPARSE);
    assert_int_equal(amt("1e5", 2, 0, &v), DG_EPARSE);
    assert_int_equal(amt("1 000", 2, 0, &v), DG_EPARSE);
    assert_int_equal(amt("12.3.4", 2, 0, &v), DG_EPARSE);
    assert_int_equal(amt("0x10", 2, 0, &v), DG_EPARSE);
    /* length-bounded: only the first 3 bytes count */
    char err[128];
    assert_int_equal(dg_amount_parse("123456", 3, 0, 0, &v, err, sizeof err), DG_OK);
    assert_int_equal(v, 123);
    /* error text */
    assert_int_equal(dg_amount_parse("1.005", 5, 2, 0, &v, err, sizeof err), DG_ERANGE);
    assert_string_equal(err, "amount has more than 2 decimal places");
}

static void test_amount_limits(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_int_equal(amt("92233720368547758.07", 2, 0, &v), DG_OK);
    assert_true(v == INT64_MAX);
    assert_int_equal(amt("-92233720368547758.07", 2, 0, &v), DG_OK);
    assert_true(v == -INT64_MAX);
    assert_int_equal(amt("92233720368547758.08", 2, 0, &v), DG_EOVERFLOW);
    assert_int_equal(amt("9223372036854775807", 0, 0, &v), DG_OK);
    assert_true(v == INT64_MAX);
    assert_int_equal(amt("9223372036854775808", 0, 0, &v), DG_EOVERFLOW);
    assert_int_equal(amt("99999999999999999999999", 0, 0, &v), DG_EOVERFLOW);
    assert_int_equal(amt("9223372036854775.808", 3, 0, &v), DG_EOVERFLOW);
    assert_int_equal(amt("000000000000000000000000001", 0, 0, &v), DG_OK);
    assert_int_equal(v, 1);
}

static void test_thousands(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_int_equal(amt("1,250,000.00", 2, DG_AMOUNT_THOUSANDS, &v), DG_OK);
    assert_int_equal(v, 125000000);
    assert_int_equal(amt("-12,345", 0, DG_AMOUNT_THOUSANDS, &v), DG_OK);
    assert_int_equal(v, -12345);
    assert_int_equal(amt("999", 2, DG_AMOUNT_THOUSANDS, &v), DG_OK);
    assert_int_equal(v, 99900);
    assert_int_equal(amt("1,250,000.00", 2, 0, &v), DG_EPARSE);
    assert_int_equal(amt("1,25,0", 2, DG_AMOUNT_THOUSANDS, &v), DG_EPARSE);
    assert_int_equal(amt("1,2500", 2, DG_AMOUNT_THOUSANDS, &v), DG_EPARSE);
    assert_int_equal(amt("1234,567", 2, DG_AMOUNT_THOUSANDS, &v), DG_EPARSE);
    assert_int_equal(amt(",123", 2, DG_AMOUNT_THOUSANDS, &v), DG_EPARSE);
    assert_int_equal(amt("123,", 2, DG_AMOUNT_THOUSANDS, &v), DG_EPARSE);
    assert_int_equal(amt("1,,234", 2, DG_AMOUNT_THOUSANDS, &v), DG_EPARSE);
    assert_int_equal(amt("1.234,56", 2, DG_AMOUNT_THOUSANDS, &v), DG_EPARSE);
}

static void test_money_parse(void **state)
{
    (void)state;
    dg_money m;
    char err[128];
    assert_int_equal(dg_money_parse("10000 USD", "EUR", &m, err, sizeof err), DG_OK);
    assert_int_equal(m.minor, 1000000);
    assert_string_equal(m.ccy, "USD");
    assert_int_equal(dg_money_parse("JPY 5000", "USD", &m, err, sizeof err), DG_OK);
    assert_int_equal(m.minor, 5000);
    assert_string_equal(m.ccy, "JPY");
    assert_int_equal(dg_money_parse("9000", "EUR", &m, err, sizeof err), DG_OK);
    assert_int_equal(m.minor, 900000);
    assert_string_equal(m.ccy, "EUR");
    assert_int_equal(dg_money_parse("1.5 KWD", "USD", &m, err, sizeof err), DG_OK);
    assert_int_equal(m.minor, 1500);
    assert_int_equal(dg_money_parse("1.5 JPY", "USD", &m, err, sizeof err), DG_ERANGE);
    assert_int_equal(dg_money_parse("100 usd", "USD", &m, err, sizeof err), DG_EINVAL);
    assert_int_equal(dg_money_parse("100 DOLLARS", "USD", &m, err, sizeof err), DG_EINVAL);
    assert_int_equal(dg_money_parse("100", NULL, &m, err, sizeof err), DG_EINVAL);
    assert_int_equal(dg_money_parse("ten USD", "USD", &m, err, sizeof err), DG_EPARSE);
    assert_int_equal(dg_money_parse("", "USD", &m, err, sizeof err), DG_EPARSE);
    assert_int_equal(dg_money_parse("10 USD x", "USD", &m, err, sizeof err), DG_EINVAL);
}

static void test_from_double(void **state)
{
    (void)state;
    int64_t v = 0;
    char err[200];
    assert_int_equal(dg_amount_from_double(120000.0, 2, &v, err, sizeof err), DG_OK);
    assert_int_equal(v, 12000000);
    assert_int_equal(dg_amount_from_double(0.1, 2, &v, err, sizeof err), DG_OK);
    assert_int_equal(v, 10);
    assert_int_equal(dg_amount_from_double(19.99, 2, &v, err, sizeof err), DG_OK);
    assert_int_equal(v, 1999);
    assert_int_equal(dg_amount_from_double(-1234.5, 2, &v, err, sizeof err), DG_OK);
    assert_int_equal(v, -123450);
    assert_int_equal(dg_amount_from_double(-0.0, 2, &v, err, sizeof err), DG_OK);
    assert_int_equal(v, 0);
    /* "%g" writes these in exponent notation: 1e+05, 1.5e+07, 1e+11 */
    assert_int_equal(dg_amount_from_double(100000.0, 2, &v, err, sizeof err), DG_OK);
    assert_int_equal(v, 10000000);
    assert_int_equal(dg_amount_from_double(15000000.0, 0, &v, err, sizeof err), DG_OK);
    assert_int_equal(v, 15000000);
    assert_int_equal(dg_amount_from_double(1e11, 3, &v, err, sizeof err), DG_OK);
    assert_true(v == 100000000000000LL);
    assert_int_equal(dg_amount_from_double(999999999999.99, 2, &v, err, sizeof err), DG_OK);
    assert_true(v == 99999999999999LL);
    /* too many decimals, including tiny numbers printed as 1e-05 */
    assert_int_equal(dg_amount_from_double(0.001, 2, &v, err, sizeof err), DG_ERANGE);
    assert_non_null(strstr(err, "string"));
    assert_int_equal(dg_amount_from_double(1e-05, 3, &v, err, sizeof err), DG_ERANGE);
    assert_int_equal(dg_amount_from_double(5e-324, 2, &v, err, sizeof err), DG_ERANGE);
    assert_int_equal(dg_amount_from_double(0.1 + 0.2, 2, &v, err, sizeof err), DG_ERANGE);
    /* limits */
    assert_int_equal(dg_amount_from_double(1e12, 2, &v, err, sizeof err), DG_ERANGE);
    assert_non_null(strstr(err, "string"));
    assert_int_equal(dg_amount_from_double(-1e12, 2, &v, err, sizeof err), DG_ERANGE);
    assert_int_equal(dg_amount_from_double(INFINITY, 2, &v, err, sizeof err), DG_ERANGE);
    assert_int_equal(dg_amount_from_double(NAN, 2, &v, err, sizeof err), DG_ERANGE);
}

static void test_format(void **state)
{
    (void)state;
    char b[DG_MONEY_STRLEN];
    assert_int_equal(dg_amount_format(-123450, 2, b, sizeof b), 8);
    assert_string_equal(b, "-1234.50");
    dg_amount_format(5, 2, b, sizeof b);
    assert_string_equal(b, "0.05");
    dg_amount_format(-5, 3, b, sizeof b);
    assert_string_equal(b, "-0.005");
    dg_amount_format(0, 2, b, sizeof b);
    assert_string_equal(b, "0.00");
    dg_amount_format(1500, 0, b, sizeof b);
    assert_string_equal(b, "1500");
    dg_amount_format(INT64_MAX, 2, b, sizeof b);
    assert_string_equal(b, "92233720368547758.07");
    dg_amount_format(INT64_MIN, 2, b, sizeof b);
    assert_string_equal(b, "-92233720368547758.08");
    dg_amount_format_grouped(123456789, 2, b, sizeof b);
    assert_string_equal(b, "1,234,567.89");
    dg_amount_format_grouped(-100000, 0, b, sizeof b);
    assert_string_equal(b, "-100,000");
    dg_amount_format_grouped(999, 0, b, sizeof b);
    assert_string_equal(b, "999");
    dg_amount_format_grouped(INT64_MIN, 0, b, sizeof b);
    assert_string_equal(b, "-9,223,372,036,854,775,808");
    /* truncation keeps a NUL */
    char small[5];
    assert_int_equal(dg_amount_format(123456, 2, small, sizeof small), 4);
    assert_string_equal(small, "1234");
    /* round trip through the parser */
    int64_t v;
    dg_amount_format_grouped(125000000, 2, b, sizeof b);
    assert_int_equal(amt(b, 2, DG_AMOUNT_THOUSANDS, &v), DG_OK);
    assert_int_equal(v, 125000000);
}

static dg_err rate(const char *s, dg_rate_bare bare, dg_rate *r)
{
    char err[128];
    return dg_rate_parse(s, strlen(s), bare, r, err, sizeof err);
}

static void test_rates(void **state)
{
    (void)state;
    dg_rate r = -1;
    assert_int_equal(rate("12.5%", DG_RATE_BARE_ERROR, &r), DG_OK);
    assert_int_equal(r, 125000000);
    assert_int_equal(rate("0.125", DG_RATE_BARE_ERROR, &r), DG_OK);
    assert_int_equal(r, 125000000);
    assert_int_equal(rate("3%", DG_RATE_BARE_ERROR, &r), DG_OK);
    assert_int_equal(r, 30000000);
    assert_int_equal(rate(" 10 % ", DG_RATE_BARE_ERROR, &r), DG_OK);
    assert_int_equal(r, 100000000);
    assert_int_equal(rate("0.000000001", DG_RATE_BARE_ERROR, &r), DG_OK);
    assert_int_equal(r, 1);
    assert_int_equal(rate("0.0000000001", DG_RATE_BARE_ERROR, &r), DG_EPARSE);
    assert_int_equal(rate("0.0000001%", DG_RATE_BARE_ERROR, &r), DG_OK);
    assert_int_equal(r, 1);
    assert_int_equal(rate("0.00000001%", DG_RATE_BARE_ERROR, &r), DG_EPARSE);
    /* bare values per mode */
    char err[128];
    assert_int_equal(dg_rate_parse("10", 2, DG_RATE_BARE_ERROR, &r, err, sizeof err), DG_EINVAL);
    assert_non_null(strstr(err, "10%"));
    assert_non_null(strstr(err, "0.10"));
    assert_int_equal(rate("10", DG_RATE_BARE_PERCENT, &r), DG_OK);
    assert_int_equal(r, 100000000);
    assert_int_equal(rate("1", DG_RATE_BARE_FRACTION, &r), DG_OK);
    assert_int_equal(r, DG_RATE_SCALE);
    assert_int_equal(rate("0", DG_RATE_BARE_ERROR, &r), DG_OK);
    assert_int_equal(r, 0);
    assert_int_equal(rate("0.10", DG_RATE_BARE_PERCENT, &r), DG_OK);
    assert_int_equal(r, 100000000);
    /* ranges and junk */
    assert_int_equal(rate("1000%", DG_RATE_BARE_ERROR, &r), DG_OK);
    assert_int_equal(r, 10 * DG_RATE_SCALE);
    assert_int_equal(rate("1000.0000001%", DG_RATE_BARE_ERROR, &r), DG_ERANGE);
    assert_int_equal(rate("10.5", DG_RATE_BARE_ERROR, &r), DG_ERANGE);
    assert_int_equal(rate("-5%", DG_RATE_BARE_ERROR, &r), DG_ERANGE);
    assert_int_equal(rate("-0.1", DG_RATE_BARE_ERROR, &r), DG_ERANGE);
    assert_int_equal(rate("99999999999999999999%", DG_RATE_BARE_ERROR, &r), DG_ERANGE);
    assert_int_equal(rate("", DG_RATE_BARE_ERROR, &r), DG_EPARSE);
    assert_int_equal(rate("%", DG_RATE_BARE_ERROR, &r), DG_EPARSE);
    assert_int_equal(rate("ten%", DG_RATE_BARE_ERROR, &r), DG_EPARSE);
    assert_int_equal(rate("10%%", DG_RATE_BARE_ERROR, &r), DG_EPARSE);
    assert_int_equal(rate("abc", DG_RATE_BARE_ERROR, &r), DG_EPARSE);
}

static void test_rate_format(void **state)
{
    (void)state;
    char b[32];
    dg_rate_format(125000000, b, sizeof b);
    assert_string_equal(b, "12.5%");
    dg_rate_format(30000000, b, sizeof b);
    assert_string_equal(b, "3%");
    dg_rate_format(0, b, sizeof b);
    assert_string_equal(b, "0%");
    dg_rate_format(1, b, sizeof b);
    assert_string_equal(b, "0.0000001%");
    assert_int_equal(dg_rate_format(10 * DG_RATE_SCALE, b, sizeof b), 5);
    assert_string_equal(b, "1000%");
    dg_rate_format(-25000000, b, sizeof b);
    assert_string_equal(b, "-2.5%");
}

static int64_t mul(int64_t m, dg_rate r1, dg_rate r2, dg_rounding mode)
{
    int64_t out = 0x7777;
    assert_int_equal(dg_amount_mul_rates(m, r1, r2, mode, &out), DG_OK);
    return out;
}

static void test_rounding(void **state)
{
    (void)state;
    const dg_rate half = DG_RATE_SCALE / 2, one = DG_RATE_SCALE;
    /* exact ties */
    assert_int_equal(mul(5, half, one, DG_ROUND_HALF_UP), 3);   /* 2.5 -> 3 */
    assert_int_equal(mul(5, half, one, DG_ROUND_HALF_EVEN), 2); /* 2.5 -> 2 */
    assert_int_equal(mul(7, half, one, DG_ROUND_HALF_UP), 4);   /* 3.5 -> 4 */
    assert_int_equal(mul(7, half, one, DG_ROUND_HALF_EVEN), 4); /* 3.5 -> 4 */
    assert_int_equal(mul(-5, half, one, DG_ROUND_HALF_UP), -3); /* away from zero */
    assert_int_equal(mul(-5, half, one, DG_ROUND_HALF_EVEN), -2);
    assert_int_equal(mul(-7, half, one, DG_ROUND_HALF_EVEN), -4);
    assert_int_equal(mul(1, half, one, DG_ROUND_HALF_EVEN), 0); /* 0.5 -> 0 */
    assert_int_equal(mul(-1, half, one, DG_ROUND_HALF_UP), -1);
    /* not ties */
    assert_int_equal(mul(1001, 100000000, one, DG_ROUND_HALF_UP), 100);   /* 100.1 */
    assert_int_equal(mul(1009, 100000000, one, DG_ROUND_HALF_EVEN), 101); /* 100.9 */
    assert_int_equal(mul(-1009, 100000000, one, DG_ROUND_HALF_UP), -101);
    assert_int_equal(mul(-1001, 100000000, one, DG_ROUND_HALF_EVEN), -100);
    /* two rates, one rounding: 12,000,000 cents × 10% × 50% = 600,000.00 */
    assert_int_equal(mul(12000000, 100000000, half, DG_ROUND_HALF_UP), 600000);
    /* 333 × 1/3 (0.333333333) × 3 would round twice to 333; once it is 333 */
    assert_int_equal(mul(333, 333333333, 3 * one, DG_ROUND_HALF_UP), 333);
    /* tiny remainder just above the tie: 0.500000001 */
    assert_int_equal(mul(1, half + 1, one, DG_ROUND_HALF_EVEN), 1);
    assert_int_equal(mul(0, 7 * one, 9 * one, DG_ROUND_HALF_UP), 0);
    /* 3% fee on 100,000.00 with 12.5% rate */
    assert_int_equal(mul(10000000, 970000000, 125000000, DG_ROUND_HALF_UP), 1212500);
}

static void test_overflow(void **state)
{
    (void)state;
    int64_t o = 0;
    const dg_rate one = DG_RATE_SCALE;
    assert_int_equal(dg_amount_mul_rates(INT64_MAX, one, one, DG_ROUND_HALF_UP, &o), DG_OK);
    assert_true(o == INT64_MAX);
    assert_int_equal(dg_amount_mul_rates(INT64_MIN, one, one, DG_ROUND_HALF_UP, &o), DG_OK);
    assert_true(o == INT64_MIN);
    assert_int_equal(dg_amount_mul_rates(INT64_MAX, 2 * one, one, DG_ROUND_HALF_UP, &o),
                     DG_EOVERFLOW);
    assert_int_equal(dg_amount_mul_rates(INT64_MIN, one, 2 * one, DG_ROUND_HALF_UP, &o),
                     DG_EOVERFLOW);
    /* second product beyond 128 bits */
    assert_int_equal(dg_amount_mul_rates(INT64_MAX, INT64_MAX, INT64_MAX, DG_ROUND_HALF_UP, &o),
                     DG_EOVERFLOW);
    assert_int_equal(dg_amount_mul_rates(INT64_MIN, INT64_MIN, INT64_MIN, DG_ROUND_HALF_EVEN, &o),
                     DG_EOVERFLOW);
    /* 1000% of a large amount still fits */
    assert_int_equal(dg_amount_mul_rates(INT64_MAX / 10, 10 * one, one, DG_ROUND_HALF_UP, &o),
                     DG_OK);
    assert_true(o == INT64_MAX / 10 * 10);

    assert_int_equal(dg_amount_add(INT64_MAX, 1, &o), DG_EOVERFLOW);
    assert_int_equal(dg_amount_add(INT64_MIN, -1, &o), DG_EOVERFLOW);
    assert_int_equal(dg_amount_add(INT64_MAX, -1, &o), DG_OK);
    assert_true(o == INT64_MAX - 1);
    assert_int_equal(dg_amount_sub(INT64_MIN, 1, &o), DG_EOVERFLOW);
    assert_int_equal(dg_amount_sub(0, INT64_MIN, &o), DG_EOVERFLOW);
    assert_int_equal(dg_amount_sub(100, 250, &o), DG_OK);
    assert_int_equal(o, -150);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ccy),           cmocka_unit_test(test_amount_parse),
        cmocka_unit_test(test_amount_limits), cmocka_unit_test(test_thousands),
        cmocka_unit_test(test_money_parse),   cmocka_unit_test(test_from_double),
        cmocka_unit_test(test_format),        cmocka_unit_test(test_rates),
        cmocka_unit_test(test_rate_format),   cmocka_unit_test(test_rounding),
        cmocka_unit_test(test_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
