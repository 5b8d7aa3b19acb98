#!/usr/bin/python3
"""gen_statement.py — writes a synthetic commission statement for bench/comp.sh.

Usage: gen_statement.py LINES [SEED] > statement.csv

Columns: deal_id,rep,channel,cloud,acv,commission_base,rate,commission,plan,currency.
Amounts are plain decimals (no thousands separators, no quoting) so that the awk yardstick,
which splits on commas, reads the same file. Mix (deterministic for a seed): 60% direct
lines paid right, 25% marketplace lines paid right, 10% marketplace lines with the 3% fee
taken out of the base, 5% lines with a calculation slip; 5,000 reps, two plans.
"""
import random
import sys


def main():
    n = int(sys.argv[1])
    rnd = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 42)
    out = sys.stdout
    out.write("deal_id,rep,channel,cloud,acv,commission_base,rate,commission,plan,currency\n")
    clouds = ("aws", "azure", "gcp")
    plans = (("standard", 10), ("partner", 8))
    buf = []
    for i in range(n):
        rep = "rep%04d@example.com" % rnd.randrange(5000)
        plan, pct = plans[0] if rnd.random() < 0.8 else plans[1]
        acv_c = rnd.randrange(100000, 50000000)  # 1,000.00 .. 500,000.00 in cents
        kind = rnd.random()
        cloud = ""
        channel = "direct"
        base_c = acv_c
        if kind >= 0.60:
            channel = "marketplace"
            cloud = clouds[rnd.randrange(3)]
        if 0.85 <= kind < 0.95:
            base_c = acv_c * 97 // 100  # the fee came out of the base
        comm_c = (base_c * pct + 50) // 100
        if kind >= 0.95:
            comm_c -= rnd.randrange(1, 5000)  # a slip
        buf.append("D-%07d,%s,%s,%s,%d.%02d,%d.%02d,%d%%,%d.%02d,%s,USD\n" % (
            i + 1, rep, channel, cloud, acv_c // 100, acv_c % 100, base_c // 100, base_c % 100,
            pct, comm_c // 100, comm_c % 100, plan))
        if len(buf) >= 10000:
            out.write("".join(buf))
            buf.clear()
    out.write("".join(buf))


if __name__ == "__main__":
    main()
