"""fake_hubspot — a loopback stand-in for the HubSpot CRM objects API dealgate calls.

Read a deal (GET /crm/v3/objects/deals/{id}?properties=...), update it
(PATCH /crm/v3/objects/deals/{id} only: the documented call dealgate must make).
A private-app token is checked on every call; every update is counted and recorded;
`fail_updates = N` answers the next N updates with HTTP 500. Stdlib only.

    fake = FakeHubSpot(token="pat-na1-...").start()
    fake.deals["123"] = {"dealstage": "presentationscheduled"}
    ... fake.url ... fake.updates ... fake.stop()

Run alone: python3 fake_hubspot.py [PORT]   (listens on 127.0.0.1)
"""
import json
import os
import re
import sys
import threading
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakelib  # noqa: E402

DEAL_PATH = re.compile(r"^/crm/v3/objects/deals/([^/?]+)$")


class FakeHubSpot(fakelib.InProcessFake):
    def __init__(self, token="pat-na1-fake-token", properties=("dealstage", "dealgate_block_reason")):
        super().__init__()
        self.token = token
        self.known_properties = set(properties)
        self.deals = {}        # id -> properties

    def start(self, port=0):
        fake = self

        class Handler(fakelib.InProcessHandler):
            def _authed(self):
                if self.headers.get("Authorization") != "Bearer " + fake.token:
                    self._send(401, {"status": "error", "category": "INVALID_AUTHENTICATION",
                                     "message": "Authentication credentials not found."})
                    return False
                return True

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                m = DEAL_PATH.match(u.path)
                if not m:
                    return self._send(404, {"status": "error", "category": "OBJECT_NOT_FOUND",
                                            "message": "no route"})
                if not self._authed():
                    return
                did = urllib.parse.unquote(m.group(1))
                with fake.lock:
                    fake.reads += 1
                    deal = dict(fake.deals[did]) if did in fake.deals else None
                if deal is None:
                    return self._send(404, {"status": "error", "category": "OBJECT_NOT_FOUND",
                                            "message": "resource not found"})
                q = urllib.parse.parse_qs(u.query)
                names = ",".join(q.get("properties", [])).split(",")
                props = {"hs_object_id": did}
                for n in names:
                    if n:
                        props[n] = deal.get(n)
                self._send(200, {"id": did, "properties": props, "archived": False})

            def _apply(self, did, props, how):
                """Returns an error dict or None; caller holds the lock."""
                if did not in fake.deals:
                    return {"status": "error", "category": "OBJECT_NOT_FOUND",
                            "message": "resource not found"}, 404
                bad = [k for k in props if k not in fake.known_properties]
                if bad:
                    return {"status": "error", "category": "VALIDATION_ERROR",
                            "message": "Property values were not valid: %s does not exist" % bad[0]}, 400
                fake.deals[did].update(props)
                fake.updates.append((did, dict(props), how))
                return None, 200

            def do_PATCH(self):
                m = DEAL_PATH.match(urllib.parse.urlsplit(self.path).path)
                body = self._body()
                if not m:
                    return self._send(404, {"status": "error", "message": "no route"})
                if not self._authed():
                    return
                props = json.loads(body).get("properties", {})
                with fake.lock:
                    if fake.fail_updates > 0:
                        fake.fail_updates -= 1
                        return self._send(500, {"status": "error", "category": "INTERNAL_ERROR",
                                                "message": "internal error"})
                    err, st = self._apply(urllib.parse.unquote(m.group(1)), props, "PATCH")
                if err:
                    return self._send(st, err)
                self._send(200, {"id": m.group(1), "properties": props})

        return self._serve(Handler, port)


if __name__ == "__main__":
    f = FakeHubSpot().start(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print("fake HubSpot on %s (token=%s)" % (f.url, f.token), flush=True)
    threading.Event().wait()
