"""Black-box: crash durability. Clients send stage events concurrently (canonical and
Salesforce, allowed and blocked, each with its own event id); the service is killed with
SIGKILL at a random moment while they do; then it is restarted on the same data dir and
the test checks what every client saw against the decision log:

  - every decision a client got an answer for is in the log (same id, same event id);
  - no event id is in the log twice, also after every request is sent again (requests
    that got an answer are replays of the same decision; those cut off by the kill are
    decided now, or replayed when their decision was committed before the kill);
  - write-backs that were pending at the kill (Salesforce was failing them) complete after
    the restart, exactly once per blocked deal, at seven a second at least.

Two rounds, each with a fresh random kill moment; DG_CRASH_SEED makes a run repeatable."""
import http.client
import os
import random
import signal
import sqlite3
import sys
import threading
import time

import dgtest
from dgtest import Service, WEBHOOK

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
from fake_salesforce import FakeSalesforce  # noqa: E402

SEED = int(os.environ.get("DG_CRASH_SEED") or time.time_ns() % 1000000)
rnd = random.Random(SEED)
CLIENTS = 8
PER_CLIENT = 40  # requests per client and round, at most


class Client(threading.Thread):
    """Sends its own events one after another until stopped or the service goes away."""

    def __init__(self, svc, cid, rnd_round):
        super().__init__(daemon=True)
        self.svc, self.cid, self.round = svc, cid, rnd_round
        self.sent = []  # (adapter, event id, body)
        self.answers = {}  # event id -> (status, decision id or None)
        self.stop = threading.Event()

    def run(self):
        n = 0
        while not self.stop.is_set() and n < PER_CLIENT:
            n += 1
            time.sleep(rnd.uniform(0, 0.02))  # spread the requests over the kill window
            eid = "r%d-c%d-%d" % (self.round, self.cid, n)
            if n % 2:
                opp = "CR-%s" % eid
                body = {"event_id": eid, "from_stage": "Qualification", "to_stage": "Demo",
                        "opportunity": {"id": "OPP-APPROVED" if n % 3 == 0 else opp,
                                        "clouds": ["aws"]}}
                adapter, path = "stage", "/v1/gate/stage"
            else:
                body = {"eventId": eid, "opportunityId": "SF-%s" % eid, "stageName": "Demo",
                        "priorStageName": "Qualification", "cloudPrograms": "AWS"}
                adapter, path = "salesforce", "/v1/gate/salesforce"
            self.sent.append((adapter, eid, path, body))
            try:
                st, d, _ = self.svc.request("POST", path, body, token=WEBHOOK, timeout=10)
            except (OSError, ValueError, http.client.HTTPException):
                return  # the service is gone: this request has no answer
            did = None
            if st == 200:
                did = d.get("decision_id") or d.get("decisionId")
            self.answers[eid] = (st, did, d)


def log_rows(svc):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(svc.data, "dealgate.db"), uri=True,
                         timeout=10)
    try:
        return db.execute("SELECT id, adapter, event_id FROM decisions").fetchall()
    finally:
        db.close()


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def one_round(svc, sf, rnum):
    sf.fail_updates = 10 ** 9  # Salesforce is down: write-backs stay pending
    clients = [Client(svc, i, rnum) for i in range(CLIENTS)]
    for c in clients:
        c.start()
    time.sleep(rnd.uniform(0.2, 0.9))  # the random moment
    svc.proc.send_signal(signal.SIGKILL)
    svc.proc.wait(10)
    svc.log.close()
    for c in clients:
        c.stop.set()
    for c in clients:
        c.join(15)
    sent = [s for c in clients for s in c.sent]
    answers = {k: v for c in clients for k, v in c.answers.items()}
    answered = {eid: a for eid, a in answers.items() if a[0] == 200}
    assert answered, "no request was answered before the kill (round %d)" % rnum
    bad = {eid: a for eid, a in answers.items() if a[0] != 200}
    assert not bad, "answers other than 200 under load: %r" % list(bad.items())[:3]

    sf.fail_updates = 0  # Salesforce is back while dealgate restarts
    svc.start()

    # 1. every answered decision is in the log, under its event id, once
    rows = log_rows(svc)
    by_id = {r[0]: r for r in rows}
    for eid, (st, did, d) in answered.items():
        assert did in by_id, "answered %s (%s) is not in the log" % (eid, did)
        assert by_id[did][2] == eid, (did, by_id[did], eid)
        st2, d2, _ = svc.get("/v1/decisions/" + did)
        assert st2 == 200 and d2["event_id"] == eid, (st2, d2)
    keys = [(r[1], r[2]) for r in rows if r[2]]
    assert len(keys) == len(set(keys)), "an event id is in the log twice"

    # 2. everything again: replays for the answered, one decision each for the rest
    cut_off = committed = 0
    for adapter, eid, path, body in sent:
        st, d, h = svc.request("POST", path, body, token=WEBHOOK)
        assert st == 200, (eid, st, d)
        did = d.get("decision_id") or d.get("decisionId")
        if eid in answered:
            assert did == answered[eid][1], "replay of %s gave another decision" % eid
            assert h.get("x-dealgate-replay") == "1", (eid, h)
        else:
            cut_off += 1
            committed += h.get("x-dealgate-replay") == "1"
    rows = log_rows(svc)
    keys = [(r[1], r[2]) for r in rows if r[2] and r[2].startswith("r%d-" % rnum)]
    assert len(keys) == len(set(keys)) == len(sent), (len(keys), len(set(keys)), len(sent))

    # 3. write-backs pending at the kill complete, exactly once per blocked Salesforce deal.
    # The one job the worker held when killed (it works one at a time, under a 60 s lease)
    # comes back when its lease runs out; the test asks for it at once, as the deal desk can
    # (POST /v1/decisions/{id}/writeback), instead of waiting a minute.
    blocked = {d["opportunityId"]: eid for _, eid, p, d in sent if p.endswith("salesforce")}
    t0 = time.time()
    wait_for(lambda: sum(1 for o in blocked if not sf.updates_for(o)) <= 1,
             4 + len(blocked) / 7.0,  # 7 a second at least: the worker did 4 before its fix
             "the %d pending write-backs of round %d" % (len(blocked), rnum))
    drained = time.time() - t0
    leased = [o for o in blocked if not sf.updates_for(o)]
    for o in leased:
        st, d, _ = svc.get("/v1/decisions?opportunity=" + o)
        did = d["decisions"][0]["decision_id"]
        st, d, _ = svc.get("/v1/decisions/" + did)
        w = d["writeback"]
        if w["state"] == "done" and sf.updates_for(o):
            continue  # it was only in flight after the restart, not held under the lease
        assert w["state"] == "pending" and w["attempts"] >= 1 and not w["error"], w
        st, d, _ = svc.request("POST", "/v1/decisions/%s/writeback" % did, b"",
                               token=dgtest.READER, ctype=None)
        # 409: it completed between the read above and this call (it was in flight)
        assert st == 202 or (st == 409 and sf.updates_for(o)), (st, d)
    wait_for(lambda: all(sf.updates_for(o) for o in blocked), 10, "the leased write-back")
    time.sleep(0.5)
    twice = [o for o in blocked if len(sf.updates_for(o)) != 1]
    assert not twice, "write-back not exactly once: %r" % twice[:5]
    print("round %d: %d sent, %d answered before SIGKILL, %d cut off (%d of them committed "
          "before it); %d write-backs done %.1f s after the replays (%d held under lease at the "
          "kill)" % (rnum, len(sent), len(answered), cut_off, committed, len(blocked), drained,
                     len(leased)), flush=True)
    return sent


def test_sigkill_under_concurrent_load_loses_nothing():
    print("DG_CRASH_SEED=%d" % SEED, flush=True)
    sf = FakeSalesforce().start()
    sf.server.handle_error = lambda request, address: None  # resets from the killed service
    svc = Service(extra="""
        [salesforce]
        cloud.AWS = aws
        writeback = yes
        instance_url = %s
        client_id = sf-client-id
        client_secret = sf-client-secret
        reason_field = Dealgate_Block_Reason__c
        """ % sf.url).start()
    try:
        # every Salesforce deal the clients may name exists in the fake
        for r in (1, 2):
            for c in range(CLIENTS):
                for n in range(1, 4000):
                    sf.opportunities["SF-r%d-c%d-%d" % (r, c, n)] = {"StageName": "Demo"}
        total = 0
        for r in (1, 2):
            total += len(one_round(svc, sf, r))
        rows = log_rows(svc)
        assert len(rows) == total, (len(rows), total)
    finally:
        svc.stop()
        sf.stop()


if __name__ == "__main__":
    dgtest.run([test_sigkill_under_concurrent_load_loses_nothing])
