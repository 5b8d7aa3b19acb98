"""Black-box: every documented error status, and bad input never gets a 5xx or a crash."""
import http.client
import socket

import dgtest
from dgtest import Service, event, WEBHOOK, READER, COMP, basic

svc = None


def setup():
    global svc
    svc = Service().start()


def err(resp, status, code=None):
    st, body, _ = resp
    assert st == status, (st, body)
    assert isinstance(body, dict) and "error" in body, body
    if code:
        assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]["message"]


def test_malformed_json_is_400_with_byte_offset():
    msg = err(svc.gate('{"opportunity": {"id": "x",}'), 400, "invalid_json")
    assert "byte" in msg
    err(svc.gate('{"opportunity": {"id": "x"}, "to_stage": "Demo"} trailing'), 400, "invalid_json")
    err(svc.gate(''), 400, "invalid_json")


def test_auth_missing_wrong_and_wrong_class_is_401():
    err(svc.gate(event(), token=None), 401, "unauthorized")
    err(svc.gate(event(), token="nope"), 401, "unauthorized")
    err(svc.gate(event(), token=READER), 401, "unauthorized")  # a reader cannot decide
    err(svc.get("/v1/decisions", token=WEBHOOK), 401)
    err(svc.get("/v1/decisions", token=WEBHOOK[:-1]), 401)
    st, body, h = svc.get("/v1/decisions", token=None, headers={"Authorization": basic("any", READER)})
    assert st == 200, body
    st, body, h = svc.get("/v1/decisions", token=None)
    assert st == 401 and "basic" in h.get("www-authenticate", "").lower()


def test_unknown_path_404_and_wrong_method_405():
    err(svc.get("/v1/nope"), 404, "not_found")
    err(svc.request("GET", "/v1/gate/stage", token=WEBHOOK), 405, "method_not_allowed")
    err(svc.request("DELETE", "/v1/decisions", token=READER), 405)
    assert err(svc.get("/v1/decisions/dg_doesnotexist"), 404, "not_found") == "no such decision"


def test_log_reads_answer_bad_cursors_422_and_unknown_ids_404():
    """Every read of the log answers the same way: 422 naming the problem, 404, never a 5xx."""
    bad = "cursor=" + "A" * 40  # base64url, but not a cursor the log issued
    msg = err(svc.get("/v1/decisions?" + bad), 422, "invalid_field")
    assert "cursor" in msg, msg
    msg = err(svc.get("/v1/commission/checks?" + bad, token=COMP), 422, "invalid_field")
    assert "cursor" in msg, msg
    msg = err(svc.get("/v1/overrides?" + bad, token=dgtest.DESK), 422, "invalid_field")
    assert msg == "query parameter cursor is invalid", msg
    assert err(svc.get("/v1/overrides/ov_nope", token=dgtest.DESK), 404,
               "not_found") == "no such override"
    msg = err(svc.get("/v1/kpis?since=2026-13-01"), 422, "invalid_field")
    assert "since" in msg, msg
    for path, token in (("/v1/decisions", READER), ("/v1/commission/checks", COMP),
                        ("/v1/overrides", dgtest.DESK), ("/v1/kpis", READER)):
        st, body, h = svc.get(path, token=token)
        assert st == 200 and h["content-type"] == "application/json", (path, st, body)


def test_body_over_max_body_is_413():
    big = '{"opportunity": {"id": "x", "name": "' + "a" * 70000 + '"}, "to_stage": "Demo"}'
    err(svc.gate(big), 413, "payload_too_large")


def test_wrong_content_type_is_415():
    err(svc.gate(event(), ctype="text/plain"), 415, "unsupported_media_type")
    err(svc.gate(event(), ctype=None), 415)


def test_invalid_fields_are_422_naming_the_field():
    assert "to_stage" in err(svc.gate({"opportunity": {"id": "x"}}), 422, "invalid_field")
    assert "opportunity" in err(svc.gate({"to_stage": "Demo"}), 422)
    assert "opportunity.id" in err(svc.gate({"opportunity": {"id": ""}, "to_stage": "Demo"}), 422)
    assert "opportunity.id" in err(svc.gate({"opportunity": {"id": "x" * 129}, "to_stage": "Demo"}), 422)
    assert "opportunity.id" in err(svc.gate({"opportunity": {"id": 5}, "to_stage": "Demo"}), 422)
    assert "clouds[1]" in err(svc.gate(event(clouds=("aws", "oracle"))), 422)
    assert "registrations.ibm" in err(svc.gate(event(regs={"ibm": "X1"})), 422)
    assert "opportunity.amount" in err(svc.gate(event(amount="12.345")), 422)
    assert "opportunity.amount" in err(svc.gate(event(amount="ten")), 422)
    assert "string" in err(svc.gate(event(amount=1e15)), 422)
    assert "currency" in err(svc.gate(event(amount="1", currency="usd1")), 422)
    assert "source" in err(svc.gate(event(source="reseller")), 422)
    assert "pipeline" in err(svc.gate(event(pipeline="nope")), 422)
    err(svc.gate('[1,2,3]'), 422)


def test_json_traps_are_refused():
    assert "duplicate key" in err(svc.gate('{"opportunity": {"id": "a", "id": "b"}, "to_stage": "Demo"}'), 422)
    assert "\\u0000" in err(svc.gate('{"opportunity": {"id": "a\\u0000b"}, "to_stage": "Demo"}'), 422)
    err(svc.gate(b'{"opportunity": {"id": "a\xff"}, "to_stage": "Demo"}'), 422)
    err(svc.gate("[" * 200 + "]" * 200), 422)
    err(svc.gate(b'{"opportunity": {"id": "a\x00"}, "to_stage": "Demo"}'), 422)


def test_exact_json_number_amount_is_accepted():
    st, d, _ = svc.gate(event("OPP-NUM", amount=120000.5))
    assert st == 200, d


def test_health_endpoints_need_no_token():
    st, body, _ = svc.request("GET", "/healthz")
    assert st == 200 and body["status"] == "ok"
    st, body, _ = svc.request("GET", "/readyz")
    assert st == 200 and body["status"] == "ready" and "upstreams" not in body
    st, body, _ = svc.request("GET", "/readyz", token=READER)
    assert st == 200 and "aws" in body["upstreams"], body


def test_oversized_headers_and_garbage_do_not_hurt():
    s = socket.create_connection(("127.0.0.1", svc.port), timeout=5)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n")
    data = s.recv(100)
    s.close()
    assert not data.startswith(b"HTTP/1.1 5"), data
    s = socket.create_connection(("127.0.0.1", svc.port), timeout=5)
    s.sendall(b"\x16\x03\x01garbage\r\n\r\n")
    try:
        s.recv(100)
    except OSError:
        pass
    s.close()
    st, body, _ = svc.request("GET", "/healthz")
    assert st == 200


def test_secrets_never_reach_the_log():
    svc.gate(event(), token="wrong-secret-attempt-xyz")
    svc.gate(event())
    log = svc.stderr()
    assert WEBHOOK not in log and "wrong-secret-attempt-xyz" not in log and READER not in log


def test_openapi_documents_every_route():
    """Every route of gate/http.c's table is in /openapi.json with its method."""
    import os
    import re
    src = open(os.path.join(dgtest.SRC, "gate", "http.c")).read()
    table = src[src.index("routes[] = {"):]
    table = table[:table.index("};")]
    routes = re.findall(r'\{"(GET|POST|DELETE|PUT|PATCH)", "([^"]+)"', table)
    assert len(routes) >= 15, routes
    st, doc, _ = svc.request("GET", "/openapi.json")
    assert st == 200
    paths = doc["paths"]
    for method, path in routes:
        if path.endswith("/"):
            cands = [p for p in paths if p.startswith(path) and "{" in p]
        else:
            cands = [path]
        assert any(p in paths and method.lower() in paths[p] for p in cands), (method, path)


if __name__ == "__main__":
    setup()
    try:
        dgtest.run([v for k, v in sorted(globals().items()) if k.startswith("test_")])
    finally:
        svc.stop()
