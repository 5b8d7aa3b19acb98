#!/usr/bin/python3
"""fake_gcp.py - loopback fake of the Google Cloud CRM Partners API (stdlib only).

GET /v1/partners/{partner}/opportunities/{id} with "Authorization: Bearer <--token>".
Answers the Opportunity resource (name partners/P/opportunities/ID, salesStage,
qualificationState, externalSystemId, createDate {year, month, day}, ...) or a Google error
{"error": {"code", "message", "status"}}: 401 UNAUTHENTICATED for a wrong token, 403
PERMISSION_DENIED for another partner, 404 NOT_FOUND for an unknown id.

Control (see fakelib): /__behave keys are an opportunity id or "*"; error_type is the Google
status ("RESOURCE_EXHAUSTED", "UNAVAILABLE", ...). Counters: total, get, get:<id>,
unauthenticated.
"""

import argparse
import json
import os
import re
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakelib  # noqa: E402

PARTNER = "1234567"
TOKEN = "ya29.gcp-test-token-SECRET"


def opp(oid, qs, stage, crm, date, **extra):
    o = {"name": "partners/%s/opportunities/%s" % (PARTNER, oid), "lead": "", "notes": "",
         "dealSize": 120000, "dealCurrencyCode": "USD", "sourceSystem": "PARTNER_PORTAL",
         "salesStage": stage, "qualificationState": qs, "isConfidential": False,
         "createDate": {"year": date[0], "month": date[1], "day": date[2]},
         "submitDate": {"year": date[0], "month": date[1], "day": date[2]}}
    if crm is not None:
        o["externalSystemId"] = crm
    o.update(extra)
    return o


BUILTIN = [
    opp("1001", "QUALIFIED", "QUALIFY", "006G0000001", (2025, 3, 4)),
    opp("1002", "UNQUALIFIED", "PROSPECT", "006G0000002", (2025, 4, 5)),
    opp("1003", "QUALIFICATION_STATE_UNSPECIFIED", "PROSPECT", None, (2025, 5, 6)),
    opp("1004", "QUALIFIED", "QUALIFY", "006G0000004", (2025, 6, 7),
        createTime="2025-06-07T12:34:56Z"),
]

CODES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
         404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


class GcpState(fakelib.FakeState):
    def __init__(self, opps):
        super().__init__()
        self.opps = {o["name"].rsplit("/", 1)[1]: o for o in opps}


class GcpHandler(fakelib.FakeHandler):
    def send_error_response(self, status, error_type, message):
        self.send_json(status, {"error": {"code": status, "message": message or "error",
                                          "status": error_type or CODES.get(status, "UNKNOWN")}})

    def handle_api(self, method):
        st = self.state
        url = urllib.parse.urlsplit(self.path)
        m = re.fullmatch(r"/v1/partners/([^/]+)/opportunities/([^/]+)", url.path)
        if method != "GET" or not m:
            return self.send_error_response(404, "NOT_FOUND", "no such method")
        partner, oid = (urllib.parse.unquote(x) for x in m.groups())
        st.count("get", "get:" + oid)
        if self.headers.get("Authorization") != "Bearer " + TOKEN:
            st.bump("unauthenticated")
            return self.send_error_response(401, "UNAUTHENTICATED",
                                            "Request had invalid authentication credentials.")
        if partner != PARTNER:
            return self.send_error_response(403, "PERMISSION_DENIED", "not your partner id")
        if self.apply_behaviour(st.behaviour(oid)):
            return
        o = st.opps.get(oid)
        if o is None:
            return self.send_error_response(404, "NOT_FOUND", "Opportunity not found")
        self.send_json(200, o)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data")
    ap.add_argument("--delay-ms", type=int, default=0)
    a = ap.parse_args()
    opps = json.load(open(a.data)) if a.data else BUILTIN
    st = GcpState(opps)
    st.delay_ms = a.delay_ms
    fakelib.serve(GcpHandler, st)


if __name__ == "__main__":
    main()
