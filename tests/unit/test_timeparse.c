/* test_timeparse.c — RFC 3339 (strict: override expiries over HTTP) and CRM-export (lenient:
 * import-history, rule-test cases) times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gate/timeparse.h"

static int64_t ok(const char *s, int lenient)
{
    int64_t ms = -1;
    if (!gate_time_parse(s, lenient, &ms)) fail_msg("refused: \"%s\" (lenient %d)", s, lenient);
    return ms;
}

static void bad(const char *s, int lenient)
{
    int64_t ms = 0;
    if (gate_time_parse(s, lenient, &ms))
        fail_msg("accepted: \"%s\" (lenient %d)", s ? s : "(null)", lenient);
}

static void test_strict(void **state)
{
    (void)state;
    assert_int_equal(ok("1970-01-01T00:00:00Z", 0), 0);
    assert_int_equal(ok("2026-10-01T09:00:00Z", 0), INT64_C(1790845200000));
    assert_int_equal(ok("2026-10-01T11:00:00+02:00", 0), INT64_C(1790845200000));
    assert_int_equal(ok("2026-10-01T04:30:00-04:30", 0), INT64_C(1790845200000));
    assert_int_equal(ok("2026-10-01T09:00:00.5Z", 0), INT64_C(1790845200500));
    assert_int_equal(ok("2026-10-01T09:00:00.123456z", 0), INT64_C(1790845200123));
    assert_int_equal(ok("2028-02-29T00:00:00Z", 0), INT64_C(1835395200000));
    bad("2026-10-01", 0);               /* a date alone */
    bad("2026-10-01T09:00:00", 0);      /* no zone */
    bad("2026-10-01 09:00:00Z", 0);     /* space */
    bad("2026-10-01T09:00Z", 0);        /* no seconds */
    bad("2026-10-01T09:00:00+0200", 0); /* offset without colon */
    bad("1790845200000", 0);            /* unix ms */
    bad("2026-02-29T00:00:00Z", 0);     /* not a leap year */
    bad("2026-13-01T00:00:00Z", 0);
    bad("2026-10-01T24:00:00Z", 0);
    bad("2026-10-01T09:00:00.Z", 0);
    bad("2026-10-01T09:00:00Zjunk", 0);
    bad("1969-12-31T23:59:59Z", 0);
    bad("", 0);
    bad(NULL, 0);
}

static void test_lenient(void **state)
{
    (void)state;
    assert_int_equal(ok("2026-10-01", 1), INT64_C(1790812800000));
    assert_int_equal(ok("2026-10-01 09:00", 1), INT64_C(1790845200000));
    assert_int_equal(ok("2026-10-01 09:00:00", 1), INT64_C(1790845200000));
    assert_int_equal(ok("2026-10-01T09:00:00.000+0000", 1), INT64_C(1790845200000));
    assert_int_equal(ok("2026-10-01T10:00:00.000+0100", 1), INT64_C(1790845200000));
    assert_int_equal(ok("1790845200", 1), INT64_C(1790845200000));
    assert_int_equal(ok("1790845200123", 1), INT64_C(1790845200123));
    bad("17908452", 1);
    bad("yesterday", 1);
    bad("2026-10-01T9:00", 1);
    bad("2026/10/01", 1);
}

static void test_format(void **state)
{
    (void)state;
    char out[32];
    gate_time_format(INT64_C(1790845200999), out);
    assert_string_equal(out, "2026-10-01T09:00:00Z");
    gate_time_format(-5, out);
    assert_string_equal(out, "1970-01-01T00:00:00Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strict),
        cmocka_unit_test(test_lenient),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
