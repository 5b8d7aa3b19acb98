"""Black-box: the real service verifying registrations against a fake AWS ACE on loopback
(which checks every SigV4 signature), and the rule's on_lookup_error policies."""
import time

import dgtest
from dgtest import Fake, Service, event, codes, BASE_CONFIG

ace = None
CLOUD_ACE = """
[cloud:aws]
name = AWS ACE
connector = ace
endpoint = {endpoint}
region = us-east-1
catalog = AWS
access_key_id = AKIDEXAMPLE
secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
timeout_ms = 800
cache_ttl_s = 300
negative_cache_ttl_s = 1
"""


def ace_config(endpoint, policy="block", budget=1500, window=900):
    base = BASE_CONFIG.split("[cloud:aws]")[0].replace(
        "decision_budget_ms = 1500", "decision_budget_ms = %d" % budget).replace(
        "accept.azure = Accepted, Won\n", "").replace(
        "message = Register", "on_lookup_error = %s\nretry_window_s = %d\nmessage = Register" % (policy, window))
    return base + CLOUD_ACE.replace("{endpoint}", endpoint).replace("{", "{{").replace("}", "}}")


def service(policy="block", endpoint=None, **kw):
    return Service(config=ace_config(endpoint or ace.url, policy, **kw)).start()


def test_verified_against_ace():
    svc = service()
    try:
        st, d, _ = svc.gate(event("006A0000001", regs={"aws": "O2000001"}))
        assert st == 200 and d["allowed"] is True, d
        reg = d["registrations"][0]
        assert reg["status"] == "Approved" and reg["source"] == "ace" and reg["verified"] is True
        assert reg["origin"] == "partner" and reg["created_at"].startswith("2025-01-10")
        st, d, _ = svc.gate(event("006B0000002", regs={"aws": "O2000002"}))
        assert codes(d) == ["registration_not_accepted"] and "Rejected" in d["message"], d
        st, d, _ = svc.gate(event("006Z9999999", regs={"aws": "O2000001"}))
        assert codes(d) == ["registration_mismatch"], d
        st, d, _ = svc.gate(event("006Z9999999", regs={"aws": "O7777777"}))
        assert codes(d) == ["registration_not_found"], d
        assert ace.calls().get("bad_signature", 0) == 0
    finally:
        svc.stop()


def test_invalid_id_syntax_never_reaches_ace():
    svc = service()
    try:
        # (the background index pages ListOpportunities meanwhile: count GetOpportunity only)
        before = ace.calls().get("GetOpportunity", 0)
        st, d, _ = svc.gate(event("006Q", regs={"aws": "O12'; DROP"}))
        assert codes(d) == ["registration_not_found"], d
        assert ace.calls().get("GetOpportunity", 0) == before
    finally:
        svc.stop()


def test_cache_shares_one_upstream_call():
    svc = service()
    try:
        ace.reset()
        for _ in range(5):
            st, d, _ = svc.gate(event("006D0000004", regs={"aws": "O2000004"}))
            assert d["allowed"] is True, d
        assert ace.calls().get("GetOpportunity:O2000004") == 1, ace.calls()
    finally:
        svc.stop()


def test_lookup_failure_block_policy():
    svc = service("block", endpoint="http://127.0.0.1:9")  # nothing listens: refused
    try:
        st, d, _ = svc.gate(event("006A0000001", regs={"aws": "O2000001"}))
        assert st == 200 and codes(d) == ["registration_unverifiable"], d
        assert d["registrations"][0]["lookup"] == "failed"
    finally:
        svc.stop()


def test_lookup_failure_allow_policy_warns():
    svc = service("allow", endpoint="http://127.0.0.1:9")
    try:
        st, d, _ = svc.gate(event("006A0000001", regs={"aws": "O2000001"}))
        assert d["allowed"] is True and "lookup_failed_allowed" in codes(d, "warnings"), d
        assert d["registrations"][0]["verified"] is False
    finally:
        svc.stop()


def test_lookup_failure_retry_policy_then_window_ends():
    svc = service("retry", endpoint="http://127.0.0.1:9", window=2)
    try:
        st, body, h = svc.gate(event("006A0000001", regs={"aws": "O2000001"}))
        assert st == 503 and body["error"]["code"] == "lookup_retry", body
        assert int(h["retry-after"]) >= 1
        time.sleep(2.2)
        st, d, _ = svc.gate(event("006A0000001", regs={"aws": "O2000001"}))
        assert st == 200 and codes(d) == ["registration_unverifiable"], (st, d)
    finally:
        svc.stop()


def test_slow_upstream_is_cut_at_the_budget():
    svc = service("block", budget=300)
    try:
        ace.behave(key="O2000003", delay_ms=2000)
        t0 = time.time()
        st, d, _ = svc.gate(event("006C0000003", regs={"aws": "O2000003"}))
        took = time.time() - t0
        assert st == 200 and codes(d) == ["registration_unverifiable"], d
        assert took < 1.5, took  # cut at 300 ms, not after the 2 s upstream
    finally:
        ace.reset()
        svc.stop()


def test_throttling_and_server_errors_are_unverifiable_not_missing():
    svc = service("block")
    try:
        ace.behave(key="O2000004", status=400, error_type="ThrottlingException")
        st, d, _ = svc.gate(event("006D0000004", regs={"aws": "O2000004"}))
        assert codes(d) == ["registration_unverifiable"], d
        ace.reset()
        ace.behave(key="O1111111", status=500, error_type="InternalServerException")
        st, d, _ = svc.gate(event("006X", regs={"aws": "O1111111"}))
        assert codes(d) == ["registration_unverifiable"], d
        ace.reset()
        ace.behave(key="O1111111", malformed=True)
        st, d, _ = svc.gate(event("006Y", regs={"aws": "O1111111"}))
        assert st == 200 and codes(d) == ["registration_unverifiable"], d
    finally:
        ace.reset()
        svc.stop()


def test_readyz_shows_upstream_health_without_secrets():
    svc = service()
    try:
        svc.gate(event("006A0000001", regs={"aws": "O2000001"}))
        st, body, _ = svc.request("GET", "/readyz", token=dgtest.READER)
        assert st == 200 and body["upstreams"]["aws"]["connector"] == "ace", body
        text = str(body)
        assert "wJalrXUtnFEMI" not in text and "wJalrXUtnFEMI" not in svc.stderr()
    finally:
        svc.stop()


if __name__ == "__main__":
    ace = Fake("fake_ace.py")
    try:
        dgtest.run([v for k, v in sorted(globals().items()) if k.startswith("test_")])
    finally:
        ace.stop()
