"""Black-box: the registration gate decides like DESIGN.md says, through the real binary."""
import dgtest
from dgtest import Service, event, codes, WEBHOOK, READER

svc = None


def setup():
    global svc
    svc = Service(extra="""
        [rule:proposal-two-clouds]
        type = registration
        stage = Negotiation
        clouds = aws
        mode = report
        accept.aws = Approved
        """).start()


def test_registered_deal_found_by_crm_id_is_allowed():
    st, d, _ = svc.gate(event("OPP-APPROVED"))
    assert st == 200, d
    assert d["allowed"] is True and d["outcome"] == "allow" and d["message"] == ""
    assert d["decision_id"].startswith("dg_")
    reg = d["registrations"][0]
    assert reg["cloud"] == "aws" and reg["id"] == "O1000001" and reg["status"] == "Approved"
    assert reg["verified"] is True and reg["created_at"] == "2026-10-01T09:00:00Z"
    assert reg["origin"] == "partner" and reg["source"] == "file"
    assert d["revert_to"] is None


def test_unregistered_deal_is_blocked_with_reason_and_revert():
    st, d, _ = svc.gate(event("OPP-NOTHING", frm="Qualification"))
    assert st == 200
    assert d["allowed"] is False and d["outcome"] == "block"
    assert codes(d) == ["registration_missing"]
    assert d["reasons"][0]["rule"] == "demo-needs-registration"
    assert d["reasons"][0]["cloud"] == "aws"
    assert d["message"] == "Register this deal in AWS ACE before moving to Demo."
    assert d["revert_to"] == "Qualification"


def test_rejected_registration_is_not_accepted():
    st, d, _ = svc.gate(event("OPP-REJECTED", regs={"aws": "O1000002"}))
    assert codes(d) == ["registration_not_accepted"], d
    assert "Rejected" in d["reasons"][0]["message"]


def test_unknown_registration_id_is_not_found():
    st, d, _ = svc.gate(event("OPP-X", regs={"aws": "O9999999"}))
    assert codes(d) == ["registration_not_found"], d


def test_another_deals_registration_is_a_mismatch():
    st, d, _ = svc.gate(event("OPP-THIEF", regs={"aws": "O1000003"}))
    assert d["allowed"] is False
    assert codes(d) == ["registration_mismatch"], d


def test_unlinked_registration_passes_with_warning():
    st, d, _ = svc.gate(event("OPP-UNLINKED", regs={"aws": "O1000004"}))
    assert d["allowed"] is True, d
    assert codes(d, "warnings") == ["registration_unlinked"]


def test_later_stage_is_gated_and_lost_is_never_gated():
    st, d, _ = svc.gate(event("OPP-LATE", frm="Qualification", to="Proposal"))
    assert d["allowed"] is False and codes(d) == ["registration_missing"]
    st, d, _ = svc.gate(event("OPP-LOST", frm="Qualification", to="Closed Lost"))
    assert d["allowed"] is True and d["gated"] is False


def test_moving_back_or_within_gated_stages_is_not_gated():
    st, d, _ = svc.gate(event("OPP-BACK", frm="Proposal", to="Qualification"))
    assert d["allowed"] is True and d["gated"] is False
    st, d, _ = svc.gate(event("OPP-WITHIN", frm="Demo", to="Proposal"))
    assert d["allowed"] is True, d


def test_hubspot_stage_ids_map_through_aliases_case_insensitively():
    st, d, _ = svc.gate(event("OPP-ALIAS", frm="qualifiedtobuy", to="PresentationScheduled"))
    assert d["to_stage"] == "Demo" and d["from_stage"] == "Qualification"
    assert d["allowed"] is False
    assert d["revert_to"] == "Qualification" and d["revert_to_value"] == "qualifiedtobuy"


def test_unknown_stage_blocks_visibly():
    st, d, _ = svc.gate(event("OPP-UNK", to="Pilot"))
    assert d["allowed"] is False and codes(d) == ["stage_unknown"], d


def test_deal_without_clouds_is_not_co_sold():
    st, d, _ = svc.gate(event("OPP-NOCLOUD", clouds=()))
    assert d["allowed"] is True, d


def test_two_clouds_failing_give_plus_more():
    st, d, _ = svc.gate(event("OPP-TWO", clouds=("aws", "azure")))
    assert d["allowed"] is False
    assert sorted(codes(d)) == ["registration_missing", "registration_missing"]
    assert d["message"].endswith("(+1 more)"), d["message"]


def test_report_mode_rule_warns_instead_of_blocking():
    # O1000005 is "In review": accepted by the Demo rule, not by the report-mode rule.
    st, d, _ = svc.gate(event("OPP-BYCRM", frm="Proposal", to="Negotiation"))
    assert d["allowed"] is True, d
    assert "report_only" in codes(d, "warnings")


def test_missing_from_stage_uses_history_then_fails_closed():
    # No history: counts as coming from an earlier stage.
    st, d, _ = svc.gate(event("OPP-HIST", frm=None, to="Proposal"))
    assert d["allowed"] is False and d["from_stage"] is None, d
    assert d["revert_to"] == "Qualification"  # the stage just before the rule's stage
    # History says the deal is at Proposal already (a legit earlier move): Proposal→Negotiation
    st, d, _ = svc.gate(event("OPP-HIST2", frm="Qualification", to="Qualification"))
    st, d, _ = svc.gate(event("OPP-HIST2", frm=None, to="Demo"))
    assert d["allowed"] is False and d["from_stage"] == "Qualification", d
    assert d["revert_to"] == "Qualification"


def test_every_decision_is_readable_from_the_log():
    st, d, _ = svc.gate(event("OPP-READ", regs={"aws": "O1000002"}))
    st2, got, _ = svc.get("/v1/decisions/" + d["decision_id"])
    assert st2 == 200 and got == d  # the answer is the logged decision, whole
    assert got["outcome"] == "block" and got["opportunity_id"] == "OPP-READ"
    st3, page, _ = svc.get("/v1/decisions?opportunity=OPP-READ")
    assert st3 == 200 and [x["decision_id"] for x in page["decisions"]] == [d["decision_id"]]
    assert page["next_cursor"] is None


def test_decision_list_filters_and_paginates_newest_first():
    ids = []
    for i in range(5):
        st, d, _ = svc.gate(event("OPP-PAGE", frm="Qualification", to="Qualification",
                                  owner="pager@example.com"))
        ids.append(d["decision_id"])
    seen, cursor = [], None
    while True:
        q = "/v1/decisions?owner=pager@example.com&limit=2" + ("&cursor=" + cursor if cursor else "")
        st, page, _ = svc.get(q)
        assert st == 200, page
        seen += [x["decision_id"] for x in page["decisions"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids)), (seen, ids)
    st, page, _ = svc.get("/v1/decisions?outcome=block&limit=500")
    assert all(x["outcome"] == "block" for x in page["decisions"]) and page["decisions"]


def test_idempotent_replay_and_conflict():
    e = event("OPP-IDEM")
    e["event_id"] = "evt-123"
    st, d1, _ = svc.gate(e)
    st, d2, h = svc.gate(e)
    assert st == 200 and d2["decision_id"] == d1["decision_id"]
    assert d2 == d1  # the first answer as logged, latency and time included
    assert h.get("x-dealgate-replay") == "1"
    st, page, _ = svc.get("/v1/decisions?opportunity=OPP-IDEM")
    assert len(page["decisions"]) == 1
    e["to_stage"] = "Proposal"
    st, err, _ = svc.gate(e)
    assert st == 409 and err["error"]["code"] == "idempotency_conflict"


def test_amount_below_min_amount_passes():
    svc2 = Service(extra="""
        [rule:big-deals]
        type = registration
        stage = Proposal
        min_amount = 10000 USD
        min_amount.EUR = 9000
        """).start()
    try:
        st, d, _ = svc2.gate(event("OPP-SMALL", frm="Demo", to="Proposal", clouds=("azure",),
                                   amount="9999.99"))
        assert d["allowed"] is True, d
        st, d, _ = svc2.gate(event("OPP-BIG", frm="Demo", to="Proposal", clouds=("azure",),
                                   amount=10000))
        assert d["allowed"] is False and codes(d) == ["registration_missing"], d
        st, d, _ = svc2.gate(event("OPP-EUR", frm="Demo", to="Proposal", clouds=("azure",),
                                   amount="9500.00", currency="EUR"))
        assert d["allowed"] is False, d
    finally:
        svc2.stop()


if __name__ == "__main__":
    setup()
    try:
        dgtest.run([v for k, v in sorted(globals().items()) if k.startswith("test_")])
    finally:
        svc.stop()
