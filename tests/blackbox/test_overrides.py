"""Black-box: deal-desk overrides (POST/GET/DELETE /v1/overrides) and the decisions they let
through, against the real service."""
import time

import dgtest
from dgtest import DESK, READER, WEBHOOK, Service, codes, event

RULE = "demo-needs-registration"


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def grant(svc, opp="OPP-NONE", rule=RULE, reason="Strategic account; AWS review pending",
          approved_by="Dana Desk", expires=None, token=DESK):
    body = {"opportunity_id": opp, "rule": rule, "reason": reason, "approved_by": approved_by,
            "expires_at": expires or iso(time.time() + 3600)}
    return svc.request("POST", "/v1/overrides", body, token=token)


def test_override_lets_the_deal_through_and_is_logged():
    svc = Service().start()
    try:
        st, d, _ = svc.gate(event("OPP-NONE"))
        assert st == 200 and codes(d) == ["registration_missing"], d
        st, ov, h = grant(svc)
        assert st == 201, ov
        assert ov["id"].startswith("ov_") and ov["active"] is True and ov["used"] == 0, ov
        assert ov["opportunity_id"] == "OPP-NONE" and ov["rule"] == RULE
        assert ov["approved_by"] == "Dana Desk" and ov["revoked_at"] is None
        assert h["location"] == "/v1/overrides/" + ov["id"]
        st, d, _ = svc.gate(event("OPP-NONE"))
        assert st == 200 and d["allowed"] is True and d["reasons"] == [], d
        w = [x for x in d["warnings"] if x["code"] == "override"]
        assert len(w) == 1, d
        assert w[0]["override_id"] == ov["id"] and w[0]["rule"] == RULE
        assert "Dana Desk" in w[0]["message"] and "AWS review pending" in w[0]["message"]
        assert "registration_missing" in w[0]["message"]
        # in the log, with the override id
        st, got, _ = svc.get("/v1/decisions/" + d["decision_id"])
        assert got["warnings"][0]["override_id"] == ov["id"]
        # another deal is not covered
        st, d2, _ = svc.gate(event("OPP-REJECTED", regs={"aws": "O1000002"}))
        assert d2["allowed"] is False
        # the override counts its use
        st, one, _ = svc.request("GET", "/v1/overrides/" + ov["id"], token=DESK)
        assert st == 200 and one["used"] == 1 and one["last_used_at"], one
        assert "override_granted" in svc.stderr()
        # the manager page lists the overrides in force
        st, page, _ = svc.get("/ui")
        page = page.decode() if isinstance(page, bytes) else str(page)
        assert st == 200 and 'id="overrides"' in page and ov["id"] in page, page[:2000]
        assert "Dana Desk" in page and "AWS review pending" in page
    finally:
        svc.stop()


def test_revoke_and_list():
    svc = Service().start()
    try:
        st, a, _ = grant(svc, opp="OPP-NONE")
        st, b, _ = grant(svc, opp="OPP-OTHERDEAL")
        st, lst, _ = svc.request("GET", "/v1/overrides?active=1", token=DESK)
        assert st == 200 and [o["id"] for o in lst["overrides"]] == [b["id"], a["id"]], lst
        assert lst["next_cursor"] is None
        st, page, _ = svc.request("GET", "/v1/overrides?limit=1", token=DESK)
        assert len(page["overrides"]) == 1 and page["next_cursor"], page
        st, page2, _ = svc.request("GET", "/v1/overrides?limit=1&cursor=" + page["next_cursor"],
                                   token=DESK)
        assert [o["id"] for o in page2["overrides"]] == [a["id"]], page2
        st, r, _ = svc.request("DELETE", "/v1/overrides/" + a["id"], token=DESK)
        assert st == 200 and r["active"] is False and r["revoked_at"], r
        st, d, _ = svc.gate(event("OPP-NONE"))
        assert d["allowed"] is False and codes(d) == ["registration_missing"], d
        st, lst, _ = svc.request("GET", "/v1/overrides?active=1", token=DESK)
        assert [o["id"] for o in lst["overrides"]] == [b["id"]], lst
        st, lst, _ = svc.request("GET", "/v1/overrides?opportunity=OPP-NONE", token=DESK)
        assert [o["id"] for o in lst["overrides"]] == [a["id"]], lst
        # revoking again is harmless; unknown ids are 404
        st, r2, _ = svc.request("DELETE", "/v1/overrides/" + a["id"], token=DESK)
        assert st == 200 and r2["revoked_at"] == r["revoked_at"]
        st, e, _ = svc.request("DELETE", "/v1/overrides/ov_NOPE", token=DESK)
        assert st == 404 and e["error"]["code"] == "not_found", e
        st, e, _ = svc.request("GET", "/v1/overrides?active=maybe", token=DESK)
        assert st == 422
        assert "override_revoked" in svc.stderr()
    finally:
        svc.stop()


def test_expiry_stops_the_override_by_itself():
    svc = Service().start()
    try:
        st, ov, _ = grant(svc, expires=iso(time.time() + 2))
        assert st == 201
        st, d, _ = svc.gate(event("OPP-NONE"))
        assert d["allowed"] is True, d
        time.sleep(2.2)
        st, d, _ = svc.gate(event("OPP-NONE"))
        assert d["allowed"] is False and codes(d) == ["registration_missing"], d
        st, one, _ = svc.request("GET", "/v1/overrides/" + ov["id"], token=DESK)
        assert one["active"] is False and one["revoked_at"] is None and one["used"] == 1, one
        st, lst, _ = svc.request("GET", "/v1/overrides?active=1", token=DESK)
        assert lst["overrides"] == []
    finally:
        svc.stop()


def test_validation_names_the_field():
    svc = Service().start()
    try:
        cases = [
            ({"rule": "no-such-rule"}, "rule: unknown rule"),
            ({"expires_at": iso(time.time() - 60)}, "expires_at: is in the past"),
            ({"expires_at": "tomorrow"}, "expires_at: must be an RFC 3339"),
            ({"expires_at": "2099-01-01"}, "expires_at: must be an RFC 3339"),
            ({"reason": ""}, "reason: required"),
            ({"reason": None}, "reason: required"),
            ({"approved_by": "  "}, "approved_by: required"),
            ({"approved_by": 7}, "approved_by: must be a string"),
            ({"opportunity_id": ""}, "opportunity_id: required"),
            ({"extra": 1}, "extra: unknown field"),
        ]
        for patch, msg in cases:
            body = {"opportunity_id": "OPP-NONE", "rule": RULE, "reason": "why",
                    "approved_by": "Dana", "expires_at": iso(time.time() + 600)}
            body.update(patch)
            body = {k: v for k, v in body.items() if not (k in patch and patch[k] is None)}
            if patch.get("reason", 1) is None:
                body.pop("reason", None)
            st, e, _ = svc.request("POST", "/v1/overrides", body, token=DESK)
            assert st == 422 and e["error"]["code"] == "invalid_field", (patch, st, e)
            assert msg in e["error"]["message"], (patch, e)
        st, e, _ = svc.request("POST", "/v1/overrides", "{bad", token=DESK)
        assert st == 400
        st, e, _ = svc.request("POST", "/v1/overrides", "[]", token=DESK)
        assert st == 422
        st, e, _ = svc.request("POST", "/v1/overrides", "x", token=DESK, ctype="text/plain")
        assert st == 415
        st, lst, _ = svc.request("GET", "/v1/overrides", token=DESK)
        assert lst["overrides"] == [], lst
    finally:
        svc.stop()


def test_desk_tokens_only():
    svc = Service().start()
    try:
        for tok in (None, READER, WEBHOOK, "nope"):
            st, _, _ = grant(svc, token=tok)
            assert st == 401, tok
            st, _, _ = svc.request("GET", "/v1/overrides", token=tok)
            assert st == 401, tok
        st, _, _ = svc.request("PUT", "/v1/overrides", {}, token=DESK)
        assert st == 405
    finally:
        svc.stop()


if __name__ == "__main__":
    dgtest.run([test_override_lets_the_deal_through_and_is_logged, test_revoke_and_list,
                test_expiry_stops_the_override_by_itself, test_validation_names_the_field,
                test_desk_tokens_only])
