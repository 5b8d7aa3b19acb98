/* fuzz_ace.c — AWS ACE answers (connectors/parse.h): the first byte picks what the rest is:
 * a GetOpportunity answer, an error answer (status and x-amzn-ErrorType from the input), or
 * a ListOpportunities page merged into a CRM-id index. Facts must come out clean. */
#include "connectors/parse.h"
#include "fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    uint8_t mode = data[0];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    char err[256] = "";
    switch (mode % 3) {
    case 0: {
        dg_reg_fact f;
        memset(&f, 0, sizeof f);
        dg_err rc = conn_ace_parse_opportunity(body, len, "O1234567", &f, err, sizeof err);
        fuzz_check_fact(&f);
        if (rc == DG_OK && f.lookup != DG_LOOKUP_FOUND) fuzz_fail("ace", "OK but not FOUND");
        if (rc != DG_OK) fuzz_check_msg("ace error", err);
        dg_reg_fact_free(&f);
        break;
    }
    case 1: {
        /* "<header type>\n<body>"; the status from the mode byte */
        size_t hn = 0, rest = 0;
        const uint8_t *b = fuzz_split((const uint8_t *)body, len, '\n', &hn, &rest);
        char *hdr = fuzz_str((const uint8_t *)body, b ? hn : 0);
        char type[128];
        int retry = -1;
        long status = (mode / 3) % 2 ? 500 + mode % 7 : 400 + mode % 30;
        if (hdr == NULL) break;
        dg_err rc = conn_ace_parse_error(status, hdr, b ? (const char *)b : body, b ? rest : len,
                                         type, sizeof type, &retry);
        if (strlen(type) >= sizeof type) fuzz_fail("ace error type", "too long");
        fuzz_check_text("ace error type", type);
        if (rc == DG_OK || retry < 0) fuzz_fail("ace error class", "an error answer is OK");
        free(hdr);
        break;
    }
    default: {
        size_t n = 0;
        char *next = NULL;
        dg_err rc = conn_ace_parse_list_page(body, len, &n, &next, err, sizeof err);
        if (rc == DG_EINTERNAL) fuzz_fail("ace index", err);
        if (rc != DG_OK && next) fuzz_fail("ace list", "a token on error");
        fuzz_check_text("ace list next token", next);
        free(next);
        break;
    }
    }
    return 0;
}
