"""Black-box: the real service verifying registrations against a fake AWS ACE on loopback
(which checks every SigV4 signature), and the rule's on_lookup_error policies; and against
a fake Google Cloud CRM Partners API with a service-account key file (the fake verifies
every JWT's RS256 signature)."""
import os
import shutil
import subprocess
import tempfile
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
        err = d["registrations"][0]["error"]  # one line naming what failed
        assert err and "\n" not in err, d
        st, logged, _ = svc.get("/v1/decisions/" + d["decision_id"])
        assert st == 200 and logged == d
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


CLOUD_GCP = """
[cloud:gcp]
name = Google Cloud
connector = gcp
endpoint = {endpoint}
partner_id = 1234567
credentials = {credentials}
token_url = {endpoint}/token
"""


def test_gcp_service_account():
    keys = tempfile.mkdtemp(prefix="dg_bb_gcp_")
    gcp = svc = None
    try:
        subprocess.run(["/usr/bin/python3", os.path.join(dgtest.SRC, "tests", "fakes", "fake_gcp.py"),
                        "--make-sa", keys], check=True)
        gcp = Fake("fake_gcp.py", "--sa-pub", os.path.join(keys, "sa.pub.pem"))
        cfg = BASE_CONFIG.split("[cloud:aws]")[0].replace(
            "accept.aws = Submitted, In review, Approved\n", "").replace(
            "accept.azure = Accepted, Won\n", "accept.gcp = QUALIFIED\n")
        cfg += (CLOUD_GCP.replace("{endpoint}", gcp.url)
                .replace("{credentials}", os.path.join(keys, "sa.json")))
        svc = Service(config=cfg).start()
        st, d, _ = svc.gate(event("006G0000001", clouds=("gcp",), regs={"gcp": "1001"}))
        assert st == 200 and d["allowed"] is True, d
        reg = d["registrations"][0]
        assert reg["status"] == "QUALIFIED" and reg["verified"] is True, reg
        st, d, _ = svc.gate(event("006G0000002", clouds=("gcp",), regs={"gcp": "1002"}))
        assert codes(d) == ["registration_not_accepted"], d
        calls = gcp.calls()
        assert calls.get("token") == 1 and calls.get("token_rejected", 0) == 0, calls
        assert calls.get("unauthenticated", 0) == 0, calls
        st, body, _ = svc.request("GET", "/readyz", token=dgtest.READER)
        assert st == 200 and "token valid" in str(body["upstreams"]["gcp"]), body
        with open(os.path.join(keys, "sa.key.pem")) as f:
            key_line = f.read().splitlines()[1]
        assert "ya29" not in str(body) and key_line not in svc.stderr()
    finally:
        if svc:
            svc.stop()
        if gcp:
            gcp.stop()
        shutil.rmtree(keys, ignore_errors=True)


if __name__ == "__main__":
    ace = Fake("fake_ace.py")
    try:
        dgtest.run([v for k, v in sorted(globals().items()) if k.startswith("test_")])
    finally:
        ace.stop()
