/* fixtures.h — the cmocka fixture of a backend test whose tests share one fake upstream.
 *
 * Include after <cmocka.h>. The file gets g_fake, the fake its tests share: its group setup
 * starts it (fake_start(&g_fake, "fake_x.py", args)), fake_group_teardown stops it,
 * fake_reset (a per-test setup) zeroes its counters and drops its behaviours, and
 * fake_behave makes a fake misbehave (see tests/fakes/fakelib.py for /__behave). Tests that
 * need other fake options start a fake_server of their own (fakeproc.h). For concurrency
 * tests, caller_run does one look-up on a thread.
 */
#ifndef DG_TEST_FIXTURES_H
#define DG_TEST_FIXTURES_H

#include <stdio.h>

#include "connectors/conn.h"
#include "fakeproc.h"

static fake_server g_fake; /* started by the file's group setup */

/* cmocka group teardown: stops g_fake. */
static inline int fake_group_teardown(void **s)
{
    (void)s;
    fake_stop(&g_fake);
    return 0;
}

/* cmocka setup of one test: g_fake's counters zeroed, its behaviours dropped. Returns 0, or
 * -1 when the fake does not answer. */
static inline int fake_reset(void **s)
{
    (void)s;
    return fake_post(&g_fake, "/__reset", "{}");
}

/* Posts behaviour json ({"key": ..., "status": ..., ...}) to f's /__behave; fails the
 * running test when the fake does not take it. */
static inline void fake_behave(const fake_server *f, const char *json)
{
    assert_int_equal(fake_post(f, "/__behave", json), 0);
}

/* One look-up by registration id on a thread of its own: fill be, st and id, start
 * pthread_create(..., caller_run, &c), read rc and lookup after pthread_join. */
typedef struct {
    const conn_backend *be;
    void *st;
    char id[72];
    dg_err rc;
    dg_lookup_status lookup;
} caller;

static inline void *caller_run(void *arg)
{
    caller *c = arg;
    dg_reg_fact f = {0};
    c->rc = c->be->by_id(c->st, c->id, 3000, &f);
    c->lookup = f.lookup;
    dg_reg_fact_free(&f);
    return NULL;
}

#endif
