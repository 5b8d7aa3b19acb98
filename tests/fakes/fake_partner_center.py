#!/usr/bin/python3
"""fake_partner_center.py - loopback fake of Microsoft Partner Center referrals and the Azure
AD token endpoint (stdlib only).

Token endpoint: POST /common/oauth2/token (Azure AD v1: form with grant_type=refresh_token,
client_id, client_secret, refresh_token, resource=https://api.partner.microsoft.com) or
POST /common/oauth2/v2.0/token (scope=https://api.partner.microsoft.com/.default ...).
Answers {"token_type": "Bearer", "access_token": "at-N", "expires_in": "<--expires-in>",
"refresh_token": "rt-N"}: the refresh token rotates on every grant (--no-rotate keeps it),
and a used or unknown refresh token gets 400 invalid_grant (AADSTS70008), like Azure AD.
Access tokens expire after --expires-in seconds of the fake's clock.

API: GET /v1.0/engagements/referrals/{id} and GET /v1.0/engagements/referrals?$filter=
externalReferenceId eq '<crm id>' ('' for a quote), paged by --page-size with an absolute
@odata.nextLink ($skipToken). A missing or unknown bearer token gets 401.

Control (see fakelib): /__behave keys are a referral id, "list", "api" (every API call),
"token" or "*" (everything; status 401
makes the API answer 401 even to a valid token). POST /__nextlink {"origin": "http://h:p"}
makes nextLinks point at another origin. GET /__last {"filter": ..., "form": {...}} shows the
last decoded $filter and token form (secrets masked). Counters: total, get, get:<id>, list,
token, token_rejected, unauthorized.
"""

import argparse
import json
import os
import re
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakelib  # noqa: E402

CLIENT_ID = "pc-client-id"
CLIENT_SECRET = "pc-client-secret-XYZ"
FIRST_REFRESH = "rt-initial-SECRET"
RESOURCE = "https://api.partner.microsoft.com"


def rid(n):
    return "11111111-aaaa-4bbb-8ccc-%012d" % n


def referral(n, status, sub, crm, direction, created):
    r = {"id": rid(n), "engagementId": "e-%d" % n, "name": "Referral %d" % n, "status": status,
         "qualification": "SalesQualified", "type": "Shared", "direction": direction,
         "createdDateTime": created, "updatedDateTime": created,
         "customerProfile": {"name": "Contoso %d" % n}}
    if sub is not None:
        r["substatus"] = sub
    if crm is not None:
        r["externalReferenceId"] = crm
    return r


BUILTIN = [
    referral(1, "Active", "Accepted", "006PC0000001", "Incoming", "2025-01-05T10:00:00Z"),
    referral(2, "Closed", "Declined", "006PC0000002", "Outgoing", "2025-02-05T10:00:00Z"),
    referral(3, "New", "Pending", "006PC0000003", "Outgoing", "2025-03-05T10:00:00Z"),
    referral(4, "Active", "Received", "O'Brien-1", "Incoming", "2025-04-05T10:00:00Z"),
    referral(5, "Active", None, None, "Outgoing", "2025-05-05T10:00:00Z"),
    # three referrals for one deal, to page through: the accepted one must win
    referral(6, "New", "Pending", "006MANY", "Outgoing", "2025-06-01T10:00:00Z"),
    referral(7, "Active", "Accepted", "006MANY", "Outgoing", "2025-06-02T10:00:00Z"),
    referral(8, "Closed", "Declined", "006MANY", "Outgoing", "2025-06-03T10:00:00Z"),
]


class PcState(fakelib.FakeState):
    def __init__(self, referrals, page_size, expires_in, rotate):
        super().__init__()
        self.referrals = {r["id"].lower(): r for r in referrals}
        self.order = [r["id"].lower() for r in referrals]
        self.page_size = page_size
        self.expires_in = expires_in
        self.rotate = rotate
        self.refresh_token = FIRST_REFRESH
        self.access = {}  # token -> expiry (time.monotonic)
        self.n = 0
        self.nextlink_origin = None
        self.last = {}


FILTER_RE = re.compile(r"^externalReferenceId eq '((?:[^']|'')*)'$")


class PcHandler(fakelib.FakeHandler):
    def send_error_response(self, status, error_type, message):
        self.send_json(status, {"code": status, "description": message or error_type or "error"})

    def handle_api(self, method):
        st = self.state
        url = urllib.parse.urlsplit(self.path)
        if method == "POST" and re.fullmatch(r"/[^/]+/oauth2(/v2\.0)?/token", url.path):
            return self.token(url.path)
        if method != "GET":
            return self.send_json(405, {"code": 405, "description": "GET only"})
        m = re.fullmatch(r"/v1\.0/engagements/referrals(?:/([^/]+))?", url.path)
        if not m:
            return self.send_json(404, {"code": 404, "description": "no such path"})
        ident = urllib.parse.unquote(m.group(1)) if m.group(1) else None
        st.count("get" if ident else "list", *(["get:" + ident] if ident else []))
        b = st.behaviour(ident or "list", "api")
        if b and int(b.get("status") or 0) == 401:
            st.bump("unauthorized")
            return self.send_json(401, {"code": 401, "description": "token expired"})
        if not self.authorized():
            st.bump("unauthorized")
            return self.send_json(401, {"code": 401, "description": "Unauthorized"})
        if self.apply_behaviour(b):
            return
        if ident:
            r = st.referrals.get(ident.lower())
            if r is None:
                return self.send_json(404, {"code": 404, "description": "Referral not found"})
            return self.send_json(200, r)
        q = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        flt = (q.get("$filter") or [None])[0]
        with st.lock:
            st.last["filter"] = flt
        fm = FILTER_RE.match(flt or "")
        if not fm:
            return self.send_json(400, {"code": 400, "description": "unsupported $filter"})
        crm = fm.group(1).replace("''", "'")
        hits = [st.referrals[k] for k in st.order
                if st.referrals[k].get("externalReferenceId") == crm]
        skip = int((q.get("$skipToken") or ["0"])[0])
        page = hits[skip:skip + st.page_size]
        out = {"totalCount": len(hits), "value": page}
        if skip + st.page_size < len(hits):
            origin = st.nextlink_origin or "http://%s:%d" % self.server.server_address[:2]
            out["@odata.nextLink"] = "%s/v1.0/engagements/referrals?%s" % (
                origin, urllib.parse.urlencode({"$filter": flt, "$skipToken": skip + st.page_size},
                                               quote_via=urllib.parse.quote))
        self.send_json(200, out)

    def authorized(self):
        st = self.state
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return False
        with st.lock:
            exp = st.access.get(auth[7:])
        return exp is not None and time.monotonic() < exp

    def token(self, path):
        st = self.state
        st.count("token")
        body = self.read_body().decode()
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()}
        with st.lock:
            st.last["form"] = {k: ("***" if k in ("client_secret", "refresh_token") else v)
                               for k, v in form.items()}
        if self.apply_behaviour(st.behaviour("token")):
            return
        v2 = "/v2.0/" in path
        scope_ok = (form.get("scope", "").split(" ")[0] == RESOURCE + "/.default") if v2 else \
            form.get("resource") == RESOURCE
        if form.get("grant_type") != "refresh_token" or not scope_ok:
            return self.aad_error(400, "invalid_request", 900144, "bad grant or resource")
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return self.aad_error(401, "invalid_client", 7000215, "Invalid client secret")
        with st.lock:
            if form.get("refresh_token") != st.refresh_token:
                st.calls["token_rejected"] = st.calls.get("token_rejected", 0) + 1
                rejected = True
            else:
                rejected = False
                st.n += 1
                access = "at-%d-%s" % (st.n, os.urandom(4).hex())
                st.access[access] = time.monotonic() + st.expires_in
                if st.rotate:
                    st.refresh_token = "rt-%d-%s" % (st.n, os.urandom(4).hex())
                refresh = st.refresh_token
        if rejected:
            return self.aad_error(400, "invalid_grant", 70008,
                                  "The refresh token has expired or was already used")
        self.send_json(200, {"token_type": "Bearer", "expires_in": str(st.expires_in),
                             "ext_expires_in": str(st.expires_in), "access_token": access,
                             "refresh_token": refresh, "resource": RESOURCE})

    def aad_error(self, status, code, num, desc):
        self.send_json(status, {"error": code,
                                "error_description": "AADSTS%d: %s. Trace ID: 0000" % (num, desc),
                                "error_codes": [num]})

    def control_extra(self, method, path, body):
        st = self.state
        if method == "POST" and path == "/__nextlink":
            st.nextlink_origin = json.loads(body or b"{}").get("origin")
            self.send_json(200, {"ok": True})
            return True
        if method == "POST" and path == "/__data":
            req = json.loads(body or b"{}")
            with st.lock:
                for r in req.get("add", []):
                    if r["id"].lower() not in st.referrals:
                        st.order.append(r["id"].lower())
                    st.referrals[r["id"].lower()] = r
            self.send_json(200, {"ok": True})
            return True
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data")
    ap.add_argument("--page-size", type=int, default=100)
    ap.add_argument("--expires-in", type=int, default=3600)
    ap.add_argument("--no-rotate", action="store_true")
    ap.add_argument("--delay-ms", type=int, default=0)
    a = ap.parse_args()
    refs = json.load(open(a.data)) if a.data else BUILTIN
    st = PcState(refs, a.page_size, a.expires_in, not a.no_rotate)
    st.delay_ms = a.delay_ms
    fakelib.serve(PcHandler, st)


if __name__ == "__main__":
    main()
