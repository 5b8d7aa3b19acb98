/* fuzz_hubspot.c — POST /v1/gate/hubspot bodies: strict JSON intake, custom-action and
 * webhook payloads mapped to the canonical event (gate_hs_event), then the rules. */
#include "fuzz/fuzz_common.h"
#include "gate/adapters.h"
#include "gate/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct cfg *c = fuzz_cfg();
    char err[320] = "";
    cJSON *root = NULL;
    dg_event ev;
    memset(&ev, 0, sizeof ev);
    gate_hs_kind kind = GATE_HS_WEBHOOK;
    dg_err rc = gate_json_parse((const char *)data, size, &root, err, sizeof err);
    if (rc != DG_OK) {
        fuzz_check_msg("gate_json_parse error", err);
        return 0;
    }
    rc = gate_hs_event(c, root, &ev, &kind, err, sizeof err);
    if (rc == DG_OK) {
        if (!ev.opp_id || !ev.to_stage) fuzz_fail("event", "accepted without id or stage");
        if (kind == GATE_HS_CUSTOM_ACTION && !ev.event_id)
            fuzz_fail("event", "a custom action without its callbackId as event id");
        fuzz_decide(c, &ev);
    } else {
        fuzz_check_msg("gate_hs_event error", err);
    }
    dg_event_free(&ev);
    cJSON_Delete(root);
    return 0;
}
