"""Black-box: `dealgate test` — the repo's example configs pass their shipped cases (this is
how CI runs them), and the command reports failures and unusable input as documented."""
import json
import os
import subprocess
import tempfile

import dgtest
from dgtest import BIN, SRC

EXAMPLES = [("config/dealgate.ini", "config/tests/dealgate"),
            ("config/salesforce.example.ini", "config/tests/salesforce"),
            ("config/hubspot.example.ini", "config/tests/hubspot")]


def run(*args, cwd=SRC):
    p = subprocess.run([BIN, "test"] + list(args), cwd=cwd, capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, http_proxy="http://127.0.0.1:9",
                                            https_proxy="http://127.0.0.1:9"))
    return p.returncode, p.stdout, p.stderr


def case_file(cases):
    fd, path = tempfile.mkstemp(suffix=".json", prefix="dgcase-")
    with os.fdopen(fd, "w") as f:
        f.write(cases if isinstance(cases, str) else json.dumps(cases))
    return path


MISSING = {"name": "missing registration",
           "event": {"opportunity": {"id": "OPP-1", "clouds": ["aws"]}, "from_stage": "Qualification",
                     "to_stage": "Demo"},
           "registrations": {"aws": "not_found"},
           "expect": {"outcome": "block", "reasons": ["registration_missing"]}}


def test_example_configs_pass_their_cases():
    for ini, cases in EXAMPLES:
        rc, out, err = run("-c", ini, cases)
        lines = out.strip().splitlines()
        assert rc == 0, (ini, out, err)
        assert lines[-1].endswith(" passed, 0 failed") and not lines[-1].startswith("0 "), lines
        assert all(l.startswith("PASS ") for l in lines[:-1]), lines
        assert len(lines) - 1 == int(lines[-1].split()[0])


def test_a_failing_case_is_reported_and_exits_1():
    wrong = dict(MISSING, name="expects the wrong outcome", expect={"outcome": "allow"})
    path = case_file([MISSING, wrong])
    try:
        rc, out, err = run("-c", "config/dealgate.ini", path)
        lines = out.strip().splitlines()
        assert rc == 1, (out, err)
        assert lines[0].startswith("PASS ") and lines[0].endswith("#1: missing registration"), lines
        assert lines[1].startswith("FAIL ") and "expects the wrong outcome" in lines[1], lines
        assert "expected allow, got block (registration_missing)" in lines[1], lines
        assert lines[-1] == "1 passed, 1 failed", lines
    finally:
        os.unlink(path)


def test_codes_and_details_are_compared():
    checks = [
        ({"outcome": "block", "reasons": ["registration_not_found"]},
         "expected reasons [registration_not_found], got [registration_missing]"),
        ({"outcome": "block", "revert_to": "Prospecting"}, "expected revert_to Prospecting, got Qualification"),
        ({"outcome": "block", "message_contains": "Azure"}, "does not contain \"Azure\""),
        ({"outcome": "block", "warnings": ["registration_unlinked"]},
         "expected warnings [registration_unlinked], got []"),
        ({"outcome": "block", "gated": False}, "expected gated false, got true"),
    ]
    for expect, msg in checks:
        path = case_file(dict(MISSING, expect=expect))
        try:
            rc, out, err = run("-c", "config/dealgate.ini", path)
            assert rc == 1 and msg in out, (expect, out, err)
            assert out.strip().splitlines()[-1] == "0 passed, 1 failed"
        finally:
            os.unlink(path)
    # a look-up error that is not retryable, and an explicit registration id
    path = case_file({"event": {"opportunity": {"id": "OPP-2", "clouds": ["aws"], "registrations": {"aws": "O1"}},
                                "from_stage": "Qualification", "to_stage": "Demo"},
                      "registrations": {"aws": {"error": "access denied", "retryable": False}},
                      "expect": {"outcome": "block", "reasons": ["registration_unverifiable"],
                                 "message_contains": "access denied"}})
    try:
        rc, out, _ = run("-c", "config/dealgate.ini", path)
        assert rc == 0 and out.strip().splitlines()[-1] == "1 passed, 0 failed", out
    finally:
        os.unlink(path)


def test_unusable_input_exits_2():
    bad = [
        "{not json",
        json.dumps(dict(MISSING, expect={"outcome": "block", "reason": ["x"]})),   # typo
        json.dumps(dict(MISSING, expect={"outcome": "maybe"})),
        json.dumps(dict(MISSING, registrations={"oracle": "not_found"})),
        json.dumps(dict(MISSING, registrations={"aws": "perhaps"})),
        json.dumps(dict(MISSING, event={"opportunity": {"id": "X", "clouds": ["nope"]}, "to_stage": "Demo"})),
        json.dumps(dict(MISSING, now="yesterday")),
        json.dumps({k: v for k, v in MISSING.items() if k != "expect"}),
        json.dumps(dict(MISSING, colour="blue")),
    ]
    for text in bad:
        path = case_file(text)
        try:
            rc, out, err = run("-c", "config/dealgate.ini", path)
            assert rc == 2, (text, rc, out, err)
            assert out.strip().splitlines()[-1].endswith(" failed"), out
            assert "dealgate test: " + path in err, err
        finally:
            os.unlink(path)
    rc, out, err = run("-c", "config/dealgate.ini", "/nonexistent/cases.json")
    assert rc == 2 and "No such file" in err
    # A directory without case files (once undefined behaviour: qsort of a NULL array).
    import tempfile
    empty = tempfile.mkdtemp()
    try:
        rc, out, err = run("-c", "config/dealgate.ini", empty)
        assert rc == 2 and "no *.json case files" in err, (rc, out, err)
    finally:
        os.rmdir(empty)
    rc, out, err = run("-c", "/nonexistent.ini", "config/tests/dealgate")
    assert rc == 2 and out.strip() == "0 passed, 0 failed", out
    rc, out, err = run("-c", "config/dealgate.ini")
    assert rc == 2 and "usage" in err


if __name__ == "__main__":
    dgtest.run([test_example_configs_pass_their_cases, test_a_failing_case_is_reported_and_exits_1,
                test_codes_and_details_are_compared, test_unusable_input_exits_2])
