/* fuzz_file.c — the file connector's registrations CSV (connectors/parse.h): libcsv in
 * strict mode, header matching, row validation, both indexes; every kept row must be found
 * again by registration id and CRM id. */
#include "connectors/parse.h"
#include "fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t rows = 0, regs = 0;
    char err[256] = "";
    dg_err rc =
        conn_file_parse("regs.csv", "aws", (const char *)data, size, &rows, &regs, err, sizeof err);
    if (rc == DG_EINTERNAL) fuzz_fail("file index", err);
    if (rc == DG_OK && regs > rows) fuzz_fail("file", "more ids than rows");
    if (rc != DG_OK) {
        for (const char *p = err; *p; p++)
            if ((unsigned char)*p < 0x20) fuzz_fail("file error", "control character");
    }
    return 0;
}
