"""Black-box: the write-back queue is durable. A job pending when the service is killed
(SIGKILL) or stopped (SIGTERM) completes after a restart, exactly once; finished jobs are not
redone after a restart; report-mode and allowed decisions queue nothing; a permanent upstream
refusal fails at once with the CRM's error; back-off spaces the retries out."""
import os
import signal
import sys
import time

import dgtest
from dgtest import Service, READER

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
from fake_salesforce import FakeSalesforce  # noqa: E402


def config(url, reason_field="Dealgate_Block_Reason__c", extra=""):
    return """
        [salesforce]
        cloud.AWS = aws
        writeback = yes
        instance_url = %s
        client_id = sf-client-id
        client_secret = sf-client-secret
        reason_field = %s
        """ % (url, reason_field) + extra


def body(opp, stage="Demo", prior="Qualification"):
    return {"opportunityId": opp, "stageName": stage, "priorStageName": prior,
            "cloudPrograms": "AWS"}


def call(svc, b):
    return svc.request("POST", "/v1/gate/salesforce", b, token=dgtest.WEBHOOK)


def wb(svc, did):
    st, d, _ = svc.get("/v1/decisions/" + did)
    assert st == 200, d
    return d.get("writeback") or {}


def iso_ms(text):
    """Milliseconds of an RFC 3339 UTC time with optional fraction ("...T01:02:03.456Z")."""
    import datetime
    base, _, frac = text.rstrip("Z").partition(".")
    t = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return int(t.timestamp() * 1000) + (int((frac + "000")[:3]) if frac else 0)


def wait_for(pred, timeout=20, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def resume_after(sig):
    sf = FakeSalesforce().start()
    svc = Service(extra=config(sf.url)).start()
    try:
        sf.opportunities["006R"] = {"StageName": "Demo"}
        sf.fail_updates = 1000  # Salesforce is down
        st, r, _ = call(svc, body("006R"))
        assert st == 200 and r["allowed"] is False, r
        did = r["decisionId"]
        wait_for(lambda: wb(svc, did).get("attempts", 0) >= 1 and wb(svc, did)["error"],
                 what="a failed first attempt")
        state = wb(svc, did)
        assert state["state"] == "pending" and "500" in state["error"], state
        assert svc.stop(sig) is not None
        sf.fail_updates = 0  # Salesforce is back while dealgate is down
        time.sleep(0.5)
        assert sf.updates_for("006R") == []
        svc.start()
        wait_for(lambda: wb(svc, did).get("state") == "done", what="done after restart")
        assert sf.updates_for("006R") == [{"StageName": "Qualification",
                                           "Dealgate_Block_Reason__c": r["message"]}]
        # a restart after the job is done does not do it again
        svc.stop()
        svc.start()
        time.sleep(1.0)
        assert len(sf.updates_for("006R")) == 1
        assert wb(svc, did)["state"] == "done"
    finally:
        svc.stop()
        sf.stop()


def test_pending_job_resumes_after_sigkill():
    resume_after(signal.SIGKILL)


def test_pending_job_resumes_after_sigterm():
    resume_after(signal.SIGTERM)


def test_backoff_spaces_retries_and_first_retry_is_within_seconds():
    sf = FakeSalesforce().start()
    svc = Service(extra=config(sf.url)).start()
    try:
        sf.opportunities["006B"] = {"StageName": "Demo"}
        sf.fail_updates = 3
        t0 = time.time()
        st, r, _ = call(svc, body("006B"))
        did = r["decisionId"]
        # The first retry is scheduled within seconds of the first failure (read from the
        # job's own timestamps, not the wall clock of a busy test machine).
        # (while an attempt is in flight, next_attempt_at is its lease: wait for the error)
        first = wait_for(lambda: (lambda w: w if w.get("attempts", 0) == 1 and w.get("error")
                                  and w.get("next_attempt_at") else None)(wb(svc, did)),
                         what="first failure")
        gap = iso_ms(first["next_attempt_at"]) - iso_ms(first["updated_at"])
        assert 500 <= gap <= 3000, ("first retry scheduled %d ms after the failure" % gap, first)
        wait_for(lambda: wb(svc, did).get("attempts", 0) >= 2, what="first retry")
        wait_for(lambda: wb(svc, did).get("state") == "done", what="done")
        took = time.time() - t0
        # attempts at ~0, +1 s, +2 s, +4 s: the fourth lands after about 7 s, not at once
        assert wb(svc, did)["attempts"] == 4 and took > 5, (took, wb(svc, did))
        assert len(sf.updates_for("006B")) == 1
    finally:
        svc.stop()
        sf.stop()


def test_permanent_refusal_fails_at_once_and_nothing_for_allowed_or_report():
    sf = FakeSalesforce().start()
    svc = Service(extra=config(sf.url, reason_field="No_Such_Field__c") + """
        [rule:negotiation-report]
        type = registration
        stage = Negotiation
        clouds = aws
        mode = report
        accept.aws = Approved
        """).start()
    try:
        sf.opportunities["006P"] = {"StageName": "Demo"}
        st, r, _ = call(svc, body("006P"))
        did = r["decisionId"]
        wait_for(lambda: wb(svc, did).get("state") == "failed", what="failed")
        state = wb(svc, did)
        assert state["attempts"] == 1 and "INVALID_FIELD" in state["error"], state
        assert "No_Such_Field__c" in state["error"]
        assert "sf-client-secret" not in svc.stderr()
        # allowed: no job
        st, r, _ = call(svc, body("OPP-APPROVED"))
        assert r["allowed"] is True and "writeback" not in svc.get("/v1/decisions/" + r["decisionId"])[1]
        # a report-mode rule that would block: allowed, nothing written back
        st, r, _ = call(svc, body("006REP", stage="Negotiation", prior="Demo") |
                        {"aceOpportunityId": "O1000004"})
        assert r["allowed"] is True, r
        st, d, _ = svc.get("/v1/decisions/" + r["decisionId"])
        assert "writeback" not in d and [w["code"] for w in d["warnings"]].count("report_only") == 1, d
    finally:
        svc.stop()
        sf.stop()


if __name__ == "__main__":
    dgtest.run([
        test_pending_job_resumes_after_sigkill,
        test_pending_job_resumes_after_sigterm,
        test_backoff_spaces_retries_and_first_retry_is_within_seconds,
        test_permanent_refusal_fails_at_once_and_nothing_for_allowed_or_report,
    ])
