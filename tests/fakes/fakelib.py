"""fakelib.py - shared plumbing for dealgate's loopback fake upstreams (stdlib only).

Every fake is a ThreadingHTTPServer bound to 127.0.0.1 on port 0 that prints its port on
stdout line 1 and serves until killed. HTTP/1.1 keep-alive, a Content-Length on every
answer. Paths starting with /__ are the test's control surface, never part of the faked API:

  GET  /__calls     {"total": n, "<key>": n, ...}  calls counted by the fake (per operation,
                    per operation:id, rejected signatures, token grants ...; "connections"
                    counts accepted TCP connections, without adding to the total)
  GET  /__last      the fake's `last` dict (decoded parts of its last request), if it has one
  GET  /__timings   {"us": [...]}  the fake's own time for each API call, microseconds: from
                    its request line read to its answer flushed (delays included)
  POST /__reset     zero the counters and timings, drop behaviours
  POST /__behave    {"key": K, "delay_ms": n, "status": s, "error_type": "...",
                     "malformed": true, "huge": true, "times": n}  makes the API misbehave
                    (delay, error answer, broken JSON, a 5 MiB body) for calls whose key
                    (an id, an operation name, or "*" for all) matches; "times" limits how
                    many calls it hits (default: all). Per-fake keys are documented there.
  POST /__delay     {"delay_ms": n}  delays every API call
  POST /__data      fake-specific: add or replace records

The CRM fakes (fake_salesforce.py, fake_hubspot.py) run inside the black-box test's own
process instead: an InProcessFake serves its InProcessHandler subclass on 127.0.0.1:0 in a
daemon thread, and the test reads and sets the fake's attributes directly (updates, reads,
fail_updates ...) under its lock.
"""

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1 << 20


class FakeState:
    def __init__(self):
        self.lock = threading.Lock()
        self.calls = {"total": 0}
        self.timings = []
        self.behaviours = []  # list of dicts with "key"
        self.delay_ms = 0  # every API call

    def count(self, *keys):
        with self.lock:
            self.calls["total"] += 1
            for k in keys:
                self.calls[k] = self.calls.get(k, 0) + 1

    def bump(self, key):
        """Counts key without touching the total."""
        with self.lock:
            self.calls[key] = self.calls.get(key, 0) + 1

    def behaviour(self, *keys):
        """The first behaviour matching one of keys (or "*"), consuming one of its times."""
        with self.lock:
            for b in self.behaviours:
                if b["key"] in keys or b["key"] == "*":
                    if "times" in b:
                        if b["times"] <= 0:
                            continue
                        b["times"] -= 1
                    return dict(b)
        return None

    def reset(self):
        with self.lock:
            self.calls = {"total": 0}
            self.timings = []
            self.behaviours = []


class FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    server_version = "fake"
    sys_version = ""
    state = None  # set by serve()

    def log_message(self, fmt, *args):
        if os.environ.get("FAKE_VERBOSE"):
            sys.stderr.write("fake: " + (fmt % args) + "\n")

    # -- helpers -----------------------------------------------------------------------------
    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n) if n else b""

    def send_raw(self, status, body, ctype="application/json", headers=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def send_json(self, status, obj, headers=None):
        self.send_raw(status, json.dumps(obj), headers=headers)

    def apply_behaviour(self, b):
        """Applies the delay of behaviour b; answers and returns True if b decides the
        response (status / malformed), else False."""
        if not b:
            return False
        if b.get("delay_ms"):
            time.sleep(b["delay_ms"] / 1000.0)
        if b.get("malformed"):
            self.send_raw(200, b'{"this is": not json')
            return True
        if b.get("huge"):  # a 5 MiB answer, over any client's sane cap
            self.send_raw(200, b'{"pad": "' + b"a" * (5 << 20) + b'"}')
            return True
        if b.get("status"):
            self.send_error_response(int(b["status"]), b.get("error_type"), b.get("message"))
            return True
        return False

    def send_error_response(self, status, error_type, message):
        """Per-fake error shape; overridden."""
        self.send_json(status, {"error": error_type or "error", "message": message or ""})

    # -- dispatch ----------------------------------------------------------------------------
    def setup(self):
        super().setup()
        if self.state is not None:
            self.state.bump("connections")  # TCP connections accepted (keep-alive reuse)

    def parse_request(self):
        # the request line has just been read: the upstream's own time starts here
        self._t0 = time.perf_counter()
        return super().parse_request()

    def _dispatch(self, method):
        st = self.state
        if self.path.startswith("/__"):
            return self.control(method)
        t0 = getattr(self, "_t0", None) or time.perf_counter()
        if st.delay_ms:
            time.sleep(st.delay_ms / 1000.0)
        try:
            self.handle_api(method)
        except (BrokenPipeError, ConnectionResetError):
            return
        except ValueError as e:
            self.send_json(400, {"error": "bad_request", "message": str(e)})
        with st.lock:
            st.timings.append(int((time.perf_counter() - t0) * 1e6))

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def control(self, method):
        st = self.state
        path = self.path
        if method == "GET" and path == "/__calls":
            with st.lock:
                return self.send_json(200, dict(st.calls))
        if method == "GET" and path == "/__last" and hasattr(st, "last"):
            with st.lock:  # a fake's dict of the last decoded request parts
                return self.send_json(200, dict(st.last))
        if method == "GET" and path == "/__timings":
            with st.lock:
                return self.send_json(200, {"us": list(st.timings)})
        body = self.read_body()
        if method == "POST" and path == "/__reset":
            st.reset()
            return self.send_json(200, {"ok": True})
        if method == "POST" and path == "/__behave":
            b = json.loads(body or b"{}")
            b.setdefault("key", "*")
            with st.lock:
                st.behaviours.append(b)
            return self.send_json(200, {"ok": True})
        if method == "POST" and path == "/__delay":
            st.delay_ms = int(json.loads(body or b"{}").get("delay_ms", 0))
            return self.send_json(200, {"ok": True})
        handled = self.control_extra(method, path, body)
        if handled is None:
            self.send_json(404, {"error": "no such control"})

    def control_extra(self, method, path, body):
        return None

    def handle_api(self, method):
        raise NotImplementedError


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        """A client closing its keep-alive connection is normal here; anything else is not."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionResetError, BrokenPipeError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def serve(handler_cls, state):
    """Binds 127.0.0.1:0, prints the port, serves until SIGTERM/SIGINT."""
    handler_cls.state = state
    srv = QuietServer(("127.0.0.1", 0), handler_cls)

    def stop(signum, frame):
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stdout.write("%d\n" % srv.server_address[1])
    sys.stdout.flush()
    srv.serve_forever(poll_interval=0.2)


def deep_merge(base, over):
    """Returns base with over merged in (dicts recursively, everything else replaced)."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


# ---- in-process fakes (the CRM fakes) -----------------------------------------------------


class InProcessHandler(BaseHTTPRequestHandler):
    """Base of an in-process fake's handler: quiet, JSON answers with a Content-Length."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _send(self, status, obj=None):
        """Answers obj as JSON, or an empty body when obj is None."""
        body = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        if obj is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""


class InProcessFake:
    """A fake upstream served from a daemon thread of the test process.

    Subclasses build their handler class in start() and return self._serve(handler, port).
    Every update is recorded in self.updates as (id, fields, how) under self.lock; `reads`
    counts reads; `fail_updates = N` is for the subclass to answer the next N updates with
    a server error."""

    def __init__(self):
        self.updates = []  # (id, fields, how) in arrival order
        self.reads = 0
        self.fail_updates = 0
        self.lock = threading.Lock()
        self.server = None

    def _serve(self, handler_cls, port):
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler_cls)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def updates_for(self, key):
        """The fields of every update of record key, oldest first."""
        with self.lock:
            return [f for (i, f, _) in self.updates if i == key]

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
