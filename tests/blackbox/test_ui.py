"""Black-box: the manager page GET /ui in a real browser (headless Chromium, Debian package
`chromium`): the blocked deal, its owner, amount, stage and reason are on the page; a deal
named with markup renders as text and runs nothing (the page has no script and a strict
Content-Security-Policy, and Chromium reports no violation); comp figures appear only for a
comp reader token; filters; a deal's history; screenshots (laptop and phone) are kept as test
artifacts under the test's temp dir, their paths printed."""
import base64
import hashlib
import html.parser
import os
import re
import shutil
import subprocess

import dgtest
from dgtest import Service, event, WEBHOOK, READER, COMP

XSS = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>"
BOB = 'Bob & Co "big" deal'
svc = None
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

EXTRA = """
[comp]
tolerance = 0.01
fee.aws = 3%
plan.default = 10%
"""


def setup():
    global svc
    config = dgtest.BASE_CONFIG.replace("reader_tokens = {reader}",
                                        "reader_tokens = {reader}, {comp}")
    svc = Service(config=config, extra=EXTRA).start()
    st, d, _ = svc.gate(event("OPP-XSS", name=XSS, owner="jane@example.com", amount="120000.00",
                              account="Acme <Corp>"))
    assert d["outcome"] == "block", d
    st, d, _ = svc.gate(event("OPP-REJECTED", regs={"aws": "O1000002"}, name=BOB,
                              owner="bob@example.com", to="Proposal"))
    assert d["outcome"] == "block", d
    st, d, _ = svc.gate(event("OPP-APPROVED", name="Approved deal", owner="jane@example.com"))
    assert d["outcome"] == "allow", d
    st, d, _ = svc.gate(event("OPP-AZ", clouds=("azure",), name="Azure deal"))
    assert d["outcome"] == "allow", d
    st, r, _ = svc.request("POST", "/v1/commission/check",
                           {"deal_id": "OPP-APPROVED", "rep": "<b>ann</b>",
                            "channel": "marketplace", "cloud": "aws", "acv": "100000.00",
                            "commission_base": "97000.00", "rate": "10%",
                            "commission": "9700.00"}, token=WEBHOOK)
    assert st == 200 and r["violations"] == 1, r


def chromium(path, token, out_dir, shot=None, size="1280,1000"):
    """Loads path with the token as the Basic password; returns (DOM, browser stderr)."""
    assert CHROMIUM, "chromium is not installed (scripts/deps.sh test installs it)"
    url = "http://manager:%s@127.0.0.1:%d%s" % (token, svc.port, path)
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--enable-logging=stderr", "--v=0",
            "--user-data-dir=" + os.path.join(out_dir, "profile"), "--window-size=" + size]
    args += ["--screenshot=" + shot] if shot else ["--dump-dom"]
    p = subprocess.run(args + [url], capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()[-2000:]
    return p.stdout.decode(), p.stderr.decode()


class Rows(html.parser.HTMLParser):
    """Text of each body row of a table (list of cell texts; header rows are left out) per
    <section id=...>, and every link."""

    def __init__(self):
        super().__init__()
        self.sections, self.links, self.section, self.row, self.cell = {}, [], None, None, None
        self.tags = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "section":
            self.section = a.get("id")
            self.sections.setdefault(self.section, [])
        elif tag == "tr":
            self.row = []
        elif tag == "th":
            self.row = None
        elif tag == "td":
            self.cell = ""
        elif tag == "a":
            self.links.append(a.get("href"))

    def handle_endtag(self, tag):
        if tag == "td" and self.row is not None and self.cell is not None:
            self.row.append(self.cell.strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            if self.row and self.section is not None:
                self.sections[self.section].append(self.row)
            self.row = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def rows(page, section):
    p = Rows()
    p.feed(page)
    return p.sections.get(section, []), p


def get_page(path, token=READER):
    st, body, h = svc.get(path, token=token)
    assert st == 200, (st, body)
    assert h["content-type"] == "text/html; charset=utf-8", h
    return body.decode(), h


def test_blocked_deal_in_chromium_escaped_with_screenshots():
    out = os.path.join(svc.dir, "chromium")
    os.makedirs(out, exist_ok=True)
    dom, log = chromium("/ui", READER, out)
    # the blocked deals, with owner, amount, the stage tried and the one-line reason
    blocked, _ = rows(dom, "blocked")
    names = [r[0] for r in blocked]
    assert len(blocked) == 2 and XSS + "Acme <Corp>" in names, blocked
    xss = next(r for r in blocked if r[0].startswith(XSS))
    assert xss[1] == "jane@example.com" and xss[2] == "120,000.00 USD", xss
    assert xss[3] == "aws" and xss[4] == "Demo", xss
    assert xss[5] == "Register this deal in AWS ACE before moving to Demo.", xss
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", xss[6]), xss
    bob = next(r for r in blocked if r[0].startswith(BOB))
    assert bob[4] == "Proposal" and "Rejected" in bob[5], bob
    # markup in a deal name is text: no element was created from it, nothing ran
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;&lt;img" in dom, dom[-3000:]
    assert "<script" not in dom and "<img" not in dom
    assert "<title>Blocked deals · dealgate</title>" in dom
    assert "Content Security Policy" not in log, log  # the style sheet's hash is admitted
    # no comp figures for a reader token
    assert "Commission violations" not in dom and "ann" not in dom and 'id="comp"' not in dom
    # KPI tiles and recent decisions
    assert "Registration rate" in dom and "First-pass rate" in dom
    assert "registration_missing: 1" in dom
    recent, _ = rows(dom, "recent")
    assert len(recent) == 4 and recent[0][1] == "Azure deal", recent
    # screenshots: laptop and phone
    for name, size in (("ui-laptop.png", "1280,1000"), ("ui-phone.png", "390,844")):
        shot = os.path.join(out, name)
        chromium("/ui", COMP, out, shot=shot, size=size)
        with open(shot, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", shot
        assert os.path.getsize(shot) > 10000, shot
        print("artifact: screenshot %s" % shot, flush=True)


def test_comp_section_needs_a_comp_token():
    out = os.path.join(svc.dir, "chromium-comp")
    os.makedirs(out, exist_ok=True)
    dom, log = chromium("/ui", COMP, out)
    comp, _ = rows(dom, "comp")
    assert comp == [["<b>ann</b>", "1", "300.00 USD"]], comp
    assert "<b>ann" not in dom.replace("&lt;b&gt;ann", "")  # the rep's name is text too
    assert "Comp violations" in dom and "300.00 USD" in dom
    page, _ = get_page("/ui")
    assert 'id="comp"' not in page and "Comp violations" not in page


def test_filters_by_owner_cloud_and_reason():
    def names(query):
        page, _ = get_page("/ui?" + query)
        blocked, _ = rows(page, "blocked")
        return sorted(r[0] for r in blocked)

    assert names("owner=bob%40example.com") == [BOB]
    assert names("reason=registration_missing") == [XSS + "Acme <Corp>"]
    assert names("reason=registration_not_accepted&owner=bob%40example.com") == [BOB]
    assert names("cloud=azure") == []
    assert names("cloud=AWS") == sorted([XSS + "Acme <Corp>", BOB])
    page, _ = get_page("/ui?owner=%22%3E%3Cscript%3Ex%3C%2Fscript%3E")  # the form echoes it
    assert "<script" not in page and 'value="&quot;&gt;&lt;script&gt;x&lt;/script&gt;"' in page
    st, r, _ = svc.get("/ui?cloud=nosuch")
    assert st == 422, r


def test_each_deal_links_to_its_history():
    page, _ = get_page("/ui")
    _, parsed = rows(page, "blocked")
    link = next(l for l in parsed.links if l.startswith("/ui/deal?id=OPP-XSS"))
    hist, _ = get_page(link)
    decisions, _ = rows(hist, "deal")
    moves = [r for r in decisions if len(r) == 4]
    assert len(moves) == 1 and moves[0][1] == "Qualification → Demo" and moves[0][2] == "block"
    assert "<script" not in hist and "&lt;script&gt;" in hist
    st, _, _ = svc.get("/ui/deal?id=NO-SUCH-DEAL")
    assert st == 404
    st, _, _ = svc.get("/ui/deal")
    assert st == 422


def test_security_headers_and_basic_auth():
    page, h = get_page("/ui")
    csp = h["content-security-policy"]
    assert "default-src 'none'" in csp and "unsafe" not in csp and "script-src" not in csp, csp
    style = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert "'sha256-%s'" % digest in csp, csp
    assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff"
    assert "<script" not in page
    st, _, h = svc.get("/ui", token=None)
    assert st == 401 and h["www-authenticate"] == 'Basic realm="dealgate"', h
    st, _, _ = svc.get("/ui", token=WEBHOOK)
    assert st == 401
    st, body, _ = svc.request("GET", "/ui", headers={"Authorization": dgtest.basic("m", READER)})
    assert st == 200 and body.startswith(b"<!DOCTYPE html>")


if __name__ == "__main__":
    try:
        setup()
        dgtest.run([test_blocked_deal_in_chromium_escaped_with_screenshots,
                    test_comp_section_needs_a_comp_token, test_filters_by_owner_cloud_and_reason,
                    test_each_deal_links_to_its_history, test_security_headers_and_basic_auth])
    finally:
        if svc:
            svc.stop()
