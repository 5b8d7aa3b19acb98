/* test_utf8.c — the one UTF-8 sequence check (config/utf8.h), at the edges of each form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/utf8.h"

static size_t seq(const char *s)
{
    return dg_utf8_seq((const unsigned char *)s, strlen(s) ? strlen(s) : 1);
}

static void test_sequence_lengths_at_the_edges(void **state)
{
    (void)state;
    assert_int_equal(seq("A"), 1);
    assert_int_equal(seq("\xC2\x80"), 2);         /* U+0080, the first two-byte form */
    assert_int_equal(seq("\xDF\xBF"), 2);         /* U+07FF */
    assert_int_equal(seq("\xE0\xA0\x80"), 3);     /* U+0800 */
    assert_int_equal(seq("\xED\x9F\xBF"), 3);     /* U+D7FF, just below the surrogates */
    assert_int_equal(seq("\xEE\x80\x80"), 3);     /* U+E000, just above them */
    assert_int_equal(seq("\xF0\x90\x80\x80"), 4); /* U+10000 */
    assert_int_equal(seq("\xF4\x8F\xBF\xBF"), 4); /* U+10FFFF, the last code point */
    /* invalid: overlong forms, surrogates, past U+10FFFF, stray or missing continuations */
    assert_int_equal(seq("\xC0\x80"), 0);
    assert_int_equal(seq("\xC1\xBF"), 0);
    assert_int_equal(seq("\xE0\x9F\xBF"), 0);
    assert_int_equal(seq("\xED\xA0\x80"), 0);
    assert_int_equal(seq("\xF0\x8F\xBF\xBF"), 0);
    assert_int_equal(seq("\xF4\x90\x80\x80"), 0);
    assert_int_equal(seq("\xF5\x80\x80\x80"), 0);
    assert_int_equal(seq("\x80"), 0);
    assert_int_equal(seq("\xE2\x82"), 0); /* cut: two of three bytes */
    assert_int_equal(seq("\xE2(\xAC"), 0);
    /* n bounds the read: the whole sequence must fit */
    assert_int_equal(dg_utf8_seq((const unsigned char *)"\xE2\x82\xAC", 2), 0);
    assert_int_equal(dg_utf8_seq((const unsigned char *)"\xE2\x82\xAC", 3), 3);
}

static void test_whole_strings(void **state)
{
    (void)state;
    const char ok[] = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80";
    assert_int_equal(dg_utf8_valid(ok, strlen(ok)), 1);
    assert_int_equal(dg_utf8_valid("", 0), 1);
    assert_int_equal(dg_utf8_valid("a\0b", 3), 1);          /* a NUL byte is a valid sequence */
    assert_int_equal(dg_utf8_valid(ok, strlen(ok) - 1), 0); /* the emoji cut short */
    assert_int_equal(dg_utf8_valid("ab\xFF", 3), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequence_lengths_at_the_edges),
        cmocka_unit_test(test_whole_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
