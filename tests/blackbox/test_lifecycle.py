"""Black-box: CLI commands, SIGHUP reload, SIGTERM shutdown with a flushed log, restart."""
import json
import os
import signal
import subprocess
import threading
import time

import dgtest
from dgtest import BIN, SRC, Service, event, codes, READER


def run_cli(*args, stdin=None, cwd=None):
    p = subprocess.run([BIN] + list(args), input=stdin, capture_output=True, text=True,
                       cwd=cwd or SRC, timeout=30)
    return p.returncode, p.stdout, p.stderr


def test_version_and_help():
    rc, out, _ = run_cli("--version")
    assert rc == 0 and out.startswith("dealgate ")
    rc, out, _ = run_cli("--help")
    assert rc == 0 and "check-config" in out and "comp-check" in out
    rc, _, errout = run_cli("frobnicate")
    assert rc == 2 and "unknown command" in errout


def test_check_config_default_is_ok():
    rc, out, errout = run_cli("check-config", "-c", "config/dealgate.ini")
    assert rc == 0 and out.strip() == "configuration OK", errout


def test_check_config_reports_every_error_with_line():
    svc = Service()
    with open(svc.config, "a") as f:
        f.write("\n[server]\nbogus = 1\n\n[nonsense]\nx = y\n")
    rc, out, errout = run_cli("check-config", "-c", svc.config)
    assert rc == 1, (out, errout)
    lines = [l for l in errout.splitlines() if l.startswith(svc.config + ":")]
    assert len(lines) >= 2, errout
    for l in lines:
        assert l.split(":")[1].isdigit(), l


def test_eval_decides_without_logging():
    svc = Service()
    ev = json.dumps(event("OPP-REJECTED", regs={"aws": "O1000002"}))
    rc, out, errout = run_cli("eval", "-c", svc.config, stdin=ev, cwd=svc.dir)
    assert rc == 1, errout
    d = json.loads(out)
    assert d["allowed"] is False and codes(d) == ["registration_not_accepted"]
    assert not os.path.exists(os.path.join(svc.data, "dealgate.db"))
    path = os.path.join(svc.dir, "ev.json")
    with open(path, "w") as f:
        f.write(json.dumps(event("OPP-APPROVED")))
    rc, out, _ = run_cli("eval", "-c", svc.config, path, cwd=svc.dir)
    assert rc == 0 and json.loads(out)["allowed"] is True
    rc, out, errout = run_cli("eval", "-c", svc.config, stdin="{bad", cwd=svc.dir)
    assert rc == 2 and "byte" in errout


def test_sighup_reload_applies_good_config_and_keeps_old_on_bad():
    svc = Service().start()
    try:
        st, d, _ = svc.gate(event("OPP-NOTHING"))
        assert d["allowed"] is False and d["mode"] == "enforce"
        original = open(svc.config).read()
        # A bad config: rejected with its errors, the old one stays.
        with open(svc.config, "w") as f:
            f.write(original + "\n[rule:broken]\ntype = registration\nstage = Nowhere\n")
        svc.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        st, d, _ = svc.gate(event("OPP-NOTHING"))
        assert d["allowed"] is False, d
        assert "Nowhere" in svc.stderr()
        # A good config: report mode now.
        with open(svc.config, "w") as f:
            f.write(original.replace("type = registration\nstage = Demo",
                                     "type = registration\nmode = report\nstage = Demo"))
        svc.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 5
        while time.time() < deadline:
            st, d, _ = svc.gate(event("OPP-NOTHING"))
            if d["allowed"]:
                break
            time.sleep(0.1)
        assert d["allowed"] is True and "report_only" in codes(d, "warnings"), d
        assert d["mode"] == "report"
    finally:
        svc.stop()


def test_sigterm_finishes_in_flight_and_log_survives_restart():
    svc = Service().start()
    results = []

    def client(i):
        st, d, _ = svc.gate(event("OPP-TERM-%d" % i))
        results.append((st, d))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(st == 200 for st, _ in results)
    rc = svc.stop(signal.SIGTERM)
    assert rc == 0, svc.stderr()
    svc.start()
    try:
        for st, d in results:
            st2, got, _ = svc.get("/v1/decisions/" + d["decision_id"])
            assert st2 == 200 and got["outcome"] == d["outcome"]
    finally:
        svc.stop()


def test_open_auth_only_on_loopback():
    svc = Service()
    text = open(svc.config).read()
    with open(svc.config, "w") as f:
        f.write(text.replace("[auth]\n", "[auth]\nopen = yes\n").replace(
            "listen = 127.0.0.1", "listen = 0.0.0.0"))
    rc, out, errout = run_cli("check-config", "-c", svc.config)
    assert rc == 1 and "open" in errout, errout


def test_serve_refuses_bad_config_and_unusable_data_dir():
    svc = Service()
    with open(svc.config, "a") as f:
        f.write("\n[server]\n")
    rc, _, errout = run_cli("serve", "-c", svc.config)
    assert rc == 1 and svc.config in errout


if __name__ == "__main__":
    dgtest.run([v for k, v in sorted(globals().items()) if k.startswith("test_")])
