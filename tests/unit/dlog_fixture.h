/* dlog_fixture.h — the cmocka fixture of a test whose every test gets a fresh decision log.
 *
 * Include after <cmocka.h>. The file's per-test setup calls dlog_fixture_open(state,
 * "/tmp/<name>_XXXXXX"), which makes a data dir from that mkdtemp template and opens a log
 * in it; dlog_fixture_close is the matching teardown. Tests read the fixture from *state.
 */
#ifndef DG_TEST_DLOG_FIXTURE_H
#define DG_TEST_DLOG_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "gate/dlog.h"

typedef struct {
    char dir[64]; /* the data dir */
    dlog *l;      /* the log open in it */
} fixture;

/* Removes a log's data dir: its database files, then the (then empty) dir. */
static inline void rm_dir(const char *dir)
{
    static const char *const files[] = {"dealgate.db", "dealgate.db-wal", "dealgate.db-shm"};
    char p[256];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* cmocka setup body: a new fixture in *state, its dir made from the mkdtemp template tmpl
 * (shorter than 64 bytes) and a log opened in it. Fails the test when either fails. */
static inline int dlog_fixture_open(void **state, const char *tmpl)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "%s", tmpl);
    assert_non_null(mkdtemp(f->dir));
    char err[256] = "";
    assert_int_equal(dlog_open(f->dir, &f->l, err, sizeof err), DG_OK);
    *state = f;
    return 0;
}

/* cmocka teardown: closes the log, removes its dir, frees the fixture. */
static inline int dlog_fixture_close(void **state)
{
    fixture *f = *state;
    dlog_close(f->l);
    rm_dir(f->dir);
    free(f);
    return 0;
}

#endif
