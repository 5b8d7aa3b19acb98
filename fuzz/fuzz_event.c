/* fuzz_event.c — POST /v1/gate/stage bodies: strict JSON intake (gate_json_parse), the
 * canonical event (gate_event_from_json), then the rules on the event, and the whole
 * pipeline without a log as `dealgate eval` runs it: the decision text it writes by hand
 * must be strict JSON naming the decision and the deal. */
#include "fuzz/fuzz_common.h"
#include "gate/decide.h"
#include "gate/event.h"
#include "gate/gate.h"
#include "gate/json.h"

static void fuzz_gate_decide(const dg_event *ev)
{
    static gate_ctx g; /* built once: the fuzz config's clouds use connector none */
    if (g.rt == NULL) {
        cfg_errors errs = {0};
        struct cfg *c = NULL;
        gate_rt *rt = NULL;
        char err[256] = "";
        pthread_mutex_init(&g.rt_lock, NULL);
        if (cfg_load_string("fuzz.ini", fuzz_ini, &c, &errs) != DG_OK ||
            gate_rt_new(c, &rt, err, sizeof err) != DG_OK)
            fuzz_fail("the fuzz runtime does not build", err);
        gate_rt_install(&g, rt);
    }
    gate_rt *rt = gate_rt_acquire(&g);
    gate_result res;
    gate_decide(&g, rt, ev, "stage", "", 0, &res);
    if (res.status == 200) {
        cJSON *d = NULL;
        char err[320] = "";
        if (res.text == NULL ||
            gate_json_parse(res.text, strlen(res.text), &d, err, sizeof err) != DG_OK)
            fuzz_fail("the decision is not strict JSON", res.text ? err : "no text");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(d, "decision_id");
        const cJSON *opp = cJSON_GetObjectItemCaseSensitive(d, "opportunity_id");
        if (!cJSON_IsString(id) || strcmp(id->valuestring, res.id) != 0)
            fuzz_fail("the decision's decision_id", res.text);
        if (!cJSON_IsString(opp) || strcmp(opp->valuestring, ev->opp_id) != 0)
            fuzz_fail("the decision's opportunity_id is not the event's", res.text);
        cJSON_Delete(d);
    } else if (res.status != 422 && res.status != 503) {
        fuzz_fail("gate_decide status", res.err_code);
    }
    gate_result_free(&res);
    gate_rt_release(&g, rt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct cfg *c = fuzz_cfg();
    char err[320] = "";
    cJSON *root = NULL;
    dg_event ev;
    memset(&ev, 0, sizeof ev);
    dg_err rc = gate_json_parse((const char *)data, size, &root, err, sizeof err);
    if (rc != DG_OK) {
        fuzz_check_msg("gate_json_parse error", err);
        if (root) fuzz_fail("gate_json_parse", "a tree on error");
        return 0;
    }
    rc = gate_event_from_json(c, root, &ev, err, sizeof err);
    if (rc == DG_OK) {
        if (!ev.opp_id || !ev.to_stage) fuzz_fail("event", "accepted without id or to_stage");
        fuzz_decide(c, &ev);
        fuzz_gate_decide(&ev);
    } else {
        fuzz_check_msg("gate_event_from_json error", err);
    }
    dg_event_free(&ev);
    cJSON_Delete(root);
    return 0;
}
