"""dgtest — start the real dealgate binary on loopback with a generated config and drive it
like a CRM would. Stdlib only. Every test file imports this and calls run(tests)."""
import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback

BIN = os.environ.get("DEALGATE_BIN", "build/dealgate")
SRC = os.environ.get("DG_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
WEBHOOK = "whk-test-token-0123456789"
READER = "rdr-test-token-0123456789"
COMP = "cmp-test-token-0123456789"
DESK = "dsk-test-token-0123456789"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


REGISTRATIONS = """cloud,registration_id,crm_opportunity_id,status,created_at,origin
aws,O1000001,OPP-APPROVED,Approved,2026-10-01T09:00:00Z,partner
aws,O1000002,OPP-REJECTED,Rejected,2026-10-02T09:00:00Z,partner
aws,O1000003,OPP-OTHER,Approved,2026-10-03T09:00:00Z,cloud
aws,O1000004,,Submitted,2026-10-04T09:00:00Z,partner
aws,O1000005,OPP-BYCRM,In review,2026-10-05T09:00:00Z,cloud
azure,ref-az-1,OPP-AZ,Accepted,2026-10-06T09:00:00Z,partner
azure,ref-az-2,OPP-AZ-LOST,Declined,2026-10-07T09:00:00Z,partner
"""

BASE_CONFIG = """
[server]
listen = 127.0.0.1:{port}
threads = 8
max_body = 64k
request_timeout_ms = 3000
decision_budget_ms = 1500
data_dir = {data}
currency = USD

[auth]
webhook_tokens = {webhook}
reader_tokens = {reader}
comp_reader_tokens = {comp}
desk_tokens = {desk}

[pipeline]
stages = Prospecting, Qualification, Demo, Proposal, Negotiation, Closed Won, Closed Lost
won = Closed Won
lost = Closed Lost
unknown_stage = block
alias.appointmentscheduled = Prospecting
alias.qualifiedtobuy = Qualification
alias.presentationscheduled = Demo
alias.decisionmakerboughtin = Proposal
alias.contractsent = Negotiation
alias.closedwon = Closed Won
alias.closedlost = Closed Lost

[rule:demo-needs-registration]
type = registration
stage = Demo
clouds = deal
accept.aws = Submitted, In review, Approved
accept.azure = Accepted, Won
message = Register this deal in {{cloud_name}} before moving to {{stage}}.

[cloud:aws]
name = AWS ACE
connector = file
path = {regs}

[cloud:azure]
name = Microsoft Partner Center
connector = file
path = {regs}
"""


class Service:
    """One dealgate process with its own data dir and config."""

    def __init__(self, config=None, extra="", registrations=REGISTRATIONS, env=None):
        self.dir = tempfile.mkdtemp(prefix="dgbb-")
        self.port = free_port()
        self.data = os.path.join(self.dir, "var")
        self.regs = os.path.join(self.dir, "registrations.csv")
        with open(self.regs, "w") as f:
            f.write(registrations)
        text = (config or BASE_CONFIG).format(port=self.port, data=self.data, regs=self.regs,
                                              webhook=WEBHOOK, reader=READER, comp=COMP, desk=DESK)
        self.config = os.path.join(self.dir, "dealgate.ini")
        with open(self.config, "w") as f:
            f.write(textwrap.dedent(text) + textwrap.dedent(extra))
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.log_path = os.path.join(self.dir, "stderr.log")

    def write_config(self, text):
        with open(self.config, "w") as f:
            f.write(textwrap.dedent(text.format(port=self.port, data=self.data, regs=self.regs,
                                                webhook=WEBHOOK, reader=READER, comp=COMP, desk=DESK)))

    def start(self, wait=True):
        self.listened = self.stderr().count('"event":"listening"')
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([BIN, "serve", "-c", self.config], stdout=self.log,
                                     stderr=self.log, cwd=self.dir, env=self.env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("dealgate exited with %s:\n%s" % (self.proc.returncode, self.stderr()))
            # Only this process's answer counts: it logs "listening" once it holds the port (a
            # port another test took in between would otherwise answer for it).
            if self.stderr().count('"event":"listening"') > self.listened:
                try:
                    st, _, _ = self.request("GET", "/healthz")
                    if st == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.05)
        raise AssertionError("dealgate did not become ready:\n" + self.stderr())

    def stderr(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("dealgate did not stop on %s" % sig)
        if self.proc:
            self.log.close()
            self.check_sanitizers()
        return self.proc.returncode if self.proc else None

    def check_sanitizers(self):
        """Under the ASan+UBSan build (make test-asan: detect_leaks=1) a leak is reported only
        when the process exits, on its stderr, which no request sees: any sanitizer report
        there fails the test that stopped the service."""
        text = self.stderr()
        for mark in ("ERROR: LeakSanitizer", "ERROR: AddressSanitizer", ": runtime error: "):
            i = text.find(mark)
            if i >= 0:
                raise AssertionError("dealgate under the sanitizers reported:\n" + text[i:i + 4000])

    def request(self, method, path, body=None, headers=None, token=None, ctype="application/json",
                timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        if body is not None:
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body)
            if isinstance(body, str):
                body = body.encode()
            if ctype:
                h.setdefault("Content-Type", ctype)
        conn.request(method, path, body=body, headers=h)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = data
        return resp.status, parsed, dict((k.lower(), v) for k, v in resp.getheaders())

    def gate(self, event, token=WEBHOOK, **kw):
        return self.request("POST", "/v1/gate/stage", event, token=token, **kw)

    def get(self, path, token=READER, **kw):
        return self.request("GET", path, token=token, **kw)


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def event(opp="OPP-APPROVED", to="Demo", frm="Qualification", clouds=("aws",), regs=None, **opp_fields):
    o = {"id": opp, "clouds": list(clouds)}
    if regs is not None:
        o["registrations"] = regs
    o.update(opp_fields)
    e = {"opportunity": o, "to_stage": to}
    if frm is not None:
        e["from_stage"] = frm
    return e


def codes(decision, key="reasons"):
    return [r["code"] for r in decision[key]]


def run(tests):
    """Runs test functions; prints 'N passed, N failed'; exits non-zero on failure."""
    passed = failed = 0
    only = sys.argv[1:]
    for t in tests:
        if only and t.__name__ not in only:
            continue
        t0 = time.time()
        try:
            t()
            passed += 1
            print("ok   %-50s %.2fs" % (t.__name__, time.time() - t0), flush=True)
        except Exception:
            failed += 1
            print("FAIL %s" % t.__name__, flush=True)
            traceback.print_exc()
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


class Fake:
    """A fake upstream from tests/fakes, on a loopback port it prints on stdout line 1."""

    def __init__(self, script, *args):
        path = os.path.join(SRC, "tests", "fakes", script)
        self.proc = subprocess.Popen(["/usr/bin/python3", path] + list(args), stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=dict(os.environ))
        line = self.proc.stdout.readline().decode().strip()
        if not line.isdigit():
            self.proc.kill()
            raise AssertionError("%s did not start: %r" % (script, line))
        self.port = int(line)
        self.url = "http://127.0.0.1:%d" % self.port

    def ctl(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        out = json.loads(resp.read() or b"null")
        conn.close()
        return out

    def calls(self):
        return self.ctl("GET", "/__calls")

    def behave(self, **b):
        return self.ctl("POST", "/__behave", b)

    def reset(self):
        return self.ctl("POST", "/__reset", {})

    def stop(self):
        self.proc.kill()
        self.proc.wait()
