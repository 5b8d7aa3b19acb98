"""fake_salesforce — a loopback stand-in for the parts of Salesforce dealgate calls.

OAuth2 client credentials (POST /services/oauth2/token), read an Opportunity
(GET /services/data/vXX.X/sobjects/Opportunity/{id}?fields=...), update it (PATCH only: the
documented call dealgate must make). Tokens are checked on every call; every update is
counted and recorded; `fail_updates = N` answers the next N updates with HTTP 500. Stdlib only.

    fake = FakeSalesforce(client_id="cid", client_secret="csec").start()
    fake.opportunities["006A"] = {"StageName": "Demo"}
    ... fake.url ... fake.updates ... fake.stop()

Run alone: python3 fake_salesforce.py [PORT]   (listens on 127.0.0.1)
"""
import json
import os
import re
import sys
import threading
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakelib  # noqa: E402

OPP_PATH = re.compile(r"^/services/data/v\d+\.\d+/sobjects/Opportunity/([^/?]+)$")


class FakeSalesforce(fakelib.InProcessFake):
    def __init__(self, client_id="sf-client-id", client_secret="sf-client-secret"):
        super().__init__()  # updates, reads, fail_updates (answered with 500), lock
        self.client_id = client_id
        self.client_secret = client_secret
        self.opportunities = {}      # id -> fields
        self.tokens_issued = 0
        self.valid_tokens = set()
        self.lock_updates = 0        # answer the next N updates with 400 UNABLE_TO_LOCK_ROW
        self.fail_reads = 0

    # -- control ------------------------------------------------------------------------
    def start(self, port=0):
        fake = self

        class Handler(fakelib.InProcessHandler):
            def _authed(self):
                h = self.headers.get("Authorization", "")
                with fake.lock:
                    ok = h.startswith("Bearer ") and h[7:] in fake.valid_tokens
                if not ok:
                    self._send(401, [{"message": "Session expired or invalid",
                                      "errorCode": "INVALID_SESSION_ID"}])
                return ok

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                m = OPP_PATH.match(u.path)
                if not m:
                    return self._send(404, [{"errorCode": "NOT_FOUND", "message": "no route"}])
                if not self._authed():
                    return
                oid = urllib.parse.unquote(m.group(1))
                with fake.lock:
                    fake.reads += 1
                    if fake.fail_reads > 0:
                        fake.fail_reads -= 1
                        return self._send(503, [{"errorCode": "SERVER_UNAVAILABLE",
                                                 "message": "try later"}])
                    opp = fake.opportunities.get(oid)
                    opp = dict(opp) if opp is not None else None
                if opp is None:
                    return self._send(404, [{"errorCode": "NOT_FOUND",
                                             "message": "The requested resource does not exist"}])
                q = urllib.parse.parse_qs(u.query)
                fields = q.get("fields", [""])[0].split(",") if "fields" in q else list(opp)
                out = {"attributes": {"type": "Opportunity"}, "Id": oid}
                for f in fields:
                    if f:
                        out[f] = opp.get(f)
                self._send(200, out)

            def do_POST(self):
                u = urllib.parse.urlsplit(self.path)
                if u.path == "/services/oauth2/token":
                    form = urllib.parse.parse_qs(self._body().decode())
                    ok = (form.get("grant_type") == ["client_credentials"] and
                          form.get("client_id") == [fake.client_id] and
                          form.get("client_secret") == [fake.client_secret])
                    if not ok:
                        return self._send(400, {"error": "invalid_client",
                                                "error_description": "invalid client credentials"})
                    with fake.lock:
                        fake.tokens_issued += 1
                        tok = "00Dfake!token-%d" % fake.tokens_issued
                        fake.valid_tokens.add(tok)
                    return self._send(200, {"access_token": tok, "instance_url": fake.url,
                                            "token_type": "Bearer", "issued_at": "1700000000000"})
                self._send(404, [{"errorCode": "NOT_FOUND", "message": "no route"}])

            def do_PATCH(self):
                self._patch(urllib.parse.urlsplit(self.path).path, "PATCH")

            def _patch(self, path, how):
                m = OPP_PATH.match(path)
                body = self._body()
                if not m:
                    return self._send(404, [{"errorCode": "NOT_FOUND", "message": "no route"}])
                if not self._authed():
                    return
                oid = urllib.parse.unquote(m.group(1))
                try:
                    fields = json.loads(body)
                except ValueError:
                    return self._send(400, [{"errorCode": "JSON_PARSER_ERROR", "message": "bad"}])
                with fake.lock:
                    if fake.fail_updates > 0:
                        fake.fail_updates -= 1
                        return self._send(500, [{"errorCode": "UNKNOWN_EXCEPTION",
                                                 "message": "An unexpected error occurred"}])
                    if fake.lock_updates > 0:
                        fake.lock_updates -= 1
                        return self._send(400, [{"errorCode": "UNABLE_TO_LOCK_ROW",
                                                 "message": "unable to obtain exclusive access "
                                                            "to this record"}])
                    if oid not in fake.opportunities:
                        return self._send(404, [{"errorCode": "NOT_FOUND",
                                                 "message": "The requested resource does not exist"}])
                    bad = [k for k in fields if k not in ("StageName", "Dealgate_Block_Reason__c")]
                    if bad:
                        return self._send(400, [{"errorCode": "INVALID_FIELD",
                                                 "message": "No such column '%s' on sobject of type "
                                                            "Opportunity" % bad[0]}])
                    fake.opportunities[oid].update(fields)
                    fake.updates.append((oid, fields, how))
                self._send(204)

        return self._serve(Handler, port)

    def revoke_tokens(self):
        with self.lock:
            self.valid_tokens.clear()


if __name__ == "__main__":
    f = FakeSalesforce().start(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print("fake Salesforce on %s (client_id=%s)" % (f.url, f.client_id), flush=True)
    threading.Event().wait()
