/* fuzz_comp_json.c — commission JSON: POST /v1/commission/check with application/json
 * (one line object, or {"lines": [...], "all": bool}). The answer must be valid JSON in
 * valid UTF-8 with a documented status. */
#include "fuzz/fuzz_common.h"
#include "gate/comp_intake.h"
#include "gate/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct cfg *c = fuzz_cfg();
    char err[320] = "";
    gate_comp_result *r = NULL;
    dg_err rc = gate_comp_check_body(c, "application/json", (const char *)data, size,
                                     size > 0 && (data[size - 1] & 1), &r, err, sizeof err);
    if (rc != DG_OK) {
        if (rc != DG_ENOMEM) fuzz_fail("gate_comp_check_body", "an error other than ENOMEM");
        return 0;
    }
    if (r->status != 200 && r->status != 400 && r->status != 413 && r->status != 422)
        fuzz_fail("comp status", r->err_code);
    cJSON *j = NULL;
    char jerr[200];
    if (gate_json_parse(r->body, r->body_len, &j, jerr, sizeof jerr) != DG_OK)
        fuzz_fail("the answer is not strict JSON", jerr);
    if (r->status != 200) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
        if (!cJSON_IsString(m)) fuzz_fail("error answer", "no error.message");
        fuzz_check_msg("error.message", m->valuestring);
    } else if (r->nlines != r->checked) {
        fuzz_fail("log lines", "!= checked");
    }
    cJSON_Delete(j);
    gate_comp_result_free(r);
    return 0;
}
