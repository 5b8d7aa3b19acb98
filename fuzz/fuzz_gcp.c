/* fuzz_gcp.c — Google Cloud CRM Partners answers (connectors/parse.h): the first byte picks
 * an opportunity or an error answer (status from the byte). */
#include "connectors/parse.h"
#include "fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    uint8_t mode = data[0];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    char err[256] = "";
    if (mode % 2 == 0) {
        dg_reg_fact f;
        memset(&f, 0, sizeof f);
        dg_err rc = conn_gcp_parse_opportunity(body, len, "opp-123_A", &f, err, sizeof err);
        fuzz_check_fact(&f);
        if (rc == DG_OK && f.lookup != DG_LOOKUP_FOUND) fuzz_fail("gcp", "OK but not FOUND");
        if (rc != DG_OK) fuzz_check_msg("gcp error", err);
        dg_reg_fact_free(&f);
    } else {
        char gs[48], detail[160];
        int retry = -1;
        long status = 400 + (mode >> 1) % 110;
        dg_err rc =
            conn_gcp_parse_error(status, body, len, gs, sizeof gs, detail, sizeof detail, &retry);
        fuzz_check_text("gcp error.status", gs);
        fuzz_check_text("gcp error.message", detail);
        if (rc == DG_OK || retry < 0) fuzz_fail("gcp error class", "an error answer is OK");
    }
    return 0;
}
