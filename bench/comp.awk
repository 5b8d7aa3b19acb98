# comp.awk — the yardstick for bench/comp.sh: the same per-line arithmetic as
# `dealgate comp-check` in awk (floating point, no CSV quoting: the generated statement has
# none), with the same report (one line per line that is not clean, then a summary by code
# and by rep). Run with: mawk -F, -f bench/comp.awk statement.csv
function round2(x) { return x < 0 ? -int(-x * 100 + 0.5) / 100 : int(x * 100 + 0.5) / 100 }
function rate(s) { if (s ~ /%$/) { sub(/%$/, "", s); return s / 100 } return s + 0 }
BEGIN {
    tol = 0.01 + 1e-9
    fee["aws"] = 0.03; fee["azure"] = 0.03; fee["gcp"] = 0.03
    plan["default"] = 0.10; plan["standard"] = 0.10; plan["partner"] = 0.08
}
NR == 1 {
    for (i = 1; i <= NF; i++) col[tolower($i)] = i
    cD = col["deal_id"]; cR = col["rep"]; cC = col["channel"]; cL = col["cloud"]
    cA = col["acv"]; cB = col["commission_base"]; cT = col["rate"]; cM = col["commission"]
    cP = col["plan"]; cS = col["split"]; cY = col["currency"]
    next
}
{
    ch = tolower($cC); acv = $cA + 0; comm = $cM + 0; base = $cB; rt = $cT
    sp = (cS && $cS != "") ? rate($cS) : 1
    dr = ($cP in plan) ? plan[$cP] : plan["default"]
    codes = ""; short = 0; expected = comm
    if (ch == "marketplace") {
        neutral = round2(dr * acv * sp); expected = neutral
        gross = round2(acv * sp)
        if (base != "" && gross - base > tol) codes = codes " fee_deducted_from_base"
        if (rt != "" && rate(rt) < dr) codes = codes " rate_below_direct"
        d = neutral - comm
        if (d > tol) { codes = codes " commission_below_direct_equivalent"; short = d }
        else if (-d > tol) codes = codes " marketplace_uplift"
    }
    if (rt != "" && base != "") {
        calc = round2(rate(rt) * base); d = calc - comm
        if (ch != "marketplace") expected = calc
        if (d > tol || -d > tol) {
            codes = codes " calculation_mismatch"
            if (ch != "marketplace" && d > 0) short = d
        }
    }
    checked++
    if (codes != "") {
        viol++
        n = split(substr(codes, 2), cs, " ")
        for (i = 1; i <= n; i++) bycode[cs[i]]++
        total += short; byrep[$cR] += short; replines[$cR]++
        printf "line %d: %s (rep %s, %s %s, USD): VIOLATION, expected %.2f, paid %.2f, shortfall %.2f\n    %s\n", NR, $cD, $cR, ch, $cL, expected, comm, short, codes
    }
}
END {
    printf "%s: %d lines checked, %d with violations\nlines by code:\n", FILENAME, checked, viol
    for (c in bycode) printf "  %-36s %d\n", c, bycode[c]
    printf "total shortfall: USD %.2f\nshortfall by rep:\n", total
    for (r in byrep) printf "  %s  %d  USD %.2f\n", r, replines[r], byrep[r]
}
