"""Black-box: `dealgate backup` copies the decision log consistently while the service
takes decisions; the documented restore brings it back; [server] retain_days prunes old
decisions and keeps each deal's state and the KPI counters."""
import glob
import os
import shutil
import sqlite3
import subprocess
import threading
import time

import dgtest
from dgtest import BIN, Service, event


def backup(svc, dest):
    p = subprocess.run([BIN, "backup", "-c", svc.config, dest], capture_output=True, text=True,
                       timeout=60, cwd=svc.dir)
    return p.returncode, p.stdout, p.stderr


def test_backup_while_serving_and_restore():
    svc = Service().start()
    stop = threading.Event()
    ids = []

    def load():
        i = 0
        while not stop.is_set():
            try:
                st, d, _ = svc.gate(event("OPP-LOAD-%d" % i, clouds=()))
            except OSError:  # a client timeout on a busy machine: keep loading
                st = None
            if st == 200:
                ids.append(d["decision_id"])
            i += 1

    try:
        for i in range(20):
            st, d, _ = svc.gate(event("OPP-PRE-%d" % i, clouds=()))
            assert st == 200
        t = threading.Thread(target=load)
        t.start()
        time.sleep(0.3)
        dest = os.path.join(svc.dir, "backups", "dealgate-backup.db")
        os.makedirs(os.path.dirname(dest))
        rc, out, err = backup(svc, dest)
        time.sleep(0.2)
        stop.set()
        t.join()
        assert rc == 0, (out, err)
        assert out.startswith("backup %s: " % dest) and " decisions, " in out, out
        assert oct(os.stat(dest).st_mode & 0o777) == "0o600"
        assert not glob.glob(dest + ".tmp-*")
        db = sqlite3.connect(dest)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        n = db.execute("SELECT count(*) FROM decisions").fetchone()[0]
        deals = db.execute("SELECT count(*) FROM deals").fetchone()[0]
        db.close()
        assert n >= 20 and deals == n, (n, deals)  # one decision per deal: state matches rows
        # restore: stop, replace the file (and drop the WAL), start
        svc.stop()
        live = sqlite3.connect(os.path.join(svc.data, "dealgate.db"))
        live_n = live.execute("SELECT count(*) FROM decisions").fetchone()[0]
        live.close()
        assert n < live_n, ("the copy is of one moment, not the end of the load", n, live_n)
        for f in glob.glob(os.path.join(svc.data, "dealgate.db*")):
            os.unlink(f)
        shutil.copy(dest, os.path.join(svc.data, "dealgate.db"))
        svc.start()
        st, page, _ = svc.get("/v1/decisions?limit=500")
        assert len(page["decisions"]) == n, (len(page["decisions"]), n)
        st, d, _ = svc.gate(event("OPP-AFTER", clouds=()))
        assert st == 200
    finally:
        stop.set()
        svc.stop()


def test_backup_errors():
    svc = Service()
    try:
        rc, out, err = backup(svc, os.path.join(svc.dir, "x.db"))
        assert rc == 1 and "dealgate.db" in err, err  # no log yet
        svc.start()
        rc, out, err = backup(svc, svc.dir)
        assert rc == 1 and "is a directory" in err, err
        p = subprocess.run([BIN, "backup", "-c", svc.config], capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and "usage" in p.stderr
    finally:
        svc.stop()


OLD = """deal_id,stage,time,amount,currency,clouds
OLD-1,Qualification,2024-01-10T00:00:00Z,1000,USD,aws
OLD-1,Demo,2024-01-20T00:00:00Z,1000,USD,aws
OLD-1,Closed Won,2024-02-01T00:00:00Z,1000,USD,aws
OLD-2,Qualification,2024-01-10T00:00:00Z,,,
OLD-2,Proposal,2024-01-11T00:00:00Z,,,
"""


def test_retention_prunes_old_decisions_and_keeps_state():
    svc = Service(extra="")
    try:
        path = os.path.join(svc.dir, "old.csv")
        with open(path, "w") as f:
            f.write(OLD)
        p = subprocess.run([BIN, "import-history", "-c", svc.config, path], capture_output=True,
                           text=True, timeout=60, cwd=svc.dir)
        assert p.returncode == 0, p.stderr
        svc.start()
        st, d, _ = svc.gate(event("NEW-1", clouds=()))
        st, k_before, _ = svc.get("/v1/kpis?since=2024-01-01&until=2024-12-31")
        assert st == 200 and k_before["win_rate_unregistered"] == 1.0, k_before
        svc.stop()
        # retain 30 days: the 2024 rows go at start-up
        with open(svc.config) as f:
            text = f.read()
        with open(svc.config, "w") as f:
            f.write(text.replace("currency = USD", "currency = USD\nretain_days = 30"))
        svc.start()
        deadline = time.time() + 10
        while time.time() < deadline and '"event":"retention"' not in svc.stderr():
            time.sleep(0.1)
        assert '"deleted":5' in svc.stderr().replace(" ", ""), svc.stderr()
        st, page, _ = svc.get("/v1/decisions?limit=500")
        assert [x["opportunity_id"] for x in page["decisions"]] == ["NEW-1"], page
        # per-deal state is kept: OLD-2 is still known to be in Proposal
        st, d, _ = svc.gate(event("OLD-2", to="Negotiation", frm=None, clouds=("aws",)))
        assert d["from_stage"] == "Proposal" and d["gated"] is False, d
        # and the counters of old days still answer the KPIs
        st, k_after, _ = svc.get("/v1/kpis?since=2024-01-01&until=2024-12-31")
        assert k_after == k_before, (k_before, k_after)
    finally:
        svc.stop()


if __name__ == "__main__":
    dgtest.run([test_backup_while_serving_and_restore, test_backup_errors,
                test_retention_prunes_old_decisions_and_keeps_state])
