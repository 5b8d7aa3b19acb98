"""Black-box: GET /metrics is valid Prometheus text exposition (0.0.4) and counts what the
service did: decisions by outcome and reason, requests by route with a latency histogram,
co-sell look-ups by cloud (calls, errors, cache hits, latency) against the fake AWS ACE, log
commit batches; a failed look-up is also one structured log line, without secrets."""
import json
import time
import math
import re

import dgtest
from dgtest import Fake, Service, event, READER, BASE_CONFIG

ace = None
svc = None

CLOUD_ACE = """
[cloud:aws]
name = AWS ACE
connector = ace
endpoint = {endpoint}
region = us-east-1
catalog = AWS
access_key_id = AKIDEXAMPLE
secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
timeout_ms = 800
cache_ttl_s = 300
negative_cache_ttl_s = 1
"""

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(?:\{((?:%s)(?:,%s)*)?,?\})? (\S+)(?: (-?\d+))?$" % (NAME, LABEL, LABEL))
LABEL_ONE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_value(s):
    if s in ("+Inf", "-Inf", "NaN"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    return float(s)  # raises on anything else


def parse_exposition(text):
    """Checks text against the Prometheus text format and returns {family: {"type": t,
    "samples": [(name, labels, value)]}}. Raises AssertionError naming the bad line."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    families, current, seen = {}, None, set()
    for no, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d: %r" % (no, line)
        assert line.strip() == line and line, where
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                assert re.fullmatch(NAME, parts[2]), where
                fam = families.setdefault(parts[2], {"type": None, "help": None, "samples": []})
                key = parts[1].lower()
                assert fam[key] is None, "second %s: %s" % (parts[1], where)
                assert not fam["samples"], "%s after samples: %s" % (parts[1], where)
                if parts[1] == "TYPE":
                    assert len(parts) == 4 and parts[3] in TYPES, where
                    fam["type"] = parts[3]
                else:
                    fam["help"] = parts[3] if len(parts) == 4 else ""
                current = parts[2]
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample: " + where
        name, labels_s, value = m.group(1), m.group(2) or "", m.group(3)
        labels = dict(LABEL_ONE.findall(labels_s))
        assert len(labels) == len(LABEL_ONE.findall(labels_s)), "repeated label: " + where
        v = parse_value(value)
        fam_name = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[: -len(suffix)] in families and \
                    families[name[: -len(suffix)]]["type"] in ("histogram", "summary"):
                fam_name = name[: -len(suffix)]
        assert fam_name in families and families[fam_name]["type"], "no TYPE before: " + where
        assert fam_name == current, "family samples not together: " + where
        key = (name, tuple(sorted(labels.items())))
        assert key not in seen, "duplicate sample: " + where
        seen.add(key)
        if families[fam_name]["type"] == "counter":
            assert v >= 0 and not math.isnan(v), where
        families[fam_name]["samples"].append((name, labels, v))
    for fam_name, fam in families.items():
        assert fam["type"], "HELP without TYPE: " + fam_name
        if fam["type"] == "histogram":
            check_histogram(fam_name, fam["samples"])
    return families


def check_histogram(fam_name, samples):
    series = {}
    for name, labels, v in samples:
        rest = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
        s = series.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if name == fam_name + "_bucket":
            assert "le" in labels, (fam_name, labels)
            s["buckets"].append((parse_value(labels["le"]), v))
        elif name == fam_name + "_sum":
            s["sum"] = v
        elif name == fam_name + "_count":
            s["count"] = v
        else:
            raise AssertionError("unexpected sample %s in histogram %s" % (name, fam_name))
    for rest, s in series.items():
        les = [le for le, _ in s["buckets"]]
        assert les == sorted(les) and les and les[-1] == math.inf, (fam_name, rest, les)
        counts = [c for _, c in s["buckets"]]
        assert counts == sorted(counts), ("buckets must be cumulative", fam_name, rest, counts)
        assert s["count"] == counts[-1] and s["sum"] is not None, (fam_name, rest, s)


def value(families, fam, name=None, **labels):
    for n, l, v in families[fam]["samples"]:
        if n == (name or fam) and all(l.get(k) == x for k, x in labels.items()):
            return v
    return None


def setup():
    global ace, svc
    ace = Fake("fake_ace.py")
    base = BASE_CONFIG.split("[cloud:aws]")[0].replace("accept.azure = Accepted, Won\n", "")
    config = base + CLOUD_ACE.replace("{endpoint}", ace.url).replace("{", "{{").replace("}", "}}")
    svc = Service(config=config).start()


def test_exposition_parses_and_counts_what_happened():
    ace.behave(key="O2000002", status=500, error_type="InternalServerException")
    st, d, _ = svc.gate(event("006A0000001", regs={"aws": "O2000001"}))
    assert d["allowed"] is True, d
    st, d, _ = svc.gate(event("006A0000001", regs={"aws": "O2000001"}, to="Proposal"))
    assert d["allowed"] is True, d  # the same registration again: from the cache
    st, blocked, _ = svc.gate(event("006B0000002", regs={"aws": "O2000002"}))
    assert [r["code"] for r in blocked["reasons"]] == ["registration_unverifiable"], blocked

    # A request is counted (and its access-log line written) just after its reply is sent:
    # wait until the third one is in, then every figure must be exact.
    route = "/v1/gate/stage"
    deadline = time.time() + 10
    while True:
        st, text, h = svc.get("/metrics")
        assert st == 200 and h["content-type"].startswith("text/plain; version=0.0.4"), (st, h)
        fam = parse_exposition(text.decode())
        done = value(fam, "dealgate_http_requests_total", route=route, code="200") == 3 and \
            svc.stderr().count('"path":"%s"' % route) >= 3
        if done or time.time() > deadline:
            break
        time.sleep(0.05)

    assert value(fam, "dealgate_decisions_total", outcome="allow") == 2
    assert value(fam, "dealgate_decisions_total", outcome="block") == 1
    assert value(fam, "dealgate_decision_reasons_total", code="registration_unverifiable") == 1
    assert value(fam, "dealgate_http_requests_total", route=route, code="200") == 3
    assert value(fam, "dealgate_http_request_duration_seconds",
                 "dealgate_http_request_duration_seconds_count", route=route) == 3
    # look-ups: one call answered, one from the cache, one failed call
    assert value(fam, "dealgate_lookup_calls_total", cloud="aws", connector="ace") == 2
    assert value(fam, "dealgate_lookup_cache_hits_total", cloud="aws") == 1
    assert value(fam, "dealgate_lookup_errors_total", cloud="aws") == 1
    assert value(fam, "dealgate_lookup_duration_seconds", "dealgate_lookup_duration_seconds_count",
                 cloud="aws") == 2
    assert value(fam, "dealgate_lookup_duration_seconds", "dealgate_lookup_duration_seconds_sum",
                 cloud="aws") > 0
    # the log: 3 decision rows in some commits
    commits = value(fam, "dealgate_log_commits_total")
    assert value(fam, "dealgate_log_rows_total") == 3 and 1 <= commits <= 3
    assert value(fam, "dealgate_log_commit_batch_size",
                 "dealgate_log_commit_batch_size_count") == commits
    assert value(fam, "dealgate_log_commit_batch_size", "dealgate_log_commit_batch_size_sum") == 3
    assert value(fam, "dealgate_log_healthy") == 1
    assert value(fam, "dealgate_writeback_queue_depth") == 0
    assert fam["dealgate_http_request_duration_seconds"]["type"] == "histogram"

    # the failed look-up is one structured event naming the decision, and no secret is logged
    events = [json.loads(l) for l in svc.stderr().splitlines() if l.startswith("{")]
    fails = [e for e in events if e.get("event") == "upstream_failure"]
    assert len(fails) == 1, fails
    assert fails[0]["cloud"] == "aws" and fails[0]["connector"] == "ace", fails
    assert fails[0]["decision_id"] == blocked["decision_id"], fails
    assert fails[0]["opportunity_id"] == "006B0000002" and fails[0]["error"], fails
    assert "wJalrXUtnFEMI" not in svc.stderr() and READER not in svc.stderr()
    reqs = [e for e in events if e.get("event") == "request" and e["path"] == route]
    assert len(reqs) == 3 and all(e.get("decision_id") for e in reqs), reqs


def test_metrics_need_a_reader_token():
    st, _, h = svc.get("/metrics", token=None)
    assert st == 401 and h["www-authenticate"].startswith("Basic")
    st, _, _ = svc.request("GET", "/metrics", headers={"Authorization": dgtest.basic("prom", READER)})
    assert st == 200


def test_the_validator_rejects_broken_text():
    good = "# TYPE x_total counter\nx_total{a=\"1\"} 2\n"
    parse_exposition(good)
    for bad in ("x_total 1\n",                                   # no TYPE
                "# TYPE x_total counter\nx_total{a=1} 2\n",      # unquoted label
                "# TYPE x_total counter\nx_total 1\nx_total 2\n",  # duplicate
                "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
                "h_sum 1\nh_count 1\n",                          # not cumulative
                "# TYPE x_total counter\nx_total one\n"):          # not a number
        try:
            parse_exposition(bad)
        except (AssertionError, ValueError):
            continue
        raise AssertionError("accepted: %r" % bad)


if __name__ == "__main__":
    try:
        setup()
        dgtest.run([test_the_validator_rejects_broken_text,
                    test_exposition_parses_and_counts_what_happened,
                    test_metrics_need_a_reader_token])
    finally:
        if svc:
            svc.stop()
        if ace:
            ace.stop()
