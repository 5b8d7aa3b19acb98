"""Black-box: background re-verification. Deals past the gate whose registration later turns
Rejected or vanishes are recorded as registration_lapsed (a decision of adapter "reverify",
the deal does not move), once; a registration that comes back clears the lapse; with
Salesforce write-back on, the reason is written to the deal without a stage change."""
import os
import re
import sys
import time

import dgtest
from dgtest import BASE_CONFIG, REGISTRATIONS, Service, event

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
from fake_salesforce import FakeSalesforce  # noqa: E402

# every look-up reaches the file (no cache), re-checks every second
CONFIG = BASE_CONFIG.replace("path = {regs}", "path = {regs}\ncache_ttl_s = 0\nnegative_cache_ttl_s = 0")
REVERIFY = """
[reverify]
interval_s = 1
batch = 50
pause_ms = 0
"""


def write_regs(svc, text):
    tmp = svc.regs + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, svc.regs)


def reverify_decisions(svc, opp):
    st, page, _ = svc.get("/v1/decisions?opportunity=" + opp)
    assert st == 200, page
    return [d for d in page["decisions"] if d["adapter"] == "reverify"]


def wait_for(pred, timeout=15, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def test_lapse_is_recorded_once_and_cleared():
    svc = Service(config=CONFIG, extra=REVERIFY).start()
    try:
        st, a, _ = svc.gate(event("OPP-APPROVED", regs={"aws": "O1000001"}))
        assert a["allowed"] is True, a
        st, b, _ = svc.gate(event("OPP-BYCRM"))  # found by its CRM id
        assert b["allowed"] is True, b
        st, c, _ = svc.gate(event("OPP-AZ", clouds=("azure",), regs={"azure": "ref-az-1"}))
        assert c["allowed"] is True, c
        st, n, _ = svc.gate(event("OPP-NONE", to="Qualification", frm="Prospecting"))
        assert n["allowed"] is True and n["gated"] is False, n
        # O1000001 is rejected now, O1000005 (OPP-BYCRM) vanished, azure unchanged
        write_regs(svc, REGISTRATIONS.replace("O1000001,OPP-APPROVED,Approved",
                                              "O1000001,OPP-APPROVED,Rejected")
                   .replace("aws,O1000005,OPP-BYCRM,In review,2026-10-05T09:00:00Z,cloud\n", ""))
        la = wait_for(lambda: reverify_decisions(svc, "OPP-APPROVED"), what="a lapse of OPP-APPROVED")
        lb = wait_for(lambda: reverify_decisions(svc, "OPP-BYCRM"), what="a lapse of OPP-BYCRM")
        d = la[0]
        assert d["outcome"] == "allow" and d["reasons"] == [] and d["gated"] is False, d
        assert d["from_stage"] == "Demo" and d["to_stage"] == "Demo", d
        w = d["warnings"][0]
        assert w["code"] == "registration_lapsed" and w["cloud"] == "aws", w
        assert w["lapse_code"] == "registration_not_accepted" and "Rejected" in w["message"], w
        assert lb[0]["warnings"][0]["lapse_code"] in ("registration_not_found",
                                                      "registration_missing"), lb
        # recorded once, although every run re-checks
        time.sleep(2.5)
        assert len(reverify_decisions(svc, "OPP-APPROVED")) == 1
        assert len(reverify_decisions(svc, "OPP-BYCRM")) == 1
        assert reverify_decisions(svc, "OPP-AZ") == []
        assert reverify_decisions(svc, "OPP-NONE") == []
        # in the KPIs and on the manager page
        st, k, _ = svc.get("/v1/kpis")
        assert st == 200 and k["registrations_lapsed"] == 2, k
        st, k, _ = svc.get("/v1/kpis?cloud=azure")
        assert k["registrations_lapsed"] == 0, k
        st, page, _ = svc.get("/ui")
        page = page.decode() if isinstance(page, bytes) else str(page)
        assert st == 200 and 'id="lapsed"' in page and "OPP-APPROVED" in page, page[:2000]
        assert "O1000001" in page and "Rejected" in page
        # the deal did not move: its next move is judged from Demo (not gated)
        st, nxt, _ = svc.gate(event("OPP-APPROVED", to="Proposal", frm=None))
        assert nxt["allowed"] is True and nxt["from_stage"] == "Demo" and nxt["gated"] is False, nxt
        # registered again: the lapse clears, and a new lapse would be recorded anew
        write_regs(svc, REGISTRATIONS)
        wait_for(lambda: re.search(r'"restored":[12]', svc.stderr()), what="a restore")
        wait_for(lambda: 'id="lapsed"' not in svc.get("/ui")[1].decode(), what="/ui without lapses")
        log = svc.stderr()
        assert '"event":"registration_lapsed"' in log
    finally:
        svc.stop()


def test_disabled_and_closed_deals_are_left_alone():
    svc = Service(config=CONFIG, extra=REVERIFY.replace("pause_ms = 0", "pause_ms = 0\nenabled = no")).start()
    try:
        st, a, _ = svc.gate(event("OPP-APPROVED", regs={"aws": "O1000001"}))
        assert a["allowed"] is True
        write_regs(svc, REGISTRATIONS.replace("OPP-APPROVED,Approved", "OPP-APPROVED,Rejected"))
        time.sleep(2.5)
        assert reverify_decisions(svc, "OPP-APPROVED") == []
    finally:
        svc.stop()
    svc = Service(config=CONFIG, extra=REVERIFY).start()
    try:
        st, a, _ = svc.gate(event("OPP-APPROVED", regs={"aws": "O1000001"}))
        st, w, _ = svc.gate(event("OPP-APPROVED", to="Closed Won", frm="Demo", regs={"aws": "O1000001"}))
        assert w["allowed"] is True
        write_regs(svc, REGISTRATIONS.replace("OPP-APPROVED,Approved", "OPP-APPROVED,Rejected"))
        time.sleep(2.5)
        assert reverify_decisions(svc, "OPP-APPROVED") == []  # won: not re-checked
    finally:
        svc.stop()


def test_lapse_writes_the_reason_back_without_moving_the_deal():
    sf = FakeSalesforce().start()
    extra = REVERIFY + """
[salesforce]
cloud.AWS = aws
writeback = yes
instance_url = %s
client_id = sf-client-id
client_secret = sf-client-secret
reason_field = Dealgate_Block_Reason__c
""" % sf.url
    svc = Service(config=CONFIG, extra=extra).start()
    try:
        sf.opportunities["OPP-APPROVED"] = {"StageName": "Demo"}
        st, r, _ = svc.request("POST", "/v1/gate/salesforce",
                               {"opportunityId": "OPP-APPROVED", "stageName": "Demo",
                                "priorStageName": "Qualification", "cloudPrograms": "AWS",
                                "aceOpportunityId": "O1000001"}, token=dgtest.WEBHOOK)
        assert st == 200 and r["allowed"] is True, r
        write_regs(svc, REGISTRATIONS.replace("OPP-APPROVED,Approved", "OPP-APPROVED,Rejected"))
        lapse = wait_for(lambda: reverify_decisions(svc, "OPP-APPROVED"), what="a lapse")[0]
        wait_for(lambda: sf.updates_for("OPP-APPROVED"), what="the write-back")
        up = sf.updates_for("OPP-APPROVED")
        assert up == [{"StageName": "Demo", "Dealgate_Block_Reason__c": lapse["message"]}], up
        assert sf.opportunities["OPP-APPROVED"]["StageName"] == "Demo"
        wait_for(lambda: svc.get("/v1/decisions/" + lapse["decision_id"])[1]["writeback"]["state"]
                 == "done", what="the write-back done")
    finally:
        svc.stop()
        sf.stop()


if __name__ == "__main__":
    dgtest.run([test_lapse_is_recorded_once_and_cleared, test_disabled_and_closed_deals_are_left_alone,
                test_lapse_writes_the_reason_back_without_moving_the_deal])
