"""Black-box: GET /v1/kpis against figures computed by hand (docs/kpis.md), from a scripted
sequence of stage moves and commission checks driven through the real binary, with the file
connector as the co-sell system (the registrations file changes mid-way, as a rep registers a
deal late)."""
import datetime
import time

import dgtest
from dgtest import Service, WEBHOOK, READER, COMP

KEYS = {"registration_rate", "first_pass_rate", "late_registrations", "win_rate_registered",
        "win_rate_unregistered", "inbound_share", "attributed_revenue",
        "median_days_registration_to_close", "blocks_by_code", "comp_violations",
        "comp_total_shortfall",
        "registrations_lapsed"}  # re-verification (docs/operations.md)

TODAY = datetime.datetime.now(datetime.timezone.utc).date()


def ago(days):
    return (TODAY - datetime.timedelta(days=days)).isoformat() + "T09:00:00Z"


HEADER = "cloud,registration_id,crm_opportunity_id,status,created_at,origin\n"
# K-A has no registration yet: its first move is blocked, it is registered afterwards.
REGS_BEFORE = HEADER + (
    "aws,O2000002,K-B,Approved,%s,cloud\n"
    "azure,ref-b,K-B,Accepted,%s,partner\n"
    "aws,O2000003,K-D,Rejected,%s,partner\n"
    "azure,ref-f,K-F,Accepted,%s,cloud\n") % (ago(4), ago(6), ago(9), ago(2))
REGS_AFTER = REGS_BEFORE + "aws,O2000001,K-A,Approved,%s,partner\n" % ago(10)

EXTRA = """
[cloud:gcp]
name = Google Cloud Partner Advantage
connector = none

[comp]
tolerance = 0.01
rounding = half_up
fee.aws = 3%
plan.default = 10%
"""

svc = None
times = {}  # (deal, step) -> decision time


def move(deal, frm, to, clouds, **opp):
    st, d, _ = svc.gate(dgtest.event(deal, frm=frm, to=to, clouds=clouds, **opp))
    assert st == 200, d
    times.setdefault(deal, []).append(d["time"])
    return d


def setup():
    global svc
    config = dgtest.BASE_CONFIG.replace("reader_tokens = {reader}",
                                        "reader_tokens = {reader}, {comp}")
    svc = Service(config=config, extra=EXTRA, registrations=REGS_BEFORE).start()
    # A (aws): blocked (not registered), registered, allowed, won 100,000.00 USD
    assert move("K-A", "Qualification", "Demo", ["aws"])["reasons"][0]["code"] == \
        "registration_missing"
    with open(svc.regs, "w") as f:
        f.write(REGS_AFTER)
    time.sleep(1.2)  # the file connector looks at the file at most once a second
    assert move("K-A", "Qualification", "Demo", ["aws"])["allowed"] is True
    move("K-A", "Negotiation", "Closed Won", ["aws"], amount="100000.00", currency="USD")
    # B (aws + azure): allowed first time (both verified), then lost
    assert move("K-B", "Qualification", "Demo", ["aws", "azure"])["allowed"] is True
    move("K-B", "Demo", "Closed Lost", ["aws", "azure"])
    # C (gcp, connector none: presence only, allowed but not verified), won 5,000.00 EUR
    d = move("K-C", "Qualification", "Demo", ["gcp"], registrations={"gcp": "G-1"})
    assert d["allowed"] is True and d["registrations"][0]["verified"] is False, d
    move("K-C", "Negotiation", "Closed Won", ["gcp"], amount="5000.00", currency="EUR")
    # D (aws): a rejected registration, blocked twice
    for to in ("Demo", "Proposal"):
        assert move("K-D", "Qualification", to, ["aws"])["reasons"][0]["code"] == \
            "registration_not_accepted"
    # E (no cloud): never gated, lost
    move("K-E", "Prospecting", "Qualification", [])
    move("K-E", "Qualification", "Closed Lost", [])
    # F (azure): allowed first time, won 2,500.50 USD
    assert move("K-F", "Qualification", "Demo", ["azure"])["allowed"] is True
    move("K-F", "Negotiation", "Closed Won", ["azure"], amount="2500.50", currency="USD")
    # commission checks: ann 300.00 short (aws), bob 1,000.00 short, one clean line
    lines = [{"deal_id": "K-A", "rep": "ann", "channel": "marketplace", "cloud": "aws",
              "acv": "100000.00", "commission_base": "97000.00", "rate": "10%",
              "commission": "9700.00"},
             {"deal_id": "K-X", "rep": "bob", "channel": "marketplace", "acv": "50000.00",
              "commission": "4000.00"},
             {"deal_id": "K-Y", "rep": "cy", "channel": "direct", "acv": "1000.00",
              "commission": "100.00"}]
    st, r, _ = svc.request("POST", "/v1/commission/check", {"lines": lines}, token=WEBHOOK)
    assert st == 200 and r["violations"] == 2, r


def window():
    """since/until spanning every decision (the same day unless the run crossed midnight)."""
    days = sorted(t[:10] for ts in times.values() for t in ts)
    return "since=%s&until=%s" % (days[0], days[-1])


def kpis(query="", token=COMP):
    st, k, _ = svc.get("/v1/kpis?" + window() + query, token=token)
    assert st == 200, k
    assert set(k) == KEYS, sorted(k)
    return k


def days_to_close(deal, created_days_ago):
    won = datetime.date.fromisoformat(times[deal][-1][:10])
    return (won - (TODAY - datetime.timedelta(days=created_days_ago))).days


def close(a, b):
    return a is not None and abs(a - b) < 1e-9


def test_all_clouds_match_the_hand_computed_figures():
    k = kpis()
    # reached a gated stage: A, B, C, F; every registration verified: A, B, F (C presence-only)
    assert close(k["registration_rate"], 3 / 4), k
    # allowed on the first gated move: B, C, F; A was blocked first, allowed later
    assert close(k["first_pass_rate"], 3 / 4), k
    assert k["late_registrations"] == 1, k
    # registered: A, F won, B lost; unregistered: C won, E lost
    assert close(k["win_rate_registered"], 2 / 3), k
    assert close(k["win_rate_unregistered"], 1 / 2), k
    # verified registrations: A aws (partner), B aws (cloud), B azure (partner), F azure (cloud)
    assert close(k["inbound_share"], 2 / 4), k
    assert k["attributed_revenue"] == {"aws": {"USD": "100000.00"},
                                       "azure": {"USD": "2500.50"}}, k
    a, f = days_to_close("K-A", 10), days_to_close("K-F", 2)
    assert close(k["median_days_registration_to_close"], (a + f) / 2), (k, a, f)
    assert k["blocks_by_code"] == {"registration_missing": 1, "registration_not_accepted": 2}, k
    assert k["comp_violations"] == 2, k
    assert k["comp_total_shortfall"] == {"USD": "1300.00"}, k


def test_cloud_filter():
    k = kpis("&cloud=aws")
    # reached with aws: A, B (both verified); first pass: B
    assert close(k["registration_rate"], 1.0) and close(k["first_pass_rate"], 1 / 2), k
    assert k["late_registrations"] == 1
    # aws deals closed: A won, B lost, both registered on aws
    assert close(k["win_rate_registered"], 1 / 2) and k["win_rate_unregistered"] is None, k
    assert close(k["inbound_share"], 1 / 2), k
    assert k["attributed_revenue"] == {"aws": {"USD": "100000.00"}}, k
    assert close(k["median_days_registration_to_close"], days_to_close("K-A", 10)), k
    assert k["blocks_by_code"] == {"registration_missing": 1, "registration_not_accepted": 2}, k
    assert k["comp_violations"] == 1 and k["comp_total_shortfall"] == {"USD": "300.00"}, k

    k = kpis("&cloud=GCP")  # cloud keys in any case
    assert close(k["registration_rate"], 0.0) and close(k["first_pass_rate"], 1.0), k
    assert k["win_rate_registered"] is None and close(k["win_rate_unregistered"], 1.0), k
    assert k["inbound_share"] is None and k["median_days_registration_to_close"] is None, k
    assert k["attributed_revenue"] == {} and k["blocks_by_code"] == {}, k
    assert k["comp_violations"] == 0 and k["comp_total_shortfall"] == {}, k


def test_comp_figures_need_a_comp_token():
    k = kpis(token=READER)
    assert k["comp_violations"] is None and k["comp_total_shortfall"] is None, k
    assert close(k["registration_rate"], 3 / 4)  # the rest is the same
    st, r, h = svc.get("/v1/kpis")
    assert st == 200
    st, r, h = svc.request("GET", "/v1/kpis", headers={"Authorization": dgtest.basic("x", COMP)})
    assert st == 200 and r["comp_violations"] == 2, r


def test_an_empty_window_has_nulls_and_zeros():
    st, k, _ = svc.get("/v1/kpis?since=2020-01-01&until=2020-01-31", token=COMP)
    assert st == 200, k
    for key in ("registration_rate", "first_pass_rate", "win_rate_registered",
                "win_rate_unregistered", "inbound_share", "median_days_registration_to_close"):
        assert k[key] is None, (key, k)
    assert k["late_registrations"] == 0 and k["comp_violations"] == 0
    assert k["attributed_revenue"] == {} and k["blocks_by_code"] == {}
    assert k["comp_total_shortfall"] == {}


def test_bad_parameters_are_422_and_no_token_is_401():
    for q in ("since=yesterday", "until=2026-13-01", "since=2026-10-05&until=2026-10-01",
              "cloud=nosuch"):
        st, r, _ = svc.get("/v1/kpis?" + q)
        assert st == 422 and r["error"]["code"] == "invalid_field", (q, st, r)
    st, r, h = svc.get("/v1/kpis", token=None)
    assert st == 401 and h["www-authenticate"].startswith("Basic"), (st, h)
    st, r, h = svc.get("/v1/kpis", token=WEBHOOK)
    assert st == 401


def test_metrics_count_the_same_decisions():
    st, text, _ = svc.get("/metrics")
    assert st == 200
    text = text.decode()
    # 13 decisions: 10 allowed, 3 blocked (A once, D twice)
    assert 'dealgate_decisions_total{outcome="allow"} 10' in text, text
    assert 'dealgate_decisions_total{outcome="block"} 3' in text
    assert 'dealgate_decision_reasons_total{code="registration_not_accepted"} 2' in text


if __name__ == "__main__":
    try:
        setup()
        dgtest.run([test_all_clouds_match_the_hand_computed_figures, test_cloud_filter,
                    test_comp_figures_need_a_comp_token, test_an_empty_window_has_nulls_and_zeros,
                    test_bad_parameters_are_422_and_no_token_is_401,
                    test_metrics_count_the_same_decisions])
    finally:
        if svc:
            svc.stop()
