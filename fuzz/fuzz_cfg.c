/* fuzz_cfg.c — the INI loader (cfg_load_string): inih with a line-counting reader, the
 * validation table, ${ENV} expansion, typed values. Every error must read
 * "fuzz.ini:LINE: message" (or "fuzz.ini: message") on one line. */
#include "fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_str(data, size);
    if (text == NULL) return 0;
    struct cfg *c = NULL;
    cfg_errors errs = {0};
    dg_err rc = cfg_load_string("fuzz.ini", text, &c, &errs);
    if (rc == DG_OK) {
        if (c == NULL) fuzz_fail("cfg_load_string", "DG_OK without a snapshot");
        if (c->npipelines == 0) fuzz_fail("cfg", "no default pipeline");
        for (size_t i = 0; i < c->nrules; i++)
            if (cfg_pipeline_find(c, NULL) == NULL) fuzz_fail("cfg", "rule without pipeline");
        cfg_free(c);
    } else {
        if (c != NULL) fuzz_fail("cfg_load_string", "a snapshot with errors");
        if (errs.lines.n == 0) fuzz_fail("cfg_load_string", "an error without a message");
        for (size_t i = 0; i < errs.lines.n; i++) {
            const char *l = errs.lines.v[i];
            if (strncmp(l, "fuzz.ini:", 9) != 0) fuzz_fail("error without the path", l);
            if (strchr(l, '\n')) fuzz_fail("error on two lines", l);
        }
        cfg_errors_free(&errs);
    }
    free(text);
    return 0;
}
