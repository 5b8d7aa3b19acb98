/* cfg_fixture.h — the cmocka fixture of a test whose tests share one config loaded from text.
 *
 * Include after <cmocka.h>. The file gets cfg: its group setup loads it with
 * cfg_fixture_load(text) and cfg_fixture_free is the matching group teardown.
 */
#ifndef DG_TEST_CFG_FIXTURE_H
#define DG_TEST_CFG_FIXTURE_H

#include <stdio.h>

#include "config/cfg.h"

static struct cfg *cfg; /* loaded by the file's group setup */

/* Loads cfg from text (named "test.ini" in messages). Returns 0, or -1 with the config
 * errors on stderr. */
static inline int cfg_fixture_load(const char *text)
{
    cfg_errors errs = {0};
    if (cfg_load_string("test.ini", text, &cfg, &errs) != DG_OK) {
        for (size_t i = 0; i < errs.lines.n; i++)
            fprintf(stderr, "%s\n", errs.lines.v[i]);
        cfg_errors_free(&errs);
        return -1;
    }
    return 0;
}

/* cmocka group teardown: frees cfg. */
static inline int cfg_fixture_free(void **state)
{
    (void)state;
    cfg_free(cfg);
    return 0;
}

#endif
