#!/usr/bin/python3
"""fake_gcp.py - loopback fake of the Google Cloud CRM Partners API (stdlib only).

GET /v1/partners/{partner}/opportunities/{id} with "Authorization: Bearer <--token>".
Answers the Opportunity resource (name partners/P/opportunities/ID, salesStage,
qualificationState, externalSystemId, createDate {year, month, day}, ...) or a Google error
{"error": {"code", "message", "status"}}: 401 UNAUTHENTICATED for a wrong token, 403
PERMISSION_DENIED for another partner, 404 NOT_FOUND for an unknown id.

Token endpoint (with --sa-pub PUB.pem): POST /token, a service-account jwt-bearer grant
(form grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer, assertion=<JWT>). The JWT is
checked for real: header alg RS256 (typ JWT, kid a string if present); claims iss = SA_EMAIL,
aud = SA_AUD, scope naming cloud-platform, iat within 5 minutes of now, exp - iat in
(0, 3600]; its RS256 signature verified against PUB.pem with the openssl CLI (Python's
stdlib has no RSA). A bad one gets 400 {"error": "invalid_grant", "error_description": ...};
a good one {"access_token": "ya29.sa-N-...", "expires_in": --expires-in, "token_type":
"Bearer"}, and the API accepts that token until it expires (as well as TOKEN).

--make-sa DIR [--kind rsa|ec] [--name NAME]: no server; writes a fresh key pair made with
`openssl genpkey` (NAME.key.pem, NAME.pub.pem) and a service-account key file NAME.json
(client_email SA_EMAIL, token_uri SA_AUD; mode 0600) into DIR, for a test's temp dir.

Control (see fakelib): /__behave keys are an opportunity id, "token" (the token endpoint:
status + error_type as the OAuth error + message as its description) or "*"; error_type is
the Google status ("RESOURCE_EXHAUSTED", "UNAVAILABLE", ...). POST /__expires {"expires_in":
n} sets the lifetime of the next tokens. GET /__last {"jwt": {"header": ..., "claims": ...}}
shows the last assertion's decoded parts. Counters: total, get, get:<id>, unauthenticated,
token, token_rejected.
"""

import argparse
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakelib  # noqa: E402

PARTNER = "1234567"
TOKEN = "ya29.gcp-test-token-SECRET"
SA_EMAIL = "dealgate-test@dg-test.iam.gserviceaccount.com"
SA_AUD = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


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
    def __init__(self, opps, sa_pub=None, expires_in=3600):
        super().__init__()
        self.opps = {o["name"].rsplit("/", 1)[1]: o for o in opps}
        self.sa_pub = sa_pub
        self.expires_in = expires_in
        self.issued = {}  # token -> expiry (time.monotonic)
        self.n = 0
        self.last = {}


def b64url_decode(s):
    if not re.fullmatch(r"[A-Za-z0-9_-]*", s):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def rs256_verify(pub, data, sig):
    """True if sig is data's RS256 signature under the public key file pub (openssl CLI)."""
    with tempfile.TemporaryDirectory() as d:
        dp, sp = os.path.join(d, "data"), os.path.join(d, "sig")
        with open(dp, "wb") as f:
            f.write(data)
        with open(sp, "wb") as f:
            f.write(sig)
        r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pub, "-signature", sp, dp],
                           capture_output=True)
        return r.returncode == 0


def check_jwt(st, jwt):
    """Returns None for a valid assertion, else why it is not."""
    parts = jwt.split(".")
    if len(parts) != 3:
        return "not a JWT"
    try:
        head = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        sig = b64url_decode(parts[2])
    except ValueError:
        return "malformed JWT"
    with st.lock:
        st.last["jwt"] = {"header": head, "claims": claims}
    if not isinstance(head, dict) or not isinstance(claims, dict):
        return "malformed JWT"
    if head.get("alg") != "RS256" or head.get("typ", "JWT") != "JWT" or \
            not isinstance(head.get("kid", ""), str):
        return "Invalid JWT header"
    if claims.get("iss") != SA_EMAIL:
        return "Invalid grant: account not found"
    if claims.get("aud") != SA_AUD:
        return "Invalid JWT: aud"
    if SCOPE not in str(claims.get("scope", "")).split(" "):
        return "Invalid JWT: scope"
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or not isinstance(exp, int) or abs(iat - time.time()) > 300 \
            or not 0 < exp - iat <= 3600:
        return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable " \
               "timeframe. Check your iat and exp values in the JWT claim."
    if not rs256_verify(st.sa_pub, (parts[0] + "." + parts[1]).encode(), sig):
        return "Invalid JWT Signature."
    return None


class GcpHandler(fakelib.FakeHandler):
    def send_error_response(self, status, error_type, message):
        self.send_json(status, {"error": {"code": status, "message": message or "error",
                                          "status": error_type or CODES.get(status, "UNKNOWN")}})

    def authorized(self):
        st = self.state
        auth = self.headers.get("Authorization", "")
        if auth == "Bearer " + TOKEN:
            return True
        with st.lock:
            exp = st.issued.get(auth[7:]) if auth.startswith("Bearer ") else None
        return exp is not None and time.monotonic() < exp

    def token(self):
        st = self.state
        st.count("token")
        form = {k: v[0] for k, v in
                urllib.parse.parse_qs(self.read_body().decode(), keep_blank_values=True).items()}
        b = st.behaviour("token")
        if b and b.get("delay_ms"):
            time.sleep(b["delay_ms"] / 1000.0)
        if b and b.get("status"):
            return self.send_json(int(b["status"]),
                                  {"error": b.get("error_type") or "invalid_grant",
                                   "error_description": b.get("message") or "refused"})
        if st.sa_pub is None:
            return self.send_json(400, {"error": "invalid_request",
                                        "error_description": "no service account (--sa-pub)"})
        if form.get("grant_type") != GRANT:
            why = "Invalid grant_type"
        else:
            why = check_jwt(st, form.get("assertion", ""))
        if why:
            st.bump("token_rejected")
            return self.send_json(400, {"error": "invalid_grant", "error_description": why})
        with st.lock:
            st.n += 1
            access = "ya29.sa-%d-%s" % (st.n, os.urandom(4).hex())
            st.issued[access] = time.monotonic() + st.expires_in
            expires_in = st.expires_in
        self.send_json(200, {"access_token": access, "expires_in": expires_in,
                             "token_type": "Bearer"})

    def control_extra(self, method, path, body):
        st = self.state
        if method == "POST" and path == "/__expires":
            with st.lock:
                st.expires_in = int(json.loads(body or b"{}").get("expires_in", 3600))
            self.send_json(200, {"ok": True})
            return True
        return None

    def handle_api(self, method):
        st = self.state
        url = urllib.parse.urlsplit(self.path)
        if method == "POST" and url.path == "/token":
            return self.token()
        m = re.fullmatch(r"/v1/partners/([^/]+)/opportunities/([^/]+)", url.path)
        if method != "GET" or not m:
            return self.send_error_response(404, "NOT_FOUND", "no such method")
        partner, oid = (urllib.parse.unquote(x) for x in m.groups())
        st.count("get", "get:" + oid)
        if not self.authorized():
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


def make_sa(d, kind="rsa", name="sa"):
    """Writes NAME.key.pem, NAME.pub.pem and the key file NAME.json (0600) into d."""
    key, pub, js = (os.path.join(d, name + x) for x in (".key.pem", ".pub.pem", ".json"))
    opts = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"] if kind == "rsa" else \
        ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
    old = os.umask(0o077)
    try:
        subprocess.run(["openssl", "genpkey"] + opts + ["-out", key], check=True,
                       capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out", pub], check=True,
                       capture_output=True)
        with open(key) as f:
            pem = f.read()
        sa = {"type": "service_account", "project_id": "dg-test",
              "private_key_id": os.urandom(20).hex(), "private_key": pem,
              "client_email": SA_EMAIL, "client_id": "100000000000000000001",
              "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": SA_AUD}
        fd = os.open(js, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(sa, f, indent=2)
    finally:
        os.umask(old)
    return js


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data")
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--sa-pub")
    ap.add_argument("--expires-in", type=int, default=3600)
    ap.add_argument("--make-sa")
    ap.add_argument("--kind", default="rsa")
    ap.add_argument("--name", default="sa")
    a = ap.parse_args()
    if a.make_sa:
        make_sa(a.make_sa, a.kind, a.name)
        return
    opps = json.load(open(a.data)) if a.data else BUILTIN
    st = GcpState(opps, a.sa_pub, a.expires_in)
    st.delay_ms = a.delay_ms
    fakelib.serve(GcpHandler, st)


if __name__ == "__main__":
    main()
