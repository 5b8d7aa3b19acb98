/* fuzz_comp_csv.c — commission CSV: POST /v1/commission/check with text/csv
 * (gate_comp_check_body), and the streaming reader the CLI uses fed the same bytes in
 * chunks cut where the input says: both must agree on how many lines were checked and
 * whether the input was usable. The answer must be valid JSON in valid UTF-8. */
#include "fuzz/fuzz_common.h"
#include "gate/comp_intake.h"
#include "gate/json.h"

typedef struct {
    uint64_t lines;
} counter;

static dg_err count_line(void *arg, const gate_comp_item *it, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    counter *k = arg;
    k->lines++;
    if (it->deal_id == NULL || it->deal_id[0] == '\0') fuzz_fail("item", "no deal_id");
    return DG_OK;
}

/* Streams data through gate_comp_csv_* in chunks of sizes taken from `cuts`. Returns the
 * result code and the count of checked lines. */
static dg_err stream(const rules_comp_ctx *ctx, const uint8_t *data, size_t size, uint8_t cuts,
                     uint64_t *lines)
{
    counter k = {0};
    gate_comp_csv *s = NULL;
    char err[320] = "";
    dg_err rc = gate_comp_csv_new(ctx, count_line, &k, &s);
    if (rc != DG_OK) return rc;
    size_t pos = 0, step = 1 + (cuts % 7);
    while (rc == DG_OK && pos < size) {
        size_t n = size - pos < step ? size - pos : step;
        rc = gate_comp_csv_feed(s, (const char *)data + pos, n, err, sizeof err);
        pos += n;
        step = step * 3 % 17 + 1;
    }
    if (rc == DG_OK) rc = gate_comp_csv_finish(s, err, sizeof err);
    if (rc != DG_OK && strchr(err, '\n')) fuzz_fail("csv stream error on two lines", err);
    gate_comp_csv_free(s);
    *lines = k.lines;
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct cfg *c = fuzz_cfg();
    static rules_comp_ctx ctx; /* prepared once from the read-only config */
    static int ctx_ready;
    char err[320] = "";
    if (!ctx_ready) {
        if (rules_comp_ctx_init(&ctx, c, err, sizeof err) != DG_OK) fuzz_fail("comp ctx", err);
        ctx_ready = 1;
    }
    if (size == 0) return 0;
    int all = data[0] & 1;
    uint8_t cuts = data[0] >> 1;
    data++;
    size--;

    gate_comp_result *r = NULL;
    dg_err rc = gate_comp_check_body(c, "text/csv; charset=utf-8", (const char *)data, size, all,
                                     &r, err, sizeof err);
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
    cJSON_Delete(j);
    if (r->status == 200 && r->nlines != r->checked) fuzz_fail("log lines", "!= checked");

    uint64_t lines = 0;
    dg_err src = stream(&ctx, data, size, cuts, &lines);
    if (r->status == 200 && (src != DG_OK || lines != r->checked))
        fuzz_fail("stream and body disagree", "one accepted what the other refused");
    if (r->status != 200 && r->status != 413 && src == DG_OK)
        fuzz_fail("stream and body disagree", "the stream accepted a refused body");
    gate_comp_result_free(r);
    return 0;
}
