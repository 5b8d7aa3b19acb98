#!/usr/bin/python3
"""fake_ace.py - a loopback fake of the AWS Partner Central Selling API (ACE).

Speaks the awsJson1_0 wire format dealgate uses: POST / with Content-Type
application/x-amz-json-1.0 and X-Amz-Target AWSPartnerCentralSelling.GetOpportunity or
.ListOpportunities. Every API request's SigV4 signature is recomputed from what arrived (the
signed headers as received, the body's SHA-256) with the test credentials; a bad or stale one
gets 403 InvalidSignatureException, like AWS. Errors carry x-amzn-ErrorType and __type.

Records are the public GetOpportunity sample (testdata/ace/GetOpportunity.response.json) with
per-record overrides: the built-in set below, or --data FILE (a JSON list of overrides), plus
--generate N synthetic ones (O3000000+i, PartnerOpportunityIdentifier BENCH-i).
ListOpportunities pages (MaxResults, capped by --page-size) with an opaque NextToken, sorts by
LastModifiedDate and honours LastModifiedDate.AfterLastModifiedDate.

Control (see fakelib): /__behave keys are an opportunity id, "GetOpportunity",
"ListOpportunities" or "*"; error_type picks the exception (ThrottlingException, ...).
POST /__data {"add": [overrides]} adds or replaces records (LastModifiedDate defaults to now).
Counters: total, GetOpportunity, GetOpportunity:<id>, ListOpportunities, bad_signature.

  fake_ace.py [--data F] [--generate N] [--delay-ms N] [--page-size N] [--session-token T]
  fake_ace.py --selftest DIR   check the verifier against the SigV4 vectors in DIR
"""

import argparse
import copy
import datetime
import hashlib
import hmac
import json
import os
import re
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakelib  # noqa: E402

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"
SERVICE = "partnercentral-selling"
TARGET_PREFIX = "AWSPartnerCentralSelling."

# The built-in records: overrides of the public sample.
BUILTIN = [
    {"Id": "O1111111"},  # the sample as published: Approved, no CRM id
    {"Id": "O2000001", "PartnerOpportunityIdentifier": "006A0000001", "Origin": "Partner Referral",
     "LifeCycle": {"ReviewStatus": "Approved"}, "CreatedDate": "2025-01-10T08:00:00Z",
     "LastModifiedDate": "2025-01-11T08:00:00Z"},
    {"Id": "O2000002", "PartnerOpportunityIdentifier": "006B0000002",
     "LifeCycle": {"ReviewStatus": "Rejected"}, "CreatedDate": "2025-02-10T08:00:00Z",
     "LastModifiedDate": "2025-02-11T08:00:00Z"},
    {"Id": "O2000003", "PartnerOpportunityIdentifier": "006C0000003",
     "LifeCycle": {"ReviewStatus": "Pending Submission"}, "CreatedDate": "2025-03-10T08:00:00Z",
     "LastModifiedDate": "2025-03-11T08:00:00Z"},
    {"Id": "O2000004", "PartnerOpportunityIdentifier": "006D0000004", "Origin": "AWS Referral",
     "LifeCycle": {"ReviewStatus": "In review"}, "CreatedDate": "2025-04-10T08:00:00Z",
     "LastModifiedDate": "2025-04-11T08:00:00Z"},
    # one deal registered twice: the approved one must win
    {"Id": "O2000005", "PartnerOpportunityIdentifier": "006E0000005",
     "LifeCycle": {"ReviewStatus": "Rejected"}, "CreatedDate": "2025-05-10T08:00:00Z",
     "LastModifiedDate": "2025-05-12T08:00:00Z"},
    {"Id": "O2000006", "PartnerOpportunityIdentifier": "006E0000005",
     "LifeCycle": {"ReviewStatus": "Approved"}, "CreatedDate": "2025-05-11T08:00:00Z",
     "LastModifiedDate": "2025-05-11T09:00:00Z"},
]


# ---- SigV4 -------------------------------------------------------------------------------

def _sha256(b):
    return hashlib.sha256(b).hexdigest()


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def canonical_headers(headers, signed):
    """headers: list of (name, value) as received. Returns the canonical header block or
    raises KeyError naming a signed header the request does not carry."""
    lines = []
    for name in signed:
        vals = [re.sub(r"\s+", " ", v.strip()) for (k, v) in headers if k.lower() == name]
        if not vals:
            raise KeyError(name)
        lines.append("%s:%s\n" % (name, ",".join(vals)))
    return "".join(lines)


def sigv4(method, path, query, headers, body, signed, amz_date, akid, secret, region, service,
          payload_hash=None):
    """Returns (canonical_request, string_to_sign, signature) for a header-signed request."""
    signed = sorted(h.lower() for h in signed)
    if payload_hash is None:
        payload_hash = _sha256(body)
    qs = "&".join(sorted(query.split("&"))) if query else ""
    creq = "\n".join([method, path, qs, canonical_headers(headers, signed), ";".join(signed),
                      payload_hash])
    scope = "%s/%s/%s/aws4_request" % (amz_date[:8], region, service)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, _sha256(creq.encode())])
    k = _hmac(("AWS4" + secret).encode(), amz_date[:8])
    k = _hmac(_hmac(_hmac(k, region), service), "aws4_request")
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    return creq, sts, sig


AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,"
                     r"\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$")


def verify(method, path, headers, body, session_token):
    """Returns None when the request is signed right, else (error_type, message)."""
    auths = [v for (k, v) in headers if k.lower() == "authorization"]
    if len(auths) != 1:
        return ("MissingAuthenticationTokenException", "Missing Authentication Token")
    m = AUTH_RE.match(auths[0].strip())
    if not m:
        return ("IncompleteSignatureException", "Authorization header malformed")
    akid, day, region, service, signed, sig = m.groups()
    if akid != ACCESS_KEY:
        return ("UnrecognizedClientException", "The security token included in the request is invalid.")
    if region != REGION or service != SERVICE:
        return ("InvalidSignatureException", "Credential should be scoped to a valid region/service.")
    dates = [v for (k, v) in headers if k.lower() == "x-amz-date"]
    if not dates:
        return ("IncompleteSignatureException", "X-Amz-Date missing")
    amz_date = dates[0].strip()
    try:
        t = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc)
    except ValueError:
        return ("IncompleteSignatureException", "X-Amz-Date malformed")
    if abs((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()) > 900:
        return ("InvalidSignatureException", "Signature expired")
    if amz_date[:8] != day:
        return ("InvalidSignatureException", "Date in Credential scope does not match")
    signed_list = signed.split(";")
    for required in ("host", "x-amz-date"):
        if required not in signed_list:
            return ("InvalidSignatureException", "%s must be signed" % required)
    toks = [v for (k, v) in headers if k.lower() == "x-amz-security-token"]
    if session_token:
        if toks != [session_token] or "x-amz-security-token" not in signed_list:
            return ("UnrecognizedClientException", "The security token included in the request is invalid.")
    elif toks:
        return ("UnrecognizedClientException", "The security token included in the request is invalid.")
    p, _, q = path.partition("?")
    try:
        _, _, want = sigv4(method, p, q, headers, body, signed_list, amz_date, ACCESS_KEY,
                           SECRET_KEY, REGION, SERVICE)
    except KeyError as e:
        return ("InvalidSignatureException", "signed header %s not in the request" % e)
    if not hmac.compare_digest(want, sig):
        return ("InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided.")
    return None


def selftest(vector_dir):
    """Checks canonical request, string to sign and signature against the header variants of
    the vectors in vector_dir, byte for byte. Returns the number of failures."""
    failures = 0
    for name in ("get-vanilla", "post-vanilla", "post-x-www-form-urlencoded"):
        d = os.path.join(vector_dir, name)
        ctx = json.load(open(os.path.join(d, "context.json")))
        raw = open(os.path.join(d, "request.txt"), "rb").read().decode()
        head, _, body = raw.partition("\n\n")
        lines = head.split("\n")
        method, path, _ = lines[0].split(" ")
        headers = [tuple(x.split(":", 1)) for x in lines[1:] if x]
        t = datetime.datetime.strptime(ctx["timestamp"], "%Y-%m-%dT%H:%M:%SZ")
        amz_date = t.strftime("%Y%m%dT%H%M%SZ")
        headers.append(("X-Amz-Date", amz_date))
        if ctx.get("sign_body"):
            headers.append(("x-amz-content-sha256", _sha256(body.encode())))
        signed = [k.lower() for (k, _) in headers]
        p, _, q = path.partition("?")
        creq, sts, sig = sigv4(method, p, q, headers, body.encode(), signed, amz_date,
                               ctx["credentials"]["access_key_id"],
                               ctx["credentials"]["secret_access_key"], ctx["region"],
                               ctx["service"])
        for got, fname in ((creq, "header-canonical-request.txt"),
                           (sts, "header-string-to-sign.txt"),
                           (sig, "header-signature.txt")):
            want = open(os.path.join(d, fname), "rb").read().decode()
            ok = got == want
            failures += not ok
            print("%s %s/%s" % ("ok  " if ok else "FAIL", name, fname))
    return failures


# ---- the API -----------------------------------------------------------------------------

class AceState(fakelib.FakeState):
    def __init__(self, template, records, page_size, session_token):
        super().__init__()
        self.template = template
        self.records = {r["Id"]: r for r in records}
        self.page_size = page_size
        self.session_token = session_token


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(s):
    return datetime.datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")


SUMMARY_KEYS = ("Arn", "Catalog", "CreatedDate", "Customer", "Id", "LastModifiedDate",
                "OpportunityType", "PartnerOpportunityIdentifier", "Project")


def summary(r):
    s = {k: r.get(k) for k in SUMMARY_KEYS}
    s["LifeCycle"] = {k: v for k, v in (r.get("LifeCycle") or {}).items()
                      if k != "NextStepsHistory"}
    return s


class AceHandler(fakelib.FakeHandler):
    def send_error_response(self, status, error_type, message):
        et = error_type or "InternalServerException"
        self.send_raw(status, json.dumps({"__type": et, "message": message or et}),
                      headers={"x-amzn-ErrorType": et + ":http://internal.amazon.com/coral/com.amazonaws.partnercentral/"})

    def aws_error(self, status, et, msg):
        self.send_json(status, {"__type": "com.amazonaws.partnercentral#" + et, "message": msg},
                       headers={"x-amzn-ErrorType": et})

    def handle_api(self, method):
        st = self.state
        body = self.read_body()
        headers = list(self.headers.items())
        if method != "POST" or self.path != "/":
            st.count("bad_request")
            return self.aws_error(404, "UnknownOperationException", "POST / only")
        bad = verify(method, self.path, headers, body, st.session_token)
        if bad:
            st.count("bad_signature")
            return self.aws_error(403, bad[0], bad[1])
        ctype = self.headers.get("Content-Type", "")
        target = self.headers.get("X-Amz-Target", "")
        if ctype != "application/x-amz-json-1.0" or not target.startswith(TARGET_PREFIX):
            st.count("bad_request")
            return self.aws_error(400, "UnknownOperationException", "bad content type or target")
        op = target[len(TARGET_PREFIX):]
        try:
            req = json.loads(body)
        except ValueError:
            return self.aws_error(400, "SerializationException", "body is not JSON")
        if req.get("Catalog") != "AWS":
            st.count(op)
            return self.aws_error(400, "ValidationException", "Catalog must be AWS")
        if op == "GetOpportunity":
            return self.get_opportunity(req)
        if op == "ListOpportunities":
            return self.list_opportunities(req)
        st.count("bad_request")
        return self.aws_error(400, "UnknownOperationException", op)

    def get_opportunity(self, req):
        st = self.state
        ident = req.get("Identifier")
        if not isinstance(ident, str) or not re.fullmatch(r"O[0-9]{1,19}", ident):
            st.count("GetOpportunity", "GetOpportunity:invalid")
            return self.aws_error(400, "ValidationException", "Identifier is invalid")
        st.count("GetOpportunity", "GetOpportunity:" + ident)
        if self.apply_behaviour(st.behaviour(ident, "GetOpportunity")):
            return
        with st.lock:
            rec = copy.deepcopy(st.records.get(ident))
        if rec is None:
            return self.aws_error(404, "ResourceNotFoundException",
                                  "Opportunity %s not found" % ident)
        self.send_json(200, rec)

    def list_opportunities(self, req):
        st = self.state
        st.count("ListOpportunities")
        if self.apply_behaviour(st.behaviour("ListOpportunities")):
            return
        size = min(int(req.get("MaxResults") or 20), st.page_size)
        after = (req.get("LastModifiedDate") or {}).get("AfterLastModifiedDate")
        sort = req.get("Sort") or {}
        with st.lock:
            recs = list(st.records.values())
        if after:
            a = parse_iso(after)
            recs = [r for r in recs if parse_iso(r["LastModifiedDate"]) > a]
        if sort.get("SortBy") == "LastModifiedDate":
            recs.sort(key=lambda r: (r["LastModifiedDate"], r["Id"]),
                      reverse=sort.get("SortOrder") == "Descending")
        else:
            recs.sort(key=lambda r: r["Id"])
        tok = req.get("NextToken")
        start = 0
        if tok:
            m = re.fullmatch(r"page-(\d+)", tok)
            if not m:
                return self.aws_error(400, "ValidationException", "NextToken is invalid")
            start = int(m.group(1))
        page = recs[start:start + size]
        nxt = "page-%d" % (start + size) if start + size < len(recs) else None
        self.send_json(200, {"NextToken": nxt, "OpportunitySummaries": [summary(r) for r in page]})

    def control_extra(self, method, path, body):
        st = self.state
        if method == "POST" and path == "/__data":
            req = json.loads(body or b"{}")
            with st.lock:
                for over in req.get("add", []):
                    over.setdefault("LastModifiedDate", now_iso())
                    st.records[over["Id"]] = fakelib.deep_merge(st.template, over)
            self.send_json(200, {"ok": True, "records": len(st.records)})
            return True
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data")
    ap.add_argument("--generate", type=int, default=0)
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--page-size", type=int, default=100)
    ap.add_argument("--session-token", default="")
    ap.add_argument("--template")
    ap.add_argument("--selftest")
    a = ap.parse_args()
    if a.selftest:
        sys.exit(1 if selftest(a.selftest) else 0)
    tpl_path = a.template or os.path.join(
        os.environ.get("DG_TESTDATA") or os.path.join(os.path.dirname(__file__), "..", "..", "..",
                                                      "shared", "testdata"),
        "ace", "GetOpportunity.response.json")
    template = json.load(open(tpl_path))
    overrides = json.load(open(a.data)) if a.data else BUILTIN
    records = [fakelib.deep_merge(template, o) for o in overrides]
    for i in range(a.generate):
        records.append(fakelib.deep_merge(template, {
            "Id": "O%d" % (3000000 + i), "PartnerOpportunityIdentifier": "BENCH-%d" % i,
            "LastModifiedDate": "2025-06-01T00:00:00Z"}))
    st = AceState(template, records, a.page_size, a.session_token)
    st.delay_ms = a.delay_ms
    fakelib.serve(AceHandler, st)


if __name__ == "__main__":
    main()
