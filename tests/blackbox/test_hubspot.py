"""Black-box: POST /v1/gate/hubspot as HubSpot sends it — custom workflow actions and "Send a
webhook" calls, every signature case (v2, v3, tampered, wrong secret, stale, missing), property
mapping, idempotency by callbackId and by identical webhook body, and the write-back to a fake
HubSpot."""
import base64
import hashlib
import hmac
import json
import os
import sys
import time

import dgtest
from dgtest import Service, WEBHOOK, READER

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
from fake_hubspot import FakeHubSpot  # noqa: E402

SECRET = "hs-client-secret-0123456789"
PUBLIC = "https://gate.example.test"
PATH = "/v1/gate/hubspot"
svc = None
hs = None


def hs_config(api_base, secret=SECRET):
    return """
        [hubspot]
        client_secret = %s
        public_url = %s/
        property.clouds = cloud_programs
        property.registration.aws = ace_opportunity_id
        property.account = company_name
        cloud.Amazon Web Services = aws
        writeback = yes
        api_base = %s
        token = pat-na1-fake-token
        reason_property = dealgate_block_reason
        """ % (secret, PUBLIC, api_base)


def setup():
    global svc, hs
    hs = FakeHubSpot().start()
    svc = Service(extra=hs_config(hs.url)).start()


def sign_v2(body, path=PATH, secret=SECRET, method="POST"):
    return hashlib.sha256((secret + method + PUBLIC + path + body).encode()).hexdigest()


def sign_v3(body, ts, path=PATH, secret=SECRET, method="POST"):
    mac = hmac.new(secret.encode(), (method + PUBLIC + path + body + ts).encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def post(body, headers=None, path=PATH, token=None):
    text = body if isinstance(body, str) else json.dumps(body)
    return svc.request("POST", path, text, headers=headers, token=token)


def post_v2(body, path=PATH, secret=SECRET):
    text = json.dumps(body)
    return post(text, {"X-HubSpot-Signature": sign_v2(text, path, secret),
                       "X-HubSpot-Signature-Version": "v2"}, path=path)


def post_v3(body, ts=None, path=PATH, secret=SECRET):
    text = json.dumps(body)
    ts = ts or str(int(time.time() * 1000))
    return post(text, {"X-HubSpot-Signature-v3": sign_v3(text, ts, path, secret),
                       "X-HubSpot-Request-Timestamp": ts}, path=path)


_cb = [0]


def action(deal_id, stage="presentationscheduled", clouds="Amazon Web Services", callback=None,
           **props):
    _cb[0] += 1
    p = {"dealstage": stage, "dealname": "Deal %s" % deal_id, "amount": "120000",
         "pipeline": "default", "cloud_programs": clouds, "hs_object_id": str(deal_id)}
    p.update(props)
    return {"callbackId": callback or "ap-1-2-%d-%d" % (_cb[0], int(time.time() * 1000)),
            "origin": {"portalId": 62515, "actionDefinitionId": 1001, "actionDefinitionVersion": 1},
            "context": {"source": "WORKFLOWS", "workflowId": 42},
            "object": {"objectId": int(deal_id) if str(deal_id).isdigit() else deal_id,
                       "objectType": "DEAL", "properties": p},
            "inputFields": {}}


def webhook(deal_id, stage="presentationscheduled", clouds="Amazon Web Services", **props):
    p = {"dealstage": {"value": stage, "timestamp": 1700000000000, "source": "CRM_UI"},
         "dealname": {"value": "Deal %s" % deal_id},
         "pipeline": {"value": "default"},
         "cloud_programs": {"value": clouds}}
    p.update(props)
    return {"portalId": 62515, "objectType": "DEAL", "objectId": deal_id, "isDeleted": False,
            "properties": p}


def wait_for(pred, timeout=15, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def wb_state(did):
    st, d, _ = svc.get("/v1/decisions/" + did)
    return (d.get("writeback") or {}).get("state"), d.get("writeback")


# ---- signatures ----------------------------------------------------------------------------

def test_custom_action_signed_v2_answers_output_fields_as_strings():
    st, r, _ = post_v2(action(9001))
    assert st == 200, r
    out = r["outputFields"]
    assert set(out) == {"allowed", "outcome", "message", "revertTo", "decisionId", "reasonCode"}
    assert all(isinstance(v, str) for v in out.values()), out
    assert out["allowed"] == "false" and out["outcome"] == "block"
    assert out["reasonCode"] == "registration_missing"
    assert out["revertTo"] == "qualifiedtobuy"  # HubSpot's own stage id, not "Qualification"
    st, d, _ = svc.get("/v1/decisions/" + out["decisionId"])
    assert d["adapter"] == "hubspot" and d["opportunity_id"] == "9001" and d["name"] == "Deal 9001"


def test_custom_action_signed_v3_is_accepted():
    st, r, _ = post_v3(action(9002, ace_opportunity_id="O1000004"))
    assert st == 200, r
    assert r["outputFields"]["allowed"] == "true", r


def test_tampered_body_is_refused():
    body = json.dumps(action(9003))
    sig = sign_v2(body)
    tampered = body.replace("presentationscheduled", "closedwon")
    st, r, _ = post(tampered, {"X-HubSpot-Signature": sig, "X-HubSpot-Signature-Version": "v2"})
    assert st == 401 and "does not match" in r["error"]["message"], r
    ts = str(int(time.time() * 1000))
    st, r, _ = post(tampered, {"X-HubSpot-Signature-v3": sign_v3(body, ts),
                               "X-HubSpot-Request-Timestamp": ts})
    assert st == 401, r


def test_wrong_secret_is_refused():
    st, r, _ = post_v2(action(9004), secret="another-secret")
    assert st == 401, r
    st, r, _ = post_v3(action(9004), secret="another-secret")
    assert st == 401, r
    assert SECRET not in json.dumps(r) and SECRET not in svc.stderr()


def test_stale_or_future_timestamp_is_refused():
    old = str(int((time.time() - 6 * 60) * 1000))
    st, r, _ = post_v3(action(9005), ts=old)
    assert st == 401 and "old" in r["error"]["message"], r
    future = str(int((time.time() + 6 * 60) * 1000))
    st, r, _ = post_v3(action(9005), ts=future)
    assert st == 401 and "future" in r["error"]["message"], r
    recent = str(int((time.time() - 4 * 60) * 1000))
    st, r, _ = post_v3(action(9005), ts=recent)
    assert st == 200, r


def test_missing_headers_are_refused():
    body = json.dumps(action(9006))
    st, r, h = post(body)
    assert st == 401 and r["error"]["code"] == "unauthorized", r
    assert "www-authenticate" in h
    ts = str(int(time.time() * 1000))
    st, r, _ = post(body, {"X-HubSpot-Signature-v3": sign_v3(body, ts)})  # no timestamp
    assert st == 401 and "Timestamp" in r["error"]["message"], r
    st, r, _ = post(body, {"X-HubSpot-Signature": ""})
    assert st == 401, r


def test_v3_present_must_verify_even_with_a_token():
    body = json.dumps(action(9007))
    ts = str(int(time.time() * 1000))
    st, r, _ = post(body, {"X-HubSpot-Signature-v3": "bm90IGEgc2lnbmF0dXJl",
                           "X-HubSpot-Request-Timestamp": ts}, token=WEBHOOK)
    assert st == 401, r


def test_v1_is_not_accepted_for_workflow_calls():
    body = json.dumps(action(9008))
    v1 = hashlib.sha256((SECRET + body).encode()).hexdigest()
    st, r, _ = post(body, {"X-HubSpot-Signature": v1, "X-HubSpot-Signature-Version": "v1"})
    assert st == 401 and "v1" in r["error"]["message"], r


def test_bearer_webhook_token_without_signature():
    st, r, _ = post(action(9009), token=WEBHOOK)
    assert st == 200, r
    st, r, _ = post(action(9009), token=READER)
    assert st == 401, r


def test_signed_uri_includes_the_query_string():
    path = PATH + "?portalId=62515&source=workflow"
    st, r, _ = post_v2(action(9010), path=path)
    assert st == 200, r
    body = json.dumps(action(9010))
    st, r, _ = post(body, {"X-HubSpot-Signature": sign_v2(body, PATH),
                           "X-HubSpot-Signature-Version": "v2"}, path=path)
    assert st == 401, r


# ---- payloads ------------------------------------------------------------------------------

def test_webhook_with_value_objects_answers_flat():
    st, r, _ = post_v2(webhook(9101, ace_opportunity_id={"value": "O1000004"}))
    assert st == 200, r
    assert r["allowed"] is True and r["outcome"] == "allow", r
    st, d, _ = svc.get("/v1/decisions/" + r["decisionId"])
    assert d["registrations"][0]["id"] == "O1000004" and d["to_value"] == "presentationscheduled"


def test_customised_webhook_body_is_its_own_property_map():
    body = {"hs_object_id": "9102", "dealstage": "presentationscheduled",
            "cloud_programs": "Amazon Web Services", "amount": 5000, "company_name": "Acme"}
    st, r, _ = post_v2(body)
    assert st == 200 and r["allowed"] is False, r
    st, d, _ = svc.get("/v1/decisions/" + r["decisionId"])
    assert d["opportunity_id"] == "9102", d


def test_identical_webhook_body_within_window_is_one_event():
    body = webhook(9103)
    st, r1, h1 = post_v2(body)
    st, r2, h2 = post_v2(body)
    assert r1 == r2 and h2.get("x-dealgate-replay") == "1", (r1, r2, h2)
    st, page, _ = svc.get("/v1/decisions?opportunity=9103")
    assert len(page["decisions"]) == 1, page
    other = webhook(9103)
    other["properties"]["dealstage"]["timestamp"] = 1700000009999
    st, r3, _ = post_v2(other)
    assert r3["decisionId"] != r1["decisionId"]


def test_callback_id_makes_retries_idempotent():
    body = action(9104, callback="ap-cb-fixed-1")
    st, r1, _ = post_v2(body)
    st, r2, h2 = post_v2(body)
    assert r1 == r2 and h2.get("x-dealgate-replay") == "1"
    st, page, _ = svc.get("/v1/decisions?opportunity=9104")
    assert len(page["decisions"]) == 1
    st, r, _ = post_v2(action(9104, stage="closedwon", callback="ap-cb-fixed-1"))
    assert st == 409 and r["error"]["code"] == "idempotency_conflict", r


def test_unmapped_cloud_value_and_bad_fields_are_422():
    st, r, _ = post_v2(action(9105, clouds="Amazon Web Services;Oracle"))
    assert st == 422 and "Oracle" in r["error"]["message"], r
    assert "cloud_programs" in r["error"]["message"]
    b = action(9105)
    del b["object"]["properties"]["dealstage"]
    st, r, _ = post_v2(b)
    assert st == 422 and "dealstage" in r["error"]["message"], r
    st, r, _ = post_v2(action(9105, pipeline="12345"))
    assert st == 422 and "12345" in r["error"]["message"], r
    b = action(9105)
    b["object"]["objectType"] = "CONTACT"
    st, r, _ = post_v2(b)
    assert st == 422 and "objectType" in r["error"]["message"], r
    st, r, _ = post_v2(action(9105, amount="lots"))
    assert st == 422 and "amount" in r["error"]["message"], r


# ---- write-back ----------------------------------------------------------------------------

def test_writeback_moves_the_deal_back_once():
    hs.deals["9201"] = {"dealstage": "presentationscheduled"}
    st, r, _ = post_v2(action(9201))
    out = r["outputFields"]
    assert out["allowed"] == "false"
    wait_for(lambda: wb_state(out["decisionId"])[0] == "done", what="write-back done")
    ups = hs.updates_for("9201")
    assert ups == [{"dealstage": "qualifiedtobuy", "dealgate_block_reason": out["message"]}], ups
    assert hs.deals["9201"]["dealstage"] == "qualifiedtobuy"
    post_v2(action(9201))  # another block for the deal: it is already back, nothing to write
    time.sleep(1.0)
    assert len(hs.updates_for("9201")) == 1


def test_writeback_retried_after_500():
    hs.deals["9202"] = {"dealstage": "presentationscheduled"}
    hs.fail_updates = 1
    st, r, _ = post_v2(webhook(9202))
    wait_for(lambda: wb_state(r["decisionId"])[0] == "done", what="write-back done")
    assert wb_state(r["decisionId"])[1]["attempts"] == 2
    assert len(hs.updates_for("9202")) == 1


def test_writeback_superseded_when_deal_moved_on():
    hs.deals["9203"] = {"dealstage": "decisionmakerboughtin"}
    st, r, _ = post_v2(webhook(9203))
    wait_for(lambda: wb_state(r["decisionId"])[0] == "superseded", what="superseded")
    assert "decisionmakerboughtin" in wb_state(r["decisionId"])[1]["detail"]
    assert hs.updates_for("9203") == []


RETRY_CONFIG = """
[server]
listen = 127.0.0.1:{port}
threads = 4
data_dir = {data}
decision_budget_ms = 1000

[auth]
webhook_tokens = {webhook}
reader_tokens = {reader}

[pipeline]
stages = Prospecting, Qualification, Demo, Proposal, Closed Won, Closed Lost
won = Closed Won
lost = Closed Lost
alias.qualifiedtobuy = Qualification
alias.presentationscheduled = Demo

[rule:demo]
type = registration
stage = Demo
accept.aws = Approved
on_lookup_error = retry
retry_window_s = 2

[cloud:aws]
name = AWS ACE
connector = ace
endpoint = http://127.0.0.1:%d
access_key_id = AKIDEXAMPLE
secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
timeout_ms = 300
negative_cache_ttl_s = 0

[hubspot]
property.registration.aws = ace_opportunity_id
"""


def test_lookup_retry_answers_503_then_blocks_after_the_window():
    closed = dgtest.free_port()  # nothing listens: ACE cannot be reached
    retry = Service(config=RETRY_CONFIG % closed).start()
    try:
        body = webhook(9301, ace_opportunity_id={"value": "O1234567"})
        st, r, h = retry.request("POST", PATH, body, token=WEBHOOK)
        assert st == 503 and r["error"]["code"] == "lookup_retry", (st, r)
        assert int(h["retry-after"]) > 0  # HubSpot retries 5xx for up to 3 days ...
        time.sleep(2.5)
        st, r, _ = retry.request("POST", PATH, body, token=WEBHOOK)
        assert st == 200 and r["allowed"] is False, (st, r)  # ... but not past retry_window_s
        assert r["reasonCode"] == "registration_unverifiable", r
    finally:
        retry.stop()


def teardown():
    if svc:
        svc.stop()
    if hs:
        hs.stop()


if __name__ == "__main__":
    setup()
    try:
        dgtest.run([
            test_custom_action_signed_v2_answers_output_fields_as_strings,
            test_custom_action_signed_v3_is_accepted,
            test_tampered_body_is_refused,
            test_wrong_secret_is_refused,
            test_stale_or_future_timestamp_is_refused,
            test_missing_headers_are_refused,
            test_v3_present_must_verify_even_with_a_token,
            test_v1_is_not_accepted_for_workflow_calls,
            test_bearer_webhook_token_without_signature,
            test_signed_uri_includes_the_query_string,
            test_webhook_with_value_objects_answers_flat,
            test_customised_webhook_body_is_its_own_property_map,
            test_identical_webhook_body_within_window_is_one_event,
            test_callback_id_makes_retries_idempotent,
            test_unmapped_cloud_value_and_bad_fields_are_422,
            test_writeback_moves_the_deal_back_once,
            test_writeback_retried_after_500,
            test_writeback_superseded_when_deal_moved_on,
            test_lookup_retry_answers_503_then_blocks_after_the_window,
        ])
    finally:
        teardown()
