/* fuzz_event.c — POST /v1/gate/stage bodies: strict JSON intake (gate_json_parse), the
 * canonical event (gate_event_from_json), then the rules on the event. */
#include "fuzz/fuzz_common.h"
#include "gate/event.h"
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
        if (root) fuzz_fail("gate_json_parse", "a tree on error");
        return 0;
    }
    rc = gate_event_from_json(c, root, &ev, err, sizeof err);
    if (rc == DG_OK) {
        if (!ev.opp_id || !ev.to_stage) fuzz_fail("event", "accepted without id or to_stage");
        fuzz_decide(c, &ev);
    } else {
        fuzz_check_msg("gate_event_from_json error", err);
    }
    dg_event_free(&ev);
    cJSON_Delete(root);
    return 0;
}
