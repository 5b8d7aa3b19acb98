/* test_ids.c — gate_new_id: format, and ids sorting in the order they were made. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <string.h>
#include <cmocka.h>

#include "gate/gate.h"

#define N 20000

static void test_format(void **state)
{
    (void)state;
    char id[40];
    gate_new_id("dg_", id, sizeof id);
    assert_int_equal(strlen(id), 3 + 26);
    assert_memory_equal(id, "dg_", 3);
    for (const char *p = id + 3; *p; p++)
        assert_non_null(strchr("0123456789abcdefghjkmnpqrstvwxyz", *p));
}

/* Many ids per millisecond: each one sorts after the one before (the order "newest wins"
 * relies on for two decisions of one deal in the same millisecond). */
static void test_monotonic(void **state)
{
    (void)state;
    static char ids[N][40];
    for (int i = 0; i < N; i++)
        gate_new_id("dg_", ids[i], sizeof ids[i]);
    int same_ms = 0;
    for (int i = 1; i < N; i++) {
        assert_true(strcmp(ids[i - 1], ids[i]) < 0);
        same_ms += memcmp(ids[i - 1], ids[i], 3 + 10) == 0;
    }
    assert_true(same_ms > 0); /* the case that matters did happen */
}

static void *make_ids(void *arg)
{
    char(*ids)[40] = arg;
    for (int i = 0; i < N / 4; i++)
        gate_new_id("dg_", ids[i], sizeof ids[i]);
    return NULL;
}

/* From several threads at once: still no two alike, each thread's own in order. */
static void test_threads_unique(void **state)
{
    (void)state;
    static char ids[4][N / 4][40];
    pthread_t th[4];
    for (int t = 0; t < 4; t++)
        assert_int_equal(pthread_create(&th[t], NULL, make_ids, ids[t]), 0);
    for (int t = 0; t < 4; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < 4; t++)
        for (int i = 1; i < N / 4; i++)
            assert_true(strcmp(ids[t][i - 1], ids[t][i]) < 0);
    /* across threads: all N distinct (sorting would be slow; compare thread 0 with the rest
     * by merge, since each list is sorted) */
    for (int a = 0; a < 4; a++)
        for (int b = a + 1; b < 4; b++) {
            int i = 0, j = 0;
            while (i < N / 4 && j < N / 4) {
                int c = strcmp(ids[a][i], ids[b][j]);
                assert_int_not_equal(c, 0);
                if (c < 0)
                    i++;
                else
                    j++;
            }
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_monotonic),
        cmocka_unit_test(test_threads_unique),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
