/* fuzz_salesforce.c — POST /v1/gate/salesforce bodies: strict JSON intake, the flat Flow
 * body mapped to the canonical event (gate_sf_event), then the rules on the event. */
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
    dg_err rc = gate_json_parse((const char *)data, size, &root, err, sizeof err);
    if (rc != DG_OK) {
        fuzz_check_msg("gate_json_parse error", err);
        return 0;
    }
    rc = gate_sf_event(c, root, &ev, err, sizeof err);
    if (rc == DG_OK) {
        if (!ev.opp_id || !ev.to_stage) fuzz_fail("event", "accepted without id or stage");
        fuzz_decide(c, &ev);
    } else {
        fuzz_check_msg("gate_sf_event error", err);
    }
    dg_event_free(&ev);
    cJSON_Delete(root);
    return 0;
}
