#!/usr/bin/env bash
# bench/comp.sh — `dealgate comp-check` on a generated statement against, in the same run, a
# mawk script doing the same per-line arithmetic (bench/comp.awk). Alternates the two RUNS
# times, prints each run, the medians, the ratio and the peak RSS of both (/usr/bin/time -v).
# Both write their report to /dev/null; a separate, untimed run checks that they agree on
# the number of lines checked and with violations.
# Usage: bench/comp.sh [LINES] [RUNS]   (defaults 1000000 and 5)
# Env: DG_BUILD_DIR (default build; configured RelWithDebInfo here), DG_BENCH_KEEP=1 keeps
# the work directory. Targets: dealgate >= 2x faster than mawk, peak RSS < 16 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
LINES=${1:-1000000}
RUNS=${2:-5}
BUILD=${DG_BUILD_DIR:-build}

need=""
command -v mawk >/dev/null || need="$need mawk"
[ -x /usr/bin/time ] || need="$need time"
if [ -n "$need" ]; then
  echo "installing:$need"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need
fi

cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j2 --target dealgate >/dev/null
DG="$BUILD/dealgate"

work=$(mktemp -d /tmp/dgcomp.XXXXXX)
[ "${DG_BENCH_KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
cat > "$work/bench.ini" <<'INI'
[server]
listen = 127.0.0.1:18099
currency = USD
[auth]
open = yes
[pipeline]
stages = Prospecting, Demo, Closed Won, Closed Lost
won = Closed Won
lost = Closed Lost
[comp]
tolerance = 0.01
rounding = half_up
fee.aws = 3%
fee.azure = 3%
fee.gcp = 3%
plan.default = 10%
plan.standard = 10%
plan.partner = 8%
INI

echo "generating $LINES lines ..."
/usr/bin/python3 bench/gen_statement.py "$LINES" > "$work/statement.csv"
size=$(stat -c %s "$work/statement.csv")
echo "statement: $LINES lines, $((size / 1024 / 1024)) MB"

# Untimed agreement check: both must count the same lines and violations.
"$DG" comp-check -c "$work/bench.ini" "$work/statement.csv" > "$work/dg.txt" || [ $? -eq 1 ]
mawk -F, -f bench/comp.awk "$work/statement.csv" > "$work/awk.txt"
dg_sum=$(grep -E '^.*: [0-9]+ lines checked, [0-9]+ with violations' "$work/dg.txt" |
  sed -E 's/.*: ([0-9]+) lines checked, ([0-9]+) with violations.*/\1 \2/')
awk_sum=$(grep -E '^.*: [0-9]+ lines checked, [0-9]+ with violations' "$work/awk.txt" |
  sed -E 's/.*: ([0-9]+) lines checked, ([0-9]+) with violations.*/\1 \2/')
echo "lines checked / with violations: dealgate $dg_sum, mawk $awk_sum"
if [ "$dg_sum" != "$awk_sum" ]; then
  echo "FAIL: dealgate and mawk disagree" >&2
  exit 1
fi

# time_run OUT CMD... -> appends "seconds maxrss_kb" to OUT
time_run() {
  local out=$1; shift
  /usr/bin/time -v -o "$work/tv" "$@" > /dev/null 2>"$work/err" || [ $? -eq 1 ]
  awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,t,":"); s=0; for (i=1;i<=n;i++) s=s*60+t[i]}
              /Maximum resident set size/ {rss=$2}
              END {printf "%.3f %d\n", s, rss}' "$work/tv" >> "$out"
}

: > "$work/t_dg"; : > "$work/t_awk"
for r in $(seq "$RUNS"); do
  if [ $((r % 2)) -eq 1 ]; then
    time_run "$work/t_dg" "$DG" comp-check -c "$work/bench.ini" "$work/statement.csv"
    time_run "$work/t_awk" mawk -F, -f bench/comp.awk "$work/statement.csv"
  else
    time_run "$work/t_awk" mawk -F, -f bench/comp.awk "$work/statement.csv"
    time_run "$work/t_dg" "$DG" comp-check -c "$work/bench.ini" "$work/statement.csv"
  fi
  printf 'run %d: dealgate %s s (%s kB)   mawk %s s (%s kB)\n' "$r" \
    $(tail -1 "$work/t_dg") $(tail -1 "$work/t_awk")
done

dg_t=$(cut -d' ' -f1 "$work/t_dg" | bench_median)
awk_t=$(cut -d' ' -f1 "$work/t_awk" | bench_median)
dg_rss=$(cut -d' ' -f2 "$work/t_dg" | sort -n | tail -1)
awk_rss=$(cut -d' ' -f2 "$work/t_awk" | sort -n | tail -1)
ratio=$(awk -v a="$awk_t" -v d="$dg_t" 'BEGIN {printf "%.2f", (d > 0 ? a / d : 0)}')
echo "--- medians over $RUNS runs, $LINES lines"
echo "dealgate comp-check: $dg_t s, peak RSS $dg_rss kB ($((dg_rss / 1024)) MB)"
echo "mawk comp.awk:       $awk_t s, peak RSS $awk_rss kB"
echo "speed-up:            ${ratio}x   (target >= 2x)"
ok=1
awk -v r="$ratio" 'BEGIN {exit !(r >= 2)}' || { echo "MISSED: speed-up below 2x"; ok=0; }
[ "$dg_rss" -lt 16384 ] || { echo "MISSED: peak RSS not below 16 MB"; ok=0; }
[ $ok -eq 1 ] && echo "targets met"
[ $ok -eq 1 ]
