"""Black-box: commission checks over HTTP, logged and read back with a comp reader token."""
import dgtest
from dgtest import Service, WEBHOOK, READER, COMP

svc = None
COMP_CFG = """
[comp]
tolerance = 0.01
rounding = half_up
fee.aws = 3%
plan.default = 10%
allow_uplift = yes
"""


def setup():
    global svc
    svc = Service(extra=COMP_CFG).start()


def check(body, ctype="application/json", query=""):
    return svc.request("POST", "/v1/commission/check" + query, body, token=WEBHOOK, ctype=ctype)


def test_fee_leaking_into_base_is_flagged_with_shortfall():
    st, r, _ = check({"deal_id": "D-1", "rep": "jane", "channel": "Marketplace", "cloud": "aws",
                      "acv": "100000.00", "commission_base": "97000.00", "rate": "10%",
                      "commission": "9700.00"})
    assert st == 200, r
    assert r["ok"] is False and r["checked"] == 1 and r["violations"] == 1
    assert r["total_shortfall"] == {"USD": "300.00"}, r
    res = r["results"][0]
    assert res["codes"] == ["fee_deducted_from_base", "commission_below_direct_equivalent"], res
    assert res["expected"] == "10000.00" and res["actual"] == "9700.00" and res["shortfall"] == "300.00"
    assert res["reasons"][0]["message"] == "base 97,000.00 is ACV 100,000.00 less the 3% AWS fee"


def test_clean_lines_and_all_flag():
    lines = [{"deal_id": "D-2", "channel": "direct", "acv": "50000", "commission": "5000.00"},
             {"deal_id": "D-3", "channel": "marketplace", "acv": "50000", "commission": "5000.00"}]
    st, r, _ = check({"lines": lines})
    assert st == 200 and r["ok"] is True and r["checked"] == 2 and r["results"] == [], r
    st, r, _ = check({"lines": lines, "all": True})
    assert len(r["results"]) == 2


def test_csv_body_with_thousands_separators():
    csv = ('deal_id,rep,channel,cloud,acv,commission\r\n'
           'D-4,bob,marketplace,aws,"1,250,000.00","121,250.00"\r\n')
    st, r, _ = check(csv, ctype="text/csv")
    assert st == 200, r
    assert r["violations"] == 1 and r["total_shortfall"] == {"USD": "3750.00"}, r


def test_bad_input_is_4xx_naming_the_problem():
    st, r, _ = check({"deal_id": "D-5", "channel": "direct", "acv": "10"})
    assert st == 422 and "commission" in r["error"]["message"], r
    st, r, _ = check("deal_id,channel\nD-6,direct\n", ctype="text/csv")
    assert st == 422, r
    st, r, _ = check("hello", ctype="text/plain")
    assert st == 415, r
    st, r, _ = check('{"deal_id": ', ctype="application/json")
    assert st == 400, r
    st, r, _ = svc.request("POST", "/v1/commission/check", {"deal_id": "x"}, token=READER)
    assert st == 401


def test_checks_are_logged_and_need_a_comp_token():
    check({"deal_id": "D-LOG", "rep": "logged-rep", "channel": "marketplace", "acv": "1000",
           "commission": "90.00"})
    st, r, _ = svc.get("/v1/commission/checks?rep=logged-rep", token=READER)
    assert st == 401
    st, r, _ = svc.get("/v1/commission/checks?rep=logged-rep&violations=1", token=COMP)
    assert st == 200, r
    assert len(r["checks"]) == 1 and r["checks"][0]["deal_id"] == "D-LOG", r
    st, r, _ = svc.get("/v1/commission/checks?violations=maybe", token=COMP)
    assert st == 422


if __name__ == "__main__":
    setup()
    try:
        dgtest.run([v for k, v in sorted(globals().items()) if k.startswith("test_")])
    finally:
        svc.stop()
