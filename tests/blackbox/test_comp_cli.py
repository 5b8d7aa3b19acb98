"""test_comp_cli — `dealgate comp-check` as comp ops runs it: real statements (BOM, CRLF,
quoted thousands, embedded newlines, a comp tool's own headers), every output format, exit
statuses 0/1/2, malformed input named by file, line and column, config errors, and a
statement far larger than memory should need (constant RSS). Stdlib only."""
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import traceback

BIN = os.environ.get("DEALGATE_BIN", "build/dealgate")

CONFIG = """
[server]
listen = 127.0.0.1:18111
currency = USD

[auth]
open = yes

[pipeline]
stages = Prospecting, Demo, Closed Won, Closed Lost
won = Closed Won
lost = Closed Lost

[comp]
tolerance = 0.01
rounding = {rounding}
fee.aws = 3%
fee.azure = 3%
plan.default = 10%
plan.partner = 8%
allow_uplift = {uplift}
column.acv = Contract Value
column.deal_id = Opportunity ID
"""

STATEMENT = (
    "\ufeffOpportunity ID,Rep,Channel,Cloud,Contract Value,Commission_Base,Rate,Commission,Plan,"
    "Currency,Notes\r\n"
    'D-1,jane@example.com,Marketplace,aws,"100,000.00","97,000.00",10%,"9,700.00",,USD,'
    '"fee came out, as usual"\r\n'
    'D-2,joe@example.com,direct,,"1,250,000.00","1,250,000.00",10%,"125,000.00",,,\r\n'
    '"D-3\nsplit across lines",ann@example.com,marketplace,azure,100000,,,7760,partner,USD,\r\n'
    'D-4,"=HYPERLINK(""http://x"")",marketplace,aws,200000,200000,0.10,21000,,USD,\r\n'
    "D-5,kim@example.com,marketplace,aws,1000000,,,99999,,JPY,\r\n"
    "D-6,lee@example.com,MARKETPLACE,aws,1000.000,,,99.989,,KWD,\r\n"
    "D-7,max@example.com,marketplace,aws,100000,,,10500,,USD,\r\n"
)


class Env:
    def __init__(self, rounding="half_up", uplift="yes"):
        self.dir = tempfile.mkdtemp(prefix="dgcomp.")
        self.cfg = self.write("dealgate.ini", CONFIG.format(rounding=rounding, uplift=uplift))

    def write(self, name, text, mode="w"):
        path = os.path.join(self.dir, name)
        with open(path, mode, newline="" if mode == "w" else None) as f:
            f.write(text)
        return path

    def run(self, *args, stdin=None):
        p = subprocess.run([BIN, "comp-check", "-c", self.cfg, *args], input=stdin,
                           capture_output=True, timeout=120)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def test_text_report_and_summary():
    e = Env()
    st = e.write("statement.csv", STATEMENT)
    rc, out, err = e.run(st)
    check(rc == 1, f"exit {rc}, want 1 (violations): {err}")
    check("line 2: D-1 (rep jane@example.com, marketplace aws, USD): VIOLATION" in out, out)
    check("base 97,000.00 is ACV 100,000.00 less the 3% AWS fee" in out, out)
    check("line 3:" not in out, "clean D-2 must not be reported:\n" + out)
    # D-3 starts on line 4 and spans two lines: D-4 is on line 6
    check("line 4: D-3?split across lines (rep ann@example.com" in out, out)
    check("line 6: D-4" in out and "calculation_mismatch" in out, out)
    check("marketplace_uplift (warning)" in out, out)
    check("line 7: D-5" in out and "shortfall 1\n" in out, out)          # JPY: no decimals
    check("line 8: D-6" in out and "shortfall 0.011" in out, out)        # KWD: three
    check("the 3% AZURE fee came out of the rep's pay" in out or "3% Azure fee" in out, out)
    check("line 9: D-7" in out and "marketplace_uplift (warning)" in out, out)
    check(": 7 lines checked, 5 with violations, 1 with warnings only" in out, out)
    check("commission_below_direct_equivalent" in out.split("lines by code:")[1], out)
    check("total shortfall: USD 540.00, JPY 1, KWD 0.011" in out, out)
    check("jane@example.com  1  USD 300.00" in out, out)


def test_all_lines():
    e = Env()
    st = e.write("statement.csv", STATEMENT)
    rc, out, _ = e.run(st, "--all")
    check(rc == 1, f"exit {rc}")
    check("line 3: D-2 (rep joe@example.com, direct, USD): clean" in out, out)


def test_json_is_the_endpoint_object():
    e = Env()
    st = e.write("statement.csv", STATEMENT)
    rc, out, err = e.run(st, "--format", "json")
    check(rc == 1, f"exit {rc}: {err}")
    doc = json.loads(out)
    check(doc["ok"] is False and doc["checked"] == 7 and doc["violations"] == 5, doc)
    check(doc["warnings"] == 1, doc)
    check(doc["total_shortfall"] == {"USD": "540.00", "JPY": "1", "KWD": "0.011"},
          doc["total_shortfall"])
    check(doc["violations_by_code"]["fee_deducted_from_base"] == 1, doc["violations_by_code"])
    lines = [r["line"] for r in doc["results"]]
    check(lines == [2, 4, 6, 7, 8, 9], lines)
    r = doc["results"][0]
    check(r["deal_id"] == "D-1" and r["channel"] == "marketplace" and r["status"] == "violation", r)
    check((r["expected"], r["actual"], r["shortfall"]) == ("10000.00", "9700.00", "300.00"), r)
    check(r["codes"] == ["fee_deducted_from_base", "commission_below_direct_equivalent"], r)
    d3 = doc["results"][1]
    check(d3["deal_id"] == "D-3\nsplit across lines", d3)
    check(d3["direct_rate"] == "8%" and d3["direct_rate_source"] == "plan.partner", d3)
    check(d3["shortfall"] == "240.00" and d3["status"] == "violation", d3)
    check(doc["results"][-1]["status"] == "warning", doc["results"][-1])
    rc, out, _ = e.run(st, "--format=json", "--all")
    check(len(json.loads(out)["results"]) == 7, out)


def test_csv_output_is_neutralised():
    e = Env()
    st = e.write("statement.csv", STATEMENT)
    rc, out, err = e.run(st, "--format", "csv", "--all")
    check(rc == 1, f"exit {rc}")
    rows = list(csv.reader(io.StringIO(out)))
    check(rows[0][:3] == ["line", "deal_id", "rep"], rows[0])
    check(len(rows) == 8, rows)
    d4 = [r for r in rows if r[1] == "D-4"][0]
    check(d4[2] == "'=HYPERLINK(\"http://x\")", d4)
    check(d4[8] == "calculation_mismatch;marketplace_uplift", d4)
    for row in rows[1:]:
        for cell in row:
            check(not cell or cell[0] not in "=+-@", f"formula cell {cell!r}")
    check("7 lines checked" in err, "the summary goes to stderr with --format csv: " + err)


def test_clean_statement_exits_0():
    e = Env()
    st = e.write("clean.csv", "deal_id,channel,acv,commission\nA,direct,100,10\n"
                              "B,marketplace,100,10\n")
    rc, out, err = e.run(st)
    check(rc == 0, f"exit {rc}: {out}{err}")
    check("2 lines checked, 0 with violations" in out, out)
    check("total shortfall: USD 0.00" in out, out)


def test_uplift_is_a_violation_when_refused():
    e = Env(uplift="no")
    st = e.write("s.csv", "deal_id,channel,acv,commission\nB,marketplace,100,11\n")
    rc, out, _ = e.run(st)
    check(rc == 1, f"exit {rc}: {out}")
    check("marketplace_uplift:" in out and "allow_uplift = no" in out, out)


def test_half_even():
    # 10% of 0.25 = 0.025: half_up pays 0.03, half_even 0.02
    for rounding, want in (("half_up", "0.03"), ("half_even", "0.02")):
        e = Env(rounding=rounding)
        st = e.write("s.csv", "deal_id,channel,acv,commission\nR,marketplace,0.25,0\n")
        rc, out, _ = e.run(st, "--format", "json")
        check(json.loads(out)["results"][0]["expected"] == want, (rounding, out))


def test_stdin():
    e = Env()
    rc, out, _ = e.run("-", stdin=b"deal_id,channel,acv,commission\nA,marketplace,100,9\n")
    check(rc == 1, f"exit {rc}")
    check("<stdin>: 1 lines checked, 1 with violations" in out, out)


def test_unusable_input_exits_2():
    e = Env()
    cases = [
        ("deal_id,channel,acv,commission\nA,direct,1\"0,1\n", "line 2, column 3", "malformed"),
        ("deal_id,channel,acv,commission\nA,direct,\"10,1\n", "unterminated", "line 2"),
        ("deal_id,channel,commission\nA,direct,1\n", "line 1", "\"Contract Value\" (acv)"),
        ("deal_id,channel,acv,commission,rate\nA,direct,1,1,10%\nB,direct,1,1,10\n",
         "line 3, column \"rate\"", "ambiguous"),
        ("Opportunity ID,channel,acv,commission\nA,wholesale,1,1\n",
         "line 2, column \"channel\"", "neither direct nor marketplace"),
        ("deal_id,channel,acv,commission\nA,direct,\"1,00.00\",1\n",
         "line 2, column \"acv\"", "1,00.00"),
        ("deal_id,channel,acv,commission,currency\nA,direct,1.5,1,JPY\n",
         "line 2, column \"acv\"", None),
        ("", "no header", None),
    ]
    for text, frag1, frag2 in cases:
        st = e.write("bad.csv", text)
        rc, out, err = e.run(st)
        check(rc == 2, f"exit {rc} for {text!r}: {err}")
        check(err.startswith(st + ": "), f"error must name the file: {err!r}")
        check(frag1 in err and (frag2 is None or frag2 in err), f"{text!r}: {err!r}")
    # json output stays one valid object, with the error in it
    st = e.write("bad.csv", "deal_id,channel,acv,commission\nA,direct,1,1\nB,direct,x,1\n")
    rc, out, err = e.run(st, "--format", "json", "--all")
    check(rc == 2, f"exit {rc}")
    doc = json.loads(out)
    check(doc["error"]["code"] == "invalid_field" and "line 3" in doc["error"]["message"], doc)
    check(len(doc["results"]) == 1, doc)


def test_usage_and_config_errors():
    e = Env()
    st = e.write("s.csv", "deal_id,channel,acv,commission\nA,direct,1,1\n")
    rc, _, err = e.run(st, "--format", "xml")
    check(rc == 2 and "usage" in err, err)
    rc, _, err = e.run()
    check(rc == 2 and "usage" in err, err)
    rc, _, err = e.run(os.path.join(e.dir, "missing.csv"))
    check(rc == 2 and "cannot open" in err, err)
    bad = e.write("bad.ini", "[comp]\nrounding = sideways\nbogus = 1\n")
    p = subprocess.run([BIN, "comp-check", "-c", bad, st], capture_output=True, timeout=30)
    err = p.stderr.decode()
    check(p.returncode == 2, f"exit {p.returncode}: {err}")
    check(bad + ":2:" in err and bad + ":3:" in err, "every config error, path:line: " + err)


def sanitized():
    """True when the binary is built with ASan (its shadow memory inflates RSS)."""
    p = subprocess.run(["ldd", BIN], capture_output=True)
    return b"libasan" in p.stdout


def peak_rss_kb(env, path, lines):
    with open(path, "w") as f:
        f.write("deal_id,rep,channel,cloud,acv,commission_base,rate,commission\n")
        row = "D-%07d,rep%05d@example.com,marketplace,aws,100000.00,97000.00,10%%,%s\n"
        for i in range(lines):
            f.write(row % (i, i % 20000, "9700.00" if i % 10 == 0 else "10000.00"))
    p = subprocess.run(["/usr/bin/time", "-f", "%M", BIN, "comp-check", "-c", env.cfg, path],
                       capture_output=True, timeout=300)
    check(p.returncode == 1, f"exit {p.returncode}")
    out = p.stdout.decode()
    check(f"{lines} lines checked, {lines} with violations" in out, out[-500:])
    return int(p.stderr.decode().strip().splitlines()[-1]), out


def test_constant_memory():
    """Ten times the lines (and 20,000 reps, past the table's cap) in the same memory."""
    e = Env()
    small, _ = peak_rss_kb(e, os.path.join(e.dir, "small.csv"), 30000)
    big, out = peak_rss_kb(e, os.path.join(e.dir, "big.csv"), 300000)
    check("(other reps past the first 10000)" in out, out[-500:])
    check(big - small < 2048, f"RSS grew from {small} kB to {big} kB")
    if not sanitized():
        check(big < 16 * 1024, f"peak RSS {big} kB")


def main():
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_") and callable(f)]
    if not os.path.exists("/usr/bin/time"):
        tests = [(n, f) for n, f in tests if n != "test_constant_memory"]
        print("skip test_constant_memory: /usr/bin/time missing (apt-get install time)")
    failed = 0
    for name, fn in tests:
        try:
            fn()
            print(f"ok   {name}")
        except Exception:
            failed += 1
            print(f"FAIL {name}")
            traceback.print_exc()
    print(f"{len(tests) - failed}/{len(tests)} passed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
