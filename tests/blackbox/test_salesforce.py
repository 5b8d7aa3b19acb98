"""Black-box: POST /v1/gate/salesforce as a Flow HTTP Callout sends it, and the write-back to a
fake Salesforce (OAuth2 client credentials, read the Opportunity again, update it once)."""
import os
import sys
import time

import dgtest
from dgtest import Service, WEBHOOK, READER

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
from fake_salesforce import FakeSalesforce  # noqa: E402

REASON_FIELD = "Dealgate_Block_Reason__c"
svc = None
sf = None


def sf_config(url, reason_field=REASON_FIELD):
    return """
        [salesforce]
        cloud.AWS = aws
        cloud.Microsoft Azure = azure
        writeback = yes
        instance_url = %s
        client_id = sf-client-id
        client_secret = sf-client-secret
        api_version = v60.0
        reason_field = %s
        """ % (url, reason_field)


def setup():
    global svc, sf
    sf = FakeSalesforce().start()
    svc = Service(extra=sf_config(sf.url)).start()


def call(body, token=WEBHOOK, **kw):
    return svc.request("POST", "/v1/gate/salesforce", body, token=token, **kw)


def flow_body(opp, stage="Demo", prior="Qualification", clouds="AWS", **extra):
    b = {"opportunityId": opp, "name": "Acme - Data Platform", "accountName": "Acme Corp",
         "ownerEmail": "jane@example.com", "amount": 120000, "currencyIsoCode": "USD",
         "stageName": stage, "priorStageName": prior, "cloudPrograms": clouds}
    b.update(extra)
    return b


def wait_for(pred, timeout=15, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def writeback_of(decision_id):
    st, d, _ = svc.get("/v1/decisions/" + decision_id)
    assert st == 200, d
    return d.get("writeback")


def wait_state(decision_id, state, timeout=15):
    return wait_for(lambda: (writeback_of(decision_id) or {}).get("state") == state and
                    writeback_of(decision_id), timeout, "write-back " + state)


FLAT_KEYS = {"allowed", "outcome", "message", "revertTo", "decisionId", "reasonCode"}


def test_allowed_round_trip_is_flat_scalars():
    st, r, _ = call(flow_body("OPP-APPROVED"))
    assert st == 200, r
    assert set(r) == FLAT_KEYS, r
    assert all(isinstance(v, (str, bool)) for v in r.values()), r
    assert r["allowed"] is True and r["outcome"] == "allow"
    assert r["message"] == "" and r["revertTo"] == "" and r["reasonCode"] == ""
    assert r["decisionId"].startswith("dg_")
    st, d, _ = svc.get("/v1/decisions/" + r["decisionId"])
    assert d["adapter"] == "salesforce" and d["opportunity_id"] == "OPP-APPROVED"
    assert d["registrations"][0]["id"] == "O1000001" and d["registrations"][0]["verified"]
    assert "writeback" not in d  # allowed: nothing to write back


def test_blocked_round_trip_reverts_to_prior_stage():
    sf.opportunities["006BLOCK1"] = {"StageName": "Demo"}
    st, r, _ = call(flow_body("006BLOCK1"))
    assert st == 200, r
    assert r["allowed"] is False and r["outcome"] == "block"
    assert r["revertTo"] == "Qualification"
    assert r["reasonCode"] == "registration_missing"
    assert r["message"] == "Register this deal in AWS ACE before moving to Demo."


def test_picklist_labels_and_registration_fields_map_to_clouds():
    st, r, _ = call(flow_body("OPP-AZ", clouds="Microsoft Azure", partnerCenterReferralId="ref-az-1"))
    assert st == 200 and r["allowed"] is True, r
    st, d, _ = svc.get("/v1/decisions/" + r["decisionId"])
    assert [g["cloud"] for g in d["registrations"]] == ["azure"]
    assert d["registrations"][0]["id"] == "ref-az-1"
    # aceOpportunityId alone puts the deal in AWS co-sell and is checked there
    st, r, _ = call(flow_body("OPP-REJECTED", clouds=None, aceOpportunityId="O1000002"))
    assert st == 200 and r["reasonCode"] == "registration_not_accepted", r
    # a multi-select value with two labels, spaces around the separator, any case
    st, r, _ = call(flow_body("OPP-TWO", clouds="aws ; Microsoft Azure"))
    st, d, _ = svc.get("/v1/decisions/" + r["decisionId"])
    assert sorted(g["cloud"] for g in d["registrations"]) == ["aws", "azure"], d


def test_unmapped_picklist_label_is_422_naming_it():
    st, r, _ = call(flow_body("OPP-X", clouds="AWS;Oracle Cloud"))
    assert st == 422, r
    assert r["error"]["code"] == "invalid_field"
    assert "Oracle Cloud" in r["error"]["message"] and "cloudPrograms" in r["error"]["message"]


def test_invalid_fields_are_422_naming_the_field():
    b = flow_body("OPP-X")
    del b["stageName"]
    st, r, _ = call(b)
    assert st == 422 and "stageName" in r["error"]["message"], r
    b = flow_body("OPP-X")
    del b["opportunityId"]
    st, r, _ = call(b)
    assert st == 422 and "opportunityId" in r["error"]["message"], r
    st, r, _ = call(flow_body("OPP-X", source="referral"))
    assert st == 422 and "source" in r["error"]["message"], r
    st, r, _ = call(flow_body("OPP-X", amount="12,0.0"))
    assert st == 422 and "amount" in r["error"]["message"], r
    st, r, _ = call(flow_body("OPP-X", pipeline="nope"))
    assert st == 422 and "pipeline" in r["error"]["message"], r
    st, r, _ = call("{\"opportunityId\": ")
    assert st == 400 and r["error"]["code"] == "invalid_json", r
    st, r, _ = call(flow_body("OPP-X"), ctype="text/plain")
    assert st == 415, r


def test_amount_as_string_or_number_and_source_any_case():
    st, r, _ = call(flow_body("OPP-APPROVED", amount="120000.50", source="Partner"))
    assert st == 200 and r["allowed"] is True, r
    st, r, _ = call(flow_body("OPP-APPROVED", amount=99.5))
    assert st == 200, r


def test_requires_webhook_token():
    st, r, _ = call(flow_body("OPP-APPROVED"), token=None)
    assert st == 401 and r["error"]["code"] == "unauthorized"
    st, r, _ = call(flow_body("OPP-APPROVED"), token=READER)
    assert st == 401


def test_event_id_makes_retries_idempotent():
    body = flow_body("OPP-IDEM", eventId="evt-sf-1")
    st, r1, h1 = call(body)
    st, r2, h2 = call(body)
    assert st == 200 and r1 == r2, (r1, r2)
    assert h2.get("x-dealgate-replay") == "1" and "x-dealgate-replay" not in h1
    st, page, _ = svc.get("/v1/decisions?opportunity=OPP-IDEM")
    assert len(page["decisions"]) == 1, page
    st, r, _ = call(flow_body("OPP-IDEM", stage="Proposal", eventId="evt-sf-1"))
    assert st == 409 and r["error"]["code"] == "idempotency_conflict", r
    # the same event id under another adapter is another event
    st, r, _ = svc.gate({"event_id": "evt-sf-1", "opportunity": {"id": "OPP-IDEM2"},
                         "to_stage": "Prospecting"})
    assert st == 200, r


def test_writeback_applied_once_with_reason_and_crm_stage():
    sf.opportunities["006WB1"] = {"StageName": "Demo"}
    st, r, _ = call(flow_body("006WB1", eventId="evt-wb-1"))
    assert r["allowed"] is False
    wb = wait_state(r["decisionId"], "done")
    assert wb["crm"] == "salesforce" and wb["attempts"] == 1 and wb["stage_value"] == "Qualification"
    ups = sf.updates_for("006WB1")
    assert ups == [{"StageName": "Qualification", REASON_FIELD: r["message"]}], ups
    # a replay of the same event queues nothing new and writes nothing again
    call(flow_body("006WB1", eventId="evt-wb-1"))
    time.sleep(1.5)
    assert len(sf.updates_for("006WB1")) == 1
    assert sf.opportunities["006WB1"]["StageName"] == "Qualification"


def test_writeback_retried_after_500s():
    sf.opportunities["006WB500"] = {"StageName": "Demo"}
    sf.fail_updates = 2
    st, r, _ = call(flow_body("006WB500"))
    wb = wait_state(r["decisionId"], "done", timeout=20)
    assert wb["attempts"] == 3, wb
    assert len(sf.updates_for("006WB500")) == 1
    assert "UNKNOWN_EXCEPTION" in svc.stderr()  # the upstream error was logged on the way


def test_writeback_retried_when_the_record_is_locked():
    sf.opportunities["006LOCK"] = {"StageName": "Demo"}
    sf.lock_updates = 1  # a 400 that heals: another save holds the row
    st, r, _ = call(flow_body("006LOCK"))
    wb = wait_state(r["decisionId"], "done")
    assert wb["attempts"] == 2, wb
    assert len(sf.updates_for("006LOCK")) == 1


def test_writeback_superseded_when_the_deal_moved_on():
    sf.opportunities["006MOVED"] = {"StageName": "Proposal"}  # fixed and moved on meanwhile
    st, r, _ = call(flow_body("006MOVED"))
    wb = wait_state(r["decisionId"], "superseded")
    assert "Proposal" in wb["detail"], wb
    assert sf.updates_for("006MOVED") == []


def test_expired_token_is_fetched_again():
    sf.opportunities["006TOK"] = {"StageName": "Demo"}
    before = sf.tokens_issued
    sf.revoke_tokens()
    st, r, _ = call(flow_body("006TOK"))
    wait_state(r["decisionId"], "done")
    assert sf.tokens_issued == before + 1, (before, sf.tokens_issued)


def test_failed_writeback_shows_error_and_can_be_retried():
    st, r, _ = call(flow_body("006LATER"))  # not in Salesforce (yet): 404
    wb = wait_state(r["decisionId"], "failed")
    assert "404" in wb["error"] and "NOT_FOUND" in wb["error"], wb
    did = r["decisionId"]
    st, x, _ = svc.request("POST", "/v1/decisions/%s/writeback" % did, token=WEBHOOK)
    assert st == 401
    sf.opportunities["006LATER"] = {"StageName": "Demo"}
    st, x, _ = svc.request("POST", "/v1/decisions/%s/writeback" % did, token=READER)
    assert st == 202 and x["writeback"]["state"] == "pending", x
    wait_state(did, "done")
    assert len(sf.updates_for("006LATER")) == 1
    st, x, _ = svc.request("POST", "/v1/decisions/%s/writeback" % did, token=READER)
    assert st == 409 and x["error"]["code"] == "writeback_not_retryable", x
    st, x, _ = svc.request("POST", "/v1/decisions/dg_nope/writeback", token=READER)
    assert st == 404
    st, x, _ = svc.request("POST", "/v1/decisions/%s/other" % did, token=READER)
    assert st == 404


def test_openapi_document_is_importable_shape():
    st, doc, _ = svc.request("GET", "/openapi.json")
    assert st == 200 and doc["openapi"].startswith("3.0"), doc
    op = doc["paths"]["/v1/gate/salesforce"]["post"]
    assert op["operationId"] == "gateSalesforce"
    resp = doc["components"]["schemas"]["SalesforceResponse"]
    for name, prop in resp["properties"].items():
        assert prop["type"] in ("string", "boolean", "integer", "number"), name

    def walk(node, in_response):
        if isinstance(node, dict):
            if "enum" in node:
                raise AssertionError("enum in the document")
            for k in ("oneOf", "anyOf", "allOf"):
                assert k not in node, k
            if node.get("type") == "array":
                assert isinstance(node["items"], dict), node
            for v in node.values():
                walk(v, in_response)
        elif isinstance(node, list):
            for v in node:
                walk(v, in_response)
    walk(doc, False)
    for path, ops in doc["paths"].items():
        for method, o in ops.items():
            assert o.get("operationId"), (path, method)
    st, only, _ = svc.request("GET", "/openapi.json?only=salesforce")
    assert list(only["paths"]) == ["/v1/gate/salesforce"], only["paths"].keys()
    assert set(only["components"]["schemas"]) == {"SalesforceRequest", "SalesforceResponse",
                                                   "Error", "ErrorBody"}
    st, x, _ = svc.request("GET", "/openapi.json?only=hubspot")
    assert st == 422


def teardown():
    if svc:
        svc.stop()
    if sf:
        sf.stop()


if __name__ == "__main__":
    setup()
    try:
        dgtest.run([
            test_allowed_round_trip_is_flat_scalars,
            test_blocked_round_trip_reverts_to_prior_stage,
            test_picklist_labels_and_registration_fields_map_to_clouds,
            test_unmapped_picklist_label_is_422_naming_it,
            test_invalid_fields_are_422_naming_the_field,
            test_amount_as_string_or_number_and_source_any_case,
            test_requires_webhook_token,
            test_event_id_makes_retries_idempotent,
            test_writeback_applied_once_with_reason_and_crm_stage,
            test_writeback_retried_after_500s,
            test_writeback_retried_when_the_record_is_locked,
            test_writeback_superseded_when_the_deal_moved_on,
            test_expired_token_is_fetched_again,
            test_failed_writeback_shows_error_and_can_be_retried,
            test_openapi_document_is_importable_shape,
        ])
    finally:
        teardown()
