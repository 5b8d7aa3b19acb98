"""Black-box: the shipped deploy/nginx.conf in front of dealgate, on loopback, over https.

Starts Debian's nginx (nginx-light, installed by scripts/deps.sh test) as a child process with
a copy of deploy/nginx.conf whose ports, certificate and file paths point into a temp dir (a
self-signed certificate made with openssl), then runs a signed HubSpot call and a Salesforce
call through it, and checks what the proxy adds: JSON errors for bodies over the limit and an
unreachable dealgate, X-Forwarded-* for the OpenAPI servers entry, and that slow clients are
held by nginx, not by civetweb's worker threads."""
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

import dgtest
from dgtest import Service, SRC, WEBHOOK, free_port

SECRET = "hs-nginx-secret-0123456789"
svc = None
ngx = None
tmp = None
https_port = None


def find_nginx():
    for p in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if p and os.access(p, os.X_OK):
            return p
    raise AssertionError("nginx is not installed (scripts/deps.sh test installs nginx-light)")


def make_cert(d):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", os.path.join(d, "privkey.pem"),
                    "-out", os.path.join(d, "fullchain.pem")],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def nginx_conf(d, http_port, tls_port, upstream_port):
    """deploy/nginx.conf with ports and paths moved into d; everything else as shipped."""
    with open(os.path.join(SRC, "deploy", "nginx.conf")) as f:
        text = f.read()
    subs = [
        (r"pid /run/nginx\.pid;", "pid %s/nginx.pid;" % d),
        (r"error_log /var/log/nginx/error\.log", "error_log %s/error.log" % d),
        (r"access_log /var/log/nginx/access\.log", "access_log %s/access.log" % d),
        (r"server 127\.0\.0\.1:8080;", "server 127.0.0.1:%d;" % upstream_port),
        (r"listen 80;", "listen 127.0.0.1:%d;" % http_port),
        (r"listen \[::\]:80;\n", ""),
        (r"listen 443 ssl;", "listen 127.0.0.1:%d ssl;" % tls_port),
        (r"listen \[::\]:443 ssl;\n", ""),
        (r"/etc/nginx/tls/", d + "/"),
        (r"worker_processes auto;", "worker_processes 1;"),
        (r"worker_connections 4096;", "worker_connections 256;"),
    ]
    for pat, rep in subs:
        text, n = re.subn(pat, rep, text)
        assert n >= 1, "deploy/nginx.conf no longer has " + pat
    temp = "".join("    %s_temp_path %s/%s;\n" % (k, d, k)
                   for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    text = text.replace("http {\n", "http {\n" + temp, 1)
    path = os.path.join(d, "nginx.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def setup():
    global svc, ngx, tmp, https_port
    nginx = find_nginx()
    tmp = tempfile.mkdtemp(prefix="dgnginx-")
    os.chmod(tmp, 0o755)  # nginx workers run as nobody when started as root
    make_cert(tmp)
    https_port, http_port = free_port(), free_port()
    svc = Service(extra="""
        [salesforce]
        cloud.AWS = aws

        [hubspot]
        client_secret = %s
        public_url = https://127.0.0.1:%d
        property.clouds = cloud_programs
        """ % (SECRET, https_port)).start()
    conf = nginx_conf(tmp, http_port, https_port, svc.port)
    ngx = subprocess.Popen([nginx, "-p", tmp, "-c", conf, "-e", os.path.join(tmp, "error.log"),
                            "-g", "daemon off;"],
                           stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "stderr.log"), "wb"))
    deadline = time.time() + 10
    while time.time() < deadline:
        if ngx.poll() is not None:
            raise AssertionError("nginx exited: " + open(os.path.join(tmp, "stderr.log")).read() +
                                 open(os.path.join(tmp, "error.log")).read())
        try:
            socket.create_connection(("127.0.0.1", https_port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nginx did not start")


def https(method, path, body=None, headers=None, timeout=10):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # self-signed, made for this test
    conn = http.client.HTTPSConnection("127.0.0.1", https_port, timeout=timeout, context=ctx)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, (json.loads(data) if data else None), {k.lower(): v for k, v in r.getheaders()}


def test_signed_hubspot_call_through_tls():
    body = json.dumps({"callbackId": "ap-nginx-1", "object": {
        "objectId": 777, "objectType": "DEAL",
        "properties": {"dealstage": "presentationscheduled", "cloud_programs": "aws"}}})
    path = "/v1/gate/hubspot?via=nginx"
    uri = "https://127.0.0.1:%d%s" % (https_port, path)
    sig = hashlib.sha256((SECRET + "POST" + uri + body).encode()).hexdigest()
    st, r, h = https("POST", path, body, {"X-HubSpot-Signature": sig,
                                          "X-HubSpot-Signature-Version": "v2"})
    assert st == 200, (st, r)
    assert r["outputFields"]["allowed"] == "false" and r["outputFields"]["revertTo"] == "qualifiedtobuy"
    assert "strict-transport-security" in h
    st, r, _ = https("POST", path, body.replace("777", "778"),
                     {"X-HubSpot-Signature": sig, "X-HubSpot-Signature-Version": "v2"})
    assert st == 401, r


def test_salesforce_call_through_tls():
    body = json.dumps({"opportunityId": "OPP-APPROVED", "stageName": "Demo",
                       "priorStageName": "Qualification", "cloudPrograms": "AWS"})
    st, r, _ = https("POST", "/v1/gate/salesforce", body, {"Authorization": "Bearer " + WEBHOOK})
    assert st == 200 and r["allowed"] is True, r


def test_openapi_servers_entry_is_the_public_https_url():
    st, doc, _ = https("GET", "/openapi.json?only=salesforce")
    assert st == 200
    assert doc["servers"] == [{"url": "https://127.0.0.1:%d" % https_port}], doc["servers"]


def test_body_over_the_limit_is_a_json_413_from_nginx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", https_port, timeout=10, context=ctx)
    conn.putrequest("POST", "/v1/gate/salesforce")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(2 * 1024 * 1024))
    conn.endheaders()  # nginx refuses on the header alone
    r = conn.getresponse()
    data = json.loads(r.read())
    conn.close()
    assert r.status == 413 and data["error"]["code"] == "payload_too_large", data


def test_slow_clients_do_not_tie_up_dealgate_threads():
    # more stalled uploads than dealgate has worker threads (threads = 8)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    slow = []
    for _ in range(12):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", https_port), timeout=5))
        s.sendall(b"POST /v1/gate/stage HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 500\r\n\r\n{\"opportunity\":")
        slow.append(s)
    try:
        t0 = time.time()
        body = json.dumps({"opportunityId": "OPP-APPROVED", "stageName": "Demo",
                           "cloudPrograms": "AWS"})
        st, r, _ = https("POST", "/v1/gate/salesforce", body, {"Authorization": "Bearer " + WEBHOOK},
                         timeout=5)
        assert st == 200 and time.time() - t0 < 2, (st, time.time() - t0)
        # and straight to dealgate the same number of stalled requests would have filled it
    finally:
        for s in slow:
            s.close()


def test_unreachable_dealgate_is_a_json_503_with_retry_after():
    svc.stop()
    st, r, h = https("POST", "/v1/gate/salesforce", "{}", {"Authorization": "Bearer " + WEBHOOK})
    assert st == 503 and r["error"]["code"] == "unavailable", (st, r)
    assert h.get("retry-after") == "5"
    svc.start()


def teardown():
    if ngx and ngx.poll() is None:
        ngx.send_signal(signal.SIGQUIT)
        try:
            ngx.wait(10)
        except subprocess.TimeoutExpired:
            ngx.kill()
            ngx.wait()
    if svc:
        svc.stop()
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        setup()
        dgtest.run([
            test_signed_hubspot_call_through_tls,
            test_salesforce_call_through_tls,
            test_openapi_servers_entry_is_the_public_https_url,
            test_body_over_the_limit_is_a_json_413_from_nginx,
            test_slow_clients_do_not_tie_up_dealgate_threads,
            test_unreachable_dealgate_is_a_json_503_with_retry_after,
        ])
    finally:
        teardown()
