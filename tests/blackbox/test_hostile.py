"""Black-box: a table of malformed and hostile requests against the real service.

Every row is one request written byte by byte on a raw socket (so anything can be sent:
NUL bytes, broken framing, bare LF, lying Content-Length) and the answer it must get: the
documented 4xx with its error code when dealgate itself answers, or the 4xx civetweb gives
for requests that never reach a handler (marked `civetweb`). No row may get a 5xx, except
the one status HTTP itself prescribes (505 for an HTTP version civetweb does not speak,
which nginx in front answers the same way), and after the whole table the service is
alive, healthy, still decides correctly, and its access log holds no 5xx.

Rows come in groups: JSON bodies, numbers, encodings, content types, sizes and framing,
paths, query strings, methods, authentication of every kind, HubSpot signatures, CRM
adapter bodies, commission intake, protocol junk. Regression rows for bugs the fuzzers
found are marked with the finding."""
import base64
import json
import socket
import time

import dgtest
from dgtest import Service, WEBHOOK, READER, COMP

svc = None
SECRET = "hs-hostile-secret-0123456789"


def req(method, path, body=b"", headers=None, token=WEBHOOK, ctype="application/json",
        version="HTTP/1.1", length=True):
    """Raw request bytes. headers: list of (name, value) bytes/str pairs, sent as given."""
    if isinstance(body, str):
        body = body.encode()
    if isinstance(path, str):
        path = path.encode()
    h = [(b"Host", b"127.0.0.1")]
    if token is not None:
        h.append((b"Authorization", b"Bearer " + token.encode()))
    if ctype is not None and method in ("POST", "PUT"):
        h.append((b"Content-Type", ctype.encode()))
    for k, v in headers or []:
        h.append((k.encode() if isinstance(k, str) else k, v.encode() if isinstance(v, str) else v))
    if length and method in ("POST", "PUT"):
        h.append((b"Content-Length", str(len(body)).encode()))
    head = method.encode() + b" " + path + b" " + version.encode() + b"\r\n"
    head += b"".join(k + b": " + v + b"\r\n" for k, v in h)
    return head + b"\r\n" + body


def exchange(data, shut=False, head=False, timeout=10):
    """Sends data, reads one response. Returns (status or None if closed without one,
    headers dict, body bytes)."""
    s = socket.create_connection(("127.0.0.1", svc.port), timeout=timeout)
    try:
        try:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer (and close) before it read everything
        buf = b""
        while b"\r\n\r\n" not in buf:
            try:
                d = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                d = b""
            if not d:
                break
            buf += d
        if b"\r\n\r\n" not in buf:
            return None, {}, buf
        top, _, body = buf.partition(b"\r\n\r\n")
        lines = top.split(b"\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for l in lines[1:]:
            k, _, v = l.partition(b":")
            hdrs[k.strip().lower().decode()] = v.strip().decode("latin-1")
        n = int(hdrs.get("content-length", "0") or 0) if not head else 0
        while len(body) < n:
            try:
                d = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not d:
                break
            body += d
        return status, hdrs, body
    finally:
        s.close()


def hs_v3(body, path="/v1/gate/hubspot", ts=None):
    import hashlib
    import hmac
    ts = ts if ts is not None else str(int(time.time() * 1000))
    uri = "https://127.0.0.1%s" % path
    mac = hmac.new(SECRET.encode(), ("POST" + uri + body + ts).encode(), hashlib.sha256).digest()
    return [("X-HubSpot-Signature-v3", base64.b64encode(mac).decode()),
            ("X-HubSpot-Request-Timestamp", ts)]


EV = '{"opportunity": {"id": "OPP-H", "clouds": ["aws"]}, "to_stage": "Demo"}'
CSV_HDR = "deal_id,channel,acv,commission\n"

# (name, request bytes, expected status, expected error code or None, options)
# options: "civetweb" (answered before dealgate: no JSON body checked), "closed_ok" (closing
# without an answer is acceptable), "shut" (half-close after sending), "head" (no body).
ROWS = [
    # --- JSON structure ----------------------------------------------------------------------
    ("truncated object", req("POST", "/v1/gate/stage", '{"opportunity": {"id": "x"'), 400, "invalid_json"),
    ("truncated in a string", req("POST", "/v1/gate/stage", '{"opportunity": {"id": "x'), 400, "invalid_json"),
    ("truncated after a key", req("POST", "/v1/gate/stage", '{"opportunity":'), 400, "invalid_json"),
    ("empty body", req("POST", "/v1/gate/stage", ""), 400, "invalid_json"),
    ("only white space", req("POST", "/v1/gate/stage", " \r\n\t "), 400, "invalid_json"),
    ("JSON null", req("POST", "/v1/gate/stage", "null"), 422, "invalid_field"),
    ("JSON string", req("POST", "/v1/gate/stage", '"Demo"'), 422, "invalid_field"),
    ("JSON number", req("POST", "/v1/gate/stage", "42"), 422, "invalid_field"),
    ("JSON array", req("POST", "/v1/gate/stage", "[" + EV + "]"), 422, "invalid_field"),
    ("nested arrays 100 deep", req("POST", "/v1/gate/stage", "[" * 100 + "]" * 100), 422, "invalid_field"),
    ("nested objects 5000 deep", req("POST", "/v1/gate/stage", '{"a":' * 5000 + "1" + "}" * 5000), 422, "invalid_field"),
    ("nesting 60000 deep, unclosed", req("POST", "/v1/gate/stage", "[" * 60000), 422, "invalid_field"),
    ("nested 64 deep inside the event", req("POST", "/v1/gate/stage", '{"opportunity": {"id": "x", "name": ' + "[" * 70 + "]" * 70 + '}, "to_stage": "Demo"}'), 422, "invalid_field"),
    ("trailing garbage", req("POST", "/v1/gate/stage", EV + " x"), 400, "invalid_json"),
    ("two documents", req("POST", "/v1/gate/stage", EV + EV), 400, "invalid_json"),
    ("comment", req("POST", "/v1/gate/stage", "// hi\n" + EV), 400, "invalid_json"),
    ("single quotes", req("POST", "/v1/gate/stage", "{'opportunity': {'id': 'x'}, 'to_stage': 'Demo'}"), 400, "invalid_json"),
    ("unquoted keys", req("POST", "/v1/gate/stage", '{opportunity: {"id": "x"}, "to_stage": "Demo"}'), 400, "invalid_json"),
    ("trailing comma", req("POST", "/v1/gate/stage", '{"opportunity": {"id": "x"}, "to_stage": "Demo",}'), 400, "invalid_json"),
    ("raw control character in a string (cJSON took it)", req("POST", "/v1/gate/stage", '{"opportunity": {"id": "a\x07b"}, "to_stage": "Demo"}'), 400, "invalid_json"),
    ("raw newline in a string (cJSON took it)", req("POST", "/v1/gate/stage", '{"opportunity": {"id": "a\nb"}, "to_stage": "Demo"}'), 400, "invalid_json"),
    ("duplicate key, top level", req("POST", "/v1/gate/stage", '{"to_stage": "Lost", "opportunity": {"id": "x"}, "to_stage": "Demo"}'), 422, "invalid_field"),
    ("duplicate key, nested", req("POST", "/v1/gate/stage", '{"opportunity": {"id": "a", "id": "b"}, "to_stage": "Demo"}'), 422, "invalid_field"),
    ("duplicate key spelled with an escape", req("POST", "/v1/gate/stage", '{"opportunity": {"id": "a", "\\u0069d": "b"}, "to_stage": "Demo"}'), 422, "invalid_field"),
    ("duplicate registration cloud", req("POST", "/v1/gate/stage", '{"opportunity": {"id": "a", "registrations": {"aws": "O1", "aws": "O2"}}, "to_stage": "Demo"}'), 422, "invalid_field"),
    # --- numbers -------------------------------------------------------------------------------
    ("amount 1e400 (infinite as a double)", req("POST", "/v1/gate/stage", '{"opportunity": {"id": "x", "amount": 1e400}, "to_stage": "Demo"}'), 422, "invalid_field"),
    ("amount -1e308", req("POST", "/v1/gate/stage", '{"opportunity": {"id": "x", "amount": -1e308}, "to_stage": "Demo"}'), 422, "invalid_field"),
    ("amount 1e15 as a number", req("POST", "/v1/gate/stage", '{"opportunity": {"id": "x", "amount": 1e15}, "to_stage": "Demo"}'), 422, "invalid_field"),
    ("amount with 400 digits as a string", req("POST", "/v1/gate/stage", '{"opportunity": {"id": "x", "amount": "' + "9" * 400 + '"}, "to_stage": "Demo"}'), 422, "invalid_field"),
    ("amount 0.001 as a number (below a cent)", req("POST", "/v1/gate/stage", '{"opportunity": {"id": "x", "amount": 0.001}, "to_stage": "Demo"}'), 422, "invalid_field"),
    ("number -.5 (cJSON took it)", req("POST", "/v1/gate/stage", '{"opportunity": {"id": "x", "amount": -.5}, "to_stage": "Demo"}'), 400, "invalid_json"),
    ("NaN literal", req("POST", "/v1/gate/stage", '{"opportunity": {"id": "x", "amount": NaN}, "to_stage": "Demo"}'), 400, "invalid_json"),
    ("leading zeros (cJSON took 0123 as 123)", req("POST", "/v1/gate/stage", '{"opportunity": {"id": "x", "amount": 0123}, "to_stage": "Demo"}'), 400, "invalid_json"),
    ("a number where a stage goes", req("POST", "/v1/gate/stage", '{"opportunity": {"id": "x"}, "to_stage": 1e99999}'), 422, "invalid_field"),
    ("id as a number", req("POST", "/v1/gate/stage", '{"opportunity": {"id": 6}, "to_stage": "Demo"}'), 422, "invalid_field"),
    # --- encodings -----------------------------------------------------------------------------
    ("raw NUL byte in a string", req("POST", "/v1/gate/stage", b'{"opportunity": {"id": "a\x00b"}, "to_stage": "Demo"}'), 422, "invalid_field"),
    ("NUL byte after the document", req("POST", "/v1/gate/stage", EV.encode() + b"\x00"), 422, "invalid_field"),
    ("\\u0000 escape", req("POST", "/v1/gate/stage", '{"opportunity": {"id": "a\\u0000b"}, "to_stage": "Demo"}'), 422, "invalid_field"),
    ("invalid UTF-8 byte", req("POST", "/v1/gate/stage", b'{"opportunity": {"id": "a\xffb"}, "to_stage": "Demo"}'), 422, "invalid_field"),
    ("overlong UTF-8 slash", req("POST", "/v1/gate/stage", b'{"opportunity": {"id": "a\xc0\xafb"}, "to_stage": "Demo"}'), 422, "invalid_field"),
    ("UTF-8 encoded surrogate", req("POST", "/v1/gate/stage", b'{"opportunity": {"id": "a\xed\xa0\x80"}, "to_stage": "Demo"}'), 422, "invalid_field"),
    ("truncated UTF-8 at the end", req("POST", "/v1/gate/stage", b'{"opportunity": {"id": "x"}, "to_stage": "Dem\xc3'), 422, "invalid_field"),
    ("lone surrogate escape", req("POST", "/v1/gate/stage", '{"opportunity": {"id": "a\\ud800"}, "to_stage": "Demo"}'), 400, "invalid_json"),
    ("UTF-16 body", req("POST", "/v1/gate/stage", EV.encode("utf-16")), 422, "invalid_field"),
    ("control character in an id", req("POST", "/v1/gate/stage", '{"opportunity": {"id": "a\\u001bb"}, "to_stage": "Demo"}'), 422, "invalid_field"),
    ("id of 129 characters", req("POST", "/v1/gate/stage", '{"opportunity": {"id": "' + "x" * 129 + '"}, "to_stage": "Demo"}'), 422, "invalid_field"),
    ("stage of 60000 characters", req("POST", "/v1/gate/stage", '{"opportunity": {"id": "x"}, "to_stage": "' + "D" * 60000 + '"}'), 422, "invalid_field"),
    ("unknown cloud named in 2-byte characters (a cut one made the 422 invalid UTF-8)", req("POST", "/v1/gate/stage", '{"opportunity": {"id": "x", "clouds": ["a' + "\u00e9" * 40 + '"]}, "to_stage": "Demo"}'), 422, "invalid_field"),
    ("duplicate key of 400 bytes of 2-byte characters", req("POST", "/v1/gate/stage", '{"opportunity": {"id": "x", "a' + "\u00e9" * 200 + '": 1, "a' + "\u00e9" * 200 + '": 2}, "to_stage": "Demo"}'), 422, "invalid_field"),
    ("10000 unknown clouds", req("POST", "/v1/gate/stage", '{"opportunity": {"id": "x", "clouds": [' + ",".join(['"c%d"' % i for i in range(5000)]) + ']}, "to_stage": "Demo"}'), 422, "invalid_field"),
    # --- content types -------------------------------------------------------------------------
    ("text/plain", req("POST", "/v1/gate/stage", EV, ctype="text/plain"), 415, "unsupported_media_type"),
    ("no content type", req("POST", "/v1/gate/stage", EV, ctype=None), 415, "unsupported_media_type"),
    ("application/jsonx", req("POST", "/v1/gate/stage", EV, ctype="application/jsonx"), 415, "unsupported_media_type"),
    ("application/json-patch+json", req("POST", "/v1/gate/stage", EV, ctype="application/json-patch+json"), 415, "unsupported_media_type"),
    ("multipart/form-data", req("POST", "/v1/gate/stage", EV, ctype="multipart/form-data; boundary=x"), 415, "unsupported_media_type"),
    ("text/csv to the gate", req("POST", "/v1/gate/salesforce", EV, ctype="text/csv"), 415, "unsupported_media_type"),
    ("XML to the commission check", req("POST", "/v1/commission/check", "<x/>", ctype="application/xml"), 415, "unsupported_media_type"),
    # --- sizes and framing ---------------------------------------------------------------------
    ("body over max_body", req("POST", "/v1/gate/stage", '{"a": "' + "x" * 70000 + '"}'), 413, "payload_too_large"),
    ("Content-Length of a terabyte", req("POST", "/v1/gate/stage", "{}", length=False, headers=[("Content-Length", "1000000000000")]), 413, "payload_too_large"),
    ("chunked body over max_body", req("POST", "/v1/gate/stage", b"".join(b"4000\r\n" + b" " * 0x4000 + b"\r\n" for _ in range(6)) + b"0\r\n\r\n", length=False, headers=[("Transfer-Encoding", "chunked")]), 413, "payload_too_large"),
    ("chunked with a bad chunk size", req("POST", "/v1/gate/stage", "zz\r\n{}\r\n0\r\n\r\n", length=False, headers=[("Transfer-Encoding", "chunked")]), 400, None, "shut"),
    ("body shorter than Content-Length", req("POST", "/v1/gate/stage", "{}", length=False, headers=[("Content-Length", "100")]), 400, "invalid_body", "shut"),
    ("negative Content-Length", req("POST", "/v1/gate/stage", "{}", length=False, headers=[("Content-Length", "-1")]), 411, None, "civetweb"),
    ("Content-Length not a number", req("POST", "/v1/gate/stage", "{}", length=False, headers=[("Content-Length", "abc")]), 411, None, "civetweb"),
    ("header of 40 KiB", req("GET", "/healthz", token=None, headers=[("X-Big", "a" * 40000)]), 400, None, "civetweb"),
    ("request line of 20 KiB", req("GET", "/" + "a" * 20000, token=None), 400, None, "civetweb"),
    ("Authorization header of 15 KiB", req("GET", "/v1/decisions", token="a" * 15000), 401, "unauthorized"),
    # --- paths -----------------------------------------------------------------------------------
    ("dot segments cannot skip auth", req("GET", "/healthz/../v1/decisions", token=None), 401, "unauthorized"),
    ("%2e%2e cannot skip auth", req("GET", "/v1/gate/%2e%2e/decisions", token=None), 401, "unauthorized"),
    ("a reader token through ../ to a webhook route", req("POST", "/v1/decisions/../gate/stage", EV, token=READER), 401, "unauthorized"),
    ("double slash", req("GET", "//v1/decisions", token=None), 401, "unauthorized"),
    ("encoded slashes", req("GET", "/v1%2fdecisions", token=None), 401, "unauthorized"),
    ("trailing slash", req("POST", "/v1/gate/stage/", EV), 404, "not_found"),
    ("path of 8000 characters", req("GET", "/" + "a" * 8000, token=None), 404, "not_found"),
    ("decision id of 5000 characters", req("GET", "/v1/decisions/" + "x" * 5000, token=READER), 404, "not_found"),
    ("decision id with %00 and %ff", req("GET", "/v1/decisions/%00%ff", token=READER), 404, "not_found"),
    ("decision id ..%2f..%2fetc%2fpasswd", req("GET", "/v1/decisions/..%2f..%2fetc%2fpasswd", token=READER), 404, "not_found"),
    ("NUL byte in the path", req("GET", b"/v1/decisions\x00/x", token=READER), 400, None, "civetweb"),
    ("absolute-form target", req("GET", "http://evil.example/v1/decisions", token=READER), 400, None, "civetweb closed_ok"),
    # --- query strings -----------------------------------------------------------------------------
    ("limit of 23 digits", req("GET", "/v1/decisions?limit=99999999999999999999999", token=READER), 422, None),
    ("negative limit", req("GET", "/v1/decisions?limit=-1", token=READER), 422, None),
    ("cursor of garbage bytes", req("GET", "/v1/decisions?cursor=%ff%fe%00", token=READER), 422, None),
    ("since of a date that is none", req("GET", "/v1/decisions?since=9999-99-99", token=READER), 422, None),
    ("kpis for a cloud of 4 KiB", req("GET", "/v1/kpis?cloud=" + "z" * 4000, token=READER), 422, None),
    # --- methods -----------------------------------------------------------------------------------
    ("GET on a POST route", req("GET", "/v1/gate/stage"), 405, "method_not_allowed"),
    ("PUT on a POST route", req("PUT", "/v1/gate/stage", EV), 405, "method_not_allowed"),
    ("DELETE on a read route", req("DELETE", "/v1/decisions", token=READER), 405, "method_not_allowed"),
    ("DELETE on /v1/decisions/%ff (the 405 quotes the path)", req("DELETE", "/v1/decisions/%ff%c3", token=READER), 405, "method_not_allowed"),
    ("OPTIONS", req("OPTIONS", "/v1/gate/stage"), 405, "method_not_allowed"),
    ("HEAD on a POST route", req("HEAD", "/v1/gate/stage"), 405, None, "head"),
    ("unknown method", req("FOO", "/healthz", token=None), 400, None, "civetweb"),
    ("TRACE", req("TRACE", "/healthz", token=None), 400, None, "civetweb"),
    ("CONNECT", req("CONNECT", "127.0.0.1:22", token=None), 400, None, "civetweb"),
    # --- authentication ------------------------------------------------------------------------
    ("no Authorization", req("POST", "/v1/gate/stage", EV, token=None), 401, "unauthorized"),
    ("empty bearer", req("POST", "/v1/gate/stage", EV, token=None, headers=[("Authorization", "Bearer ")]), 401, "unauthorized"),
    ("Bearer without a space", req("POST", "/v1/gate/stage", EV, token=None, headers=[("Authorization", "Bearer" + WEBHOOK)]), 401, "unauthorized"),
    ("scheme only", req("POST", "/v1/gate/stage", EV, token=None, headers=[("Authorization", "Bearer")]), 401, "unauthorized"),
    ("wrong scheme", req("POST", "/v1/gate/stage", EV, token=None, headers=[("Authorization", "Token " + WEBHOOK)]), 401, "unauthorized"),
    ("token without a scheme", req("POST", "/v1/gate/stage", EV, token=None, headers=[("Authorization", WEBHOOK)]), 401, "unauthorized"),
    ("token with a trailing space", req("POST", "/v1/gate/stage", EV, token=WEBHOOK + " "), 401, "unauthorized"),
    ("token with inner spaces", req("POST", "/v1/gate/stage", EV, token=WEBHOOK[:5] + " " + WEBHOOK[5:]), 401, "unauthorized"),
    ("token with a NUL byte", req("POST", "/v1/gate/stage", EV, token=None, headers=[("Authorization", b"Bearer " + WEBHOOK.encode() + b"\x00x")]), 400, None, "civetweb"),
    ("token, one character short", req("POST", "/v1/gate/stage", EV, token=WEBHOOK[:-1]), 401, "unauthorized"),
    ("token, one character more", req("POST", "/v1/gate/stage", EV, token=WEBHOOK + "0"), 401, "unauthorized"),
    ("two tokens in one header", req("POST", "/v1/gate/stage", EV, token=None, headers=[("Authorization", "Bearer x, Bearer " + WEBHOOK)]), 401, "unauthorized"),
    ("first of two headers is wrong", req("POST", "/v1/gate/stage", EV, token=None, headers=[("Authorization", "Bearer nope"), ("Authorization", "Bearer " + WEBHOOK)]), 401, "unauthorized"),
    ("reader token on a webhook route", req("POST", "/v1/gate/stage", EV, token=READER), 401, "unauthorized"),
    ("webhook token on a reader route", req("GET", "/v1/decisions", token=WEBHOOK), 401, "unauthorized"),
    ("reader token on a comp route", req("GET", "/v1/commission/checks", token=READER), 401, "unauthorized"),
    ("Basic that is not base64", req("GET", "/v1/decisions", token=None, headers=[("Authorization", "Basic !!!%%%")]), 401, "unauthorized"),
    ("Basic without a colon", req("GET", "/v1/decisions", token=None, headers=[("Authorization", "Basic " + base64.b64encode(READER.encode()).decode())]), 401, "unauthorized"),
    ("Basic, empty", req("GET", "/v1/decisions", token=None, headers=[("Authorization", "Basic ")]), 401, "unauthorized"),
    ("Basic of 700 characters", req("GET", "/v1/decisions", token=None, headers=[("Authorization", "Basic " + base64.b64encode(b"u:" + b"p" * 520).decode())]), 401, "unauthorized"),
    ("Basic with the token and a NUL", req("GET", "/v1/decisions", token=None, headers=[("Authorization", "Basic " + base64.b64encode(b"u:" + READER.encode() + b"\x00").decode())]), 401, "unauthorized"),
    ("Basic with the token as user", req("GET", "/v1/decisions", token=None, headers=[("Authorization", "Basic " + base64.b64encode((READER + ":x").encode()).decode())]), 401, "unauthorized"),
    # --- HubSpot signatures ------------------------------------------------------------------
    ("HubSpot: nothing", req("POST", "/v1/gate/hubspot", "{}", token=None), 401, "unauthorized"),
    ("HubSpot: garbage v2 signature", req("POST", "/v1/gate/hubspot", "{}", token=None, headers=[("X-HubSpot-Signature", "zz" * 40)]), 401, "unauthorized"),
    ("HubSpot: empty v3 signature", req("POST", "/v1/gate/hubspot", "{}", token=None, headers=[("X-HubSpot-Signature-v3", ""), ("X-HubSpot-Request-Timestamp", "1")]), 401, "unauthorized"),
    ("HubSpot: v3 without a timestamp", req("POST", "/v1/gate/hubspot", "{}", token=None, headers=[("X-HubSpot-Signature-v3", "x")]), 401, "unauthorized"),
    ("HubSpot: v3 timestamp not a number", req("POST", "/v1/gate/hubspot", "{}", token=None, headers=hs_v3("{}", ts="12ab")), 401, "unauthorized"),
    ("HubSpot: v3 timestamp of 25 digits", req("POST", "/v1/gate/hubspot", "{}", token=None, headers=hs_v3("{}", ts="9" * 25)), 401, "unauthorized"),
    ("HubSpot: v3 timestamp an hour old", req("POST", "/v1/gate/hubspot", "{}", token=None, headers=hs_v3("{}", ts=str(int(time.time() * 1000) - 3600000))), 401, "unauthorized"),
    ("HubSpot: v3 over another body", req("POST", "/v1/gate/hubspot", '{"a":1}', token=None, headers=hs_v3("{}")), 401, "unauthorized"),
    ("HubSpot: version v1", req("POST", "/v1/gate/hubspot", "{}", token=None, headers=[("X-HubSpot-Signature", "a" * 64), ("X-HubSpot-Signature-Version", "v1")]), 401, "unauthorized"),
    # --- CRM adapters ------------------------------------------------------------------------
    ("Salesforce: id 1e999 (UBSan: inf cast to long long, found by fuzz_salesforce)", req("POST", "/v1/gate/salesforce", '{"opportunityId": 1e999, "stageName": "Demo"}'), 422, "invalid_field"),
    ("Salesforce: amount -1e30", req("POST", "/v1/gate/salesforce", '{"opportunityId": "o", "stageName": "Demo", "amount": -1e30}'), 422, "invalid_field"),
    ("Salesforce: stage as an object", req("POST", "/v1/gate/salesforce", '{"opportunityId": "o", "stageName": {}}'), 422, "invalid_field"),
    ("Salesforce: 2000 cloud programs", req("POST", "/v1/gate/salesforce", '{"opportunityId": "o", "stageName": "Demo", "cloudPrograms": "' + ";".join(["X"] * 2000) + '"}'), 422, "invalid_field"),
    ("HubSpot: objectId 1e999 (UBSan: inf cast to long long, found by fuzz_hubspot)", req("POST", "/v1/gate/hubspot", '{"objectId": 1e999, "properties": {"dealstage": "contractsent"}}'), 422, "invalid_field"),
    ("HubSpot: properties as an array", req("POST", "/v1/gate/hubspot", '{"objectId": 1, "properties": [1]}'), 422, "invalid_field"),
    ("HubSpot: callbackId as an object", req("POST", "/v1/gate/hubspot", '{"callbackId": {}, "object": {"objectId": 1}}'), 422, "invalid_field"),
    # --- commission intake -------------------------------------------------------------------
    ("CSV: unterminated quote", req("POST", "/v1/commission/check", CSV_HDR + '"D1,direct,100,10\n', ctype="text/csv"), 400, "invalid_csv"),
    ("CSV: 600 columns", req("POST", "/v1/commission/check", ",".join("c%d" % i for i in range(600)) + "\n", ctype="text/csv"), 422, "invalid_field"),
    ("CSV: NUL byte in a cell", req("POST", "/v1/commission/check", CSV_HDR + "D\x001,direct,100,10\n", ctype="text/csv"), 422, None),
    ("CSV: header only, no line", req("POST", "/v1/commission/check", "deal_id\n", ctype="text/csv"), 422, None),
    ("JSON: lines nested 100 deep", req("POST", "/v1/commission/check", '{"lines": ' + "[" * 100 + "]" * 100 + "}"), 422, "invalid_field"),
    ("JSON: lines not an array", req("POST", "/v1/commission/check", '{"lines": "x"}'), 422, "invalid_field"),
    ("JSON: commission 1e400", req("POST", "/v1/commission/check", '{"deal_id": "d", "channel": "direct", "acv": "100", "commission": 1e400}'), 422, "invalid_field"),
    # --- protocol junk -------------------------------------------------------------------------
    ("a TLS ClientHello", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40, 400, None, "civetweb closed_ok"),
    ("header line without a colon", b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n", 400, None, "civetweb"),
    ("HTTP version 9.9 (505, as RFC 9110 and nginx answer)", req("GET", "/healthz", token=None, version="HTTP/9.9"), 505, None, "civetweb"),
]


def check_row(row):
    name, data, want, code = row[:4]
    opts = row[4] if len(row) > 4 else ""
    status, hdrs, body = exchange(data, shut="shut" in opts, head="head" in opts)
    if status is None:
        assert "closed_ok" in opts, "%s: closed without an answer" % name
        return
    assert status == want, "%s: got %s, want %s: %r" % (name, status, want, body[:200])
    if "civetweb" in opts or "head" in opts:
        return
    doc = json.loads(body.decode("utf-8"))  # strict: a CRM's parser refuses broken UTF-8
    assert isinstance(doc.get("error"), dict) and doc["error"].get("message"), (name, doc)
    if code:
        assert doc["error"]["code"] == code, (name, doc)
    if status == 401:
        assert "www-authenticate" in hdrs, (name, hdrs)


def make_test(row):
    def t():
        check_row(row)
    t.__name__ = "test_" + "".join(c if c.isalnum() else "_" for c in row[0].lower())[:60]
    return t


def test_service_is_healthy_and_still_decides():
    assert svc.proc.poll() is None, "dealgate died:\n" + svc.stderr()[-3000:]
    st, body, _ = svc.request("GET", "/healthz")
    assert st == 200 and body["status"] == "ok", body
    st, d, _ = svc.gate({"opportunity": {"id": "OPP-APPROVED", "clouds": ["aws"]},
                         "from_stage": "Qualification", "to_stage": "Demo"})
    assert st == 200 and d["allowed"] is True, d
    st, d, _ = svc.gate({"opportunity": {"id": "OPP-NONE", "clouds": ["aws"]},
                         "from_stage": "Qualification", "to_stage": "Demo"})
    assert st == 200 and d["allowed"] is False, d


def test_no_5xx_in_the_access_log():
    bad = []
    for line in svc.stderr().splitlines():
        if not line.startswith("{"):
            continue
        try:
            o = json.loads(line)
        except ValueError:
            continue
        if o.get("event") == "request" and o.get("status", 0) >= 500:
            bad.append(line)
    assert not bad, "\n".join(bad[:10])


if __name__ == "__main__":
    assert len(ROWS) >= 60, len(ROWS)
    svc = Service(extra="""
        [salesforce]
        cloud.AWS = aws

        [hubspot]
        client_secret = %s
        public_url = https://127.0.0.1
        """ % SECRET).start()
    try:
        tests = [make_test(r) for r in ROWS]
        names = set()
        for t in tests:  # unique names for dgtest's report
            while t.__name__ in names:
                t.__name__ += "_"
            names.add(t.__name__)
        tests += [test_service_is_healthy_and_still_decides, test_no_5xx_in_the_access_log]
        dgtest.run(tests)
    finally:
        svc.stop()
