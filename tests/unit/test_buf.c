/* test_buf.c — the growable text buffer (config/buf.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/buf.h"

static void test_grows_and_terminates(void **state)
{
    (void)state;
    dg_buf b;
    dg_buf_init(&b, 0);
    assert_null(b.p);
    assert_int_equal(dg_buf_add(&b, "", 0), 0); /* an empty append still gives a string */
    assert_string_equal(b.p, "");
    char piece[100];
    memset(piece, 'a', sizeof piece);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(dg_buf_add(&b, piece, sizeof piece), 0);
    assert_int_equal(b.len, 100000);
    assert_int_equal(b.p[b.len], '\0');
    assert_true(b.cap > b.len);
    assert_int_equal(dg_buf_str(&b, "xyz"), 0);
    assert_string_equal(b.p + 100000, "xyz");
    assert_false(dg_buf_failed(&b));
    dg_buf_free(&b);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
}

static void test_reserve_makes_room_once(void **state)
{
    (void)state;
    dg_buf b;
    dg_buf_init(&b, 0);
    assert_int_equal(dg_buf_reserve(&b, 1000), 0);
    assert_string_equal(b.p, ""); /* a string already, empty */
    assert_true(b.cap > 1000);
    char *before = b.p;
    char piece[100];
    memset(piece, 'b', sizeof piece);
    for (int i = 0; i < 10; i++)
        assert_int_equal(dg_buf_add(&b, piece, sizeof piece), 0);
    assert_ptr_equal(b.p, before); /* no allocation within the reserved room */
    assert_int_equal(b.len, 1000);
    dg_buf_free(&b);
    /* reserving past the bound fails, sticky, like an append */
    dg_buf_init(&b, 8);
    assert_int_equal(dg_buf_reserve(&b, 9), -1);
    assert_true(b.cut);
    assert_int_equal(dg_buf_str(&b, "x"), -1);
    dg_buf_free(&b);
}

static void test_bound_is_exact_and_sticky(void **state)
{
    (void)state;
    dg_buf b;
    dg_buf_init(&b, 8);
    assert_int_equal(dg_buf_str(&b, "1234"), 0);
    assert_int_equal(dg_buf_str(&b, "5678"), 0); /* exactly max */
    assert_true(b.cap <= 9);                     /* never more than the text and its NUL */
    assert_int_equal(dg_buf_str(&b, "9"), -1);
    assert_true(b.cut);
    assert_false(b.oom);
    assert_string_equal(b.p, "12345678");        /* a refused append leaves nothing behind */
    assert_int_equal(dg_buf_add(&b, "", 0), -1); /* sticky: every later append fails */
    dg_buf_free(&b);
    assert_int_equal(b.max, 8); /* free keeps the bound and clears the flags */
    assert_false(dg_buf_failed(&b));
    assert_int_equal(dg_buf_str(&b, "123456789"), -1); /* one append over the bound */
    assert_null(b.p);
    dg_buf_free(&b);
}

static void test_embedded_nul(void **state)
{
    (void)state;
    dg_buf b;
    dg_buf_init(&b, 0);
    assert_int_equal(dg_buf_add(&b, "a\0b", 3), 0);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.p, "a\0b", 4);
    dg_buf_free(&b);
}

static void test_json_str_escaping(void **state)
{
    (void)state;
    dg_buf b;
    dg_buf_init(&b, 64);
    assert_int_equal(dg_buf_json_str(&b, "a\"b\\c\n\x01\xC3\xA9\xFF"), 0);
    assert_int_equal(dg_buf_add(&b, "", 1), 0);
    assert_string_equal(b.p, "\"a\\\"b\\\\c\\u000a\\u0001\xC3\xA9\\ufffd\"");
    dg_buf_free(&b);
    /* NULL is null; an empty string is "" */
    dg_buf_init(&b, 0);
    assert_int_equal(dg_buf_json_str(&b, NULL), 0);
    assert_int_equal(dg_buf_json_str(&b, ""), 0);
    assert_string_equal(b.p, "null\"\"");
    dg_buf_free(&b);
    /* the bound holds */
    dg_buf_init(&b, 8);
    assert_int_equal(dg_buf_str(&b, "12345678"), 0);
    assert_int_equal(dg_buf_str(&b, "9"), -1);
    assert_true(dg_buf_failed(&b));
    dg_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grows_and_terminates),
        cmocka_unit_test(test_reserve_makes_room_once),
        cmocka_unit_test(test_json_str_escaping),
        cmocka_unit_test(test_bound_is_exact_and_sticky),
        cmocka_unit_test(test_embedded_nul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
