"""Black-box: `dealgate import-history` loads a CRM stage-history export as decisions of
adapter "import" (allowed, not gated), idempotently, with an error per bad line; the gate
and the KPIs see the imported history."""
import os
import subprocess

import dgtest
from dgtest import BIN, Service, event

SALESFORCE = """OpportunityId,Field,OldValue,NewValue,CreatedDate,Amount,CurrencyIsoCode,Cloud_Programs__c,ACE_Opportunity_ID
006A00000000001,StageName,Prospecting,Qualification,2026-01-05T10:00:00.000+0000,"120,000.00",USD,aws,O1000001
006A00000000001,StageName,Qualification,Demo,2026-01-20T10:00:00.000+0000,"120,000.00",USD,aws,O1000001
006A00000000001,Amount,100000,120000,2026-01-21T10:00:00.000+0000,,,,
006A00000000001,StageName,Demo,Closed Won,2026-02-10T10:00:00.000+0000,"120,000.00",USD,aws,O1000001
006A00000000002,StageName,Qualification,Closed Lost,2026-02-11 09:30:00,5000,EUR,,
006A00000000003,StageName,Prospecting,Demo,2026-02-12,,,,
"""

HUBSPOT = """Record ID,Deal Stage,Timestamp,Deal Name,Deal owner,Pipeline,Cloud Programs
9876543210,presentationscheduled,2026-03-01T08:00:00Z,Acme - Data Platform,jane@example.com,default,AWS
9876543210,closedwon,2026-03-15T08:00:00Z,Acme - Data Platform,jane@example.com,default,AWS
"""

BAD = """deal_id,stage,time,amount,clouds
D1,Demo,2026-01-01T00:00:00Z,100,aws
D2,Warp Speed,2026-01-01T00:00:00Z,,
D3,Demo,last tuesday,,
,Demo,2026-01-01T00:00:00Z,,
D4,Demo,2026-01-01T00:00:00Z,12.345.6,
D5,Demo,2026-01-01T00:00:00Z,,oracle
D6,Closed Won,2026-01-02T00:00:00Z,,aws
"""


def run_import(svc, text, name="history.csv"):
    path = os.path.join(svc.dir, name)
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.run([BIN, "import-history", "-c", svc.config, path], capture_output=True,
                       text=True, timeout=60, cwd=svc.dir)
    return p.returncode, p.stdout, p.stderr


def decisions(svc, opp):
    st, page, _ = svc.get("/v1/decisions?opportunity=" + opp)
    assert st == 200, page
    return page["decisions"]


def test_salesforce_field_history_import_is_idempotent():
    svc = Service()
    try:
        rc, out, err = run_import(svc, SALESFORCE)
        assert rc == 0, (out, err)
        assert out.strip() == "imported 5, already imported 0, skipped 1, failed 0 (6 rows)", out
        rc, out, err = run_import(svc, SALESFORCE)
        assert rc == 0 and out.strip() == "imported 0, already imported 5, skipped 1, failed 0 (6 rows)", out
        svc.start()
        ds = decisions(svc, "006A00000000001")
        assert [d["to_stage"] for d in ds] == ["Closed Won", "Demo", "Qualification"], ds
        won = ds[0]
        assert won["adapter"] == "import" and won["outcome"] == "allow" and won["gated"] is False
        assert won["imported"] is True and won["time"] == "2026-02-10T10:00:00Z", won
        assert won["from_stage"] == "Demo" and won["event_id"].startswith("imp_")
        assert won["registrations"] == [{"cloud": "aws", "id": "O1000001", "status": None,
                                         "verified": False, "source": "import", "created_at": None,
                                         "origin": None, "lookup": "skipped"}], won
        lost = decisions(svc, "006A00000000002")[0]
        assert lost["to_stage"] == "Closed Lost" and lost["time"] == "2026-02-11T09:30:00Z", lost
        # the gate knows where the deals are: no from_stage, judged from the imported stage
        st, d, _ = svc.gate(event("006A00000000003", to="Proposal", frm=None, clouds=()))
        assert d["from_stage"] == "Demo" and d["gated"] is False, d
        # the KPIs count the imported close
        st, k, _ = svc.get("/v1/kpis?since=2026-01-01&until=2026-03-01")
        assert st == 200, k
        assert k["win_rate_unregistered"] == 0.5, k  # one won, one lost; imports are unverified
    finally:
        svc.stop()


def test_hubspot_export_with_aliases_and_pipeline():
    svc = Service()
    try:
        rc, out, err = run_import(svc, HUBSPOT)
        assert rc == 0 and out.strip().startswith("imported 2,"), (out, err)
        svc.start()
        ds = decisions(svc, "9876543210")
        assert [d["to_stage"] for d in ds] == ["Closed Won", "Demo"], ds
        assert ds[0]["to_value"] == "closedwon" and ds[0]["owner"] == "jane@example.com"
        assert ds[0]["name"] == "Acme - Data Platform" and ds[0]["pipeline"] == "default"
    finally:
        svc.stop()


def test_bad_lines_are_named_and_the_rest_imported():
    svc = Service()
    try:
        rc, out, err = run_import(svc, BAD)
        assert rc == 1, (out, err)
        assert out.strip() == "imported 2, already imported 0, skipped 0, failed 5 (7 rows)", out
        assert 'line 3: stage "Warp Speed" is not in pipeline default' in err, err
        assert 'line 4: time "last tuesday" is not a date' in err, err
        assert "line 5: the deal id is empty" in err, err
        assert "line 6: field amount" in err, err
        assert 'line 7: cloud "oracle" is not configured' in err, err
    finally:
        svc.stop()


def test_unusable_files_exit_2():
    svc = Service()
    try:
        rc, out, err = run_import(svc, "deal,when\nD1,2026-01-01\n")
        assert rc == 2 and "the header has no stage column" in err, err
        rc, out, err = run_import(svc, "")
        assert rc == 2 and "empty file" in err, err
        rc, out, err = run_import(svc, 'deal_id,stage,time\nD1,"Demo,2026-01-01\n')
        assert rc == 2 and "line" in err, err
        p = subprocess.run([BIN, "import-history", "-c", svc.config, "/nonexistent.csv"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and "No such file" in p.stderr
    finally:
        svc.stop()


if __name__ == "__main__":
    dgtest.run([test_salesforce_field_history_import_is_idempotent,
                test_hubspot_export_with_aliases_and_pipeline,
                test_bad_lines_are_named_and_the_rest_imported, test_unusable_files_exit_2])
