#!/usr/bin/env bash
# bench/ab.sh — two dealgate binaries under the load of bench/gate.sh, alternately, each round
# on a fresh log: POST /v1/gate/stage under wrk (64 connections, a new deal and event id per
# request, the file connector, the durable log). Prints each run (req/s, p99, peak RSS, CPU
# per decision by thread group) and, over the rounds, the medians and the median of the
# per-round ratio B/A. For a change's effect: build the old commit into one directory, the
# new into another, and compare them in one run on the same machine.
# Usage: bench/ab.sh A_BINARY B_BINARY [SECONDS_PER_RUN] [ROUNDS]   (defaults 10 and 3)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
if [ $# -lt 2 ]; then
  echo "usage: bench/ab.sh A_BINARY B_BINARY [SECONDS_PER_RUN] [ROUNDS]" >&2
  exit 2
fi
A=$(realpath "$1"); B=$(realpath "$2")
DUR=${3:-10}
ROUNDS=${4:-3}
command -v wrk >/dev/null || scripts/deps.sh test

work=$(mktemp -d /tmp/dgab.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

: > "$work/a"; : > "$work/b"; : > "$work/ratio"
for r in $(seq "$ROUNDS"); do
  ra=$(bench_gate_run "$work" "$A" "$DUR"); rb=$(bench_gate_run "$work" "$B" "$DUR")
  echo "$ra" >> "$work/a"; echo "$rb" >> "$work/b"
  awk -v a="${ra%% *}" -v b="${rb%% *}" 'BEGIN {printf "%.3f\n", b / a}' >> "$work/ratio"
  echo "round $r: A $ra"
  echo "round $r: B $rb"
done
echo "--- medians over $ROUNDS rounds of ${DUR}s (A: $A, B: $B)"
for x in a b; do
  printf '%s: %s req/s, p99 %s ms, peak RSS %s kB, CPU per decision (all threads) %s us\n' \
    "$(echo $x | tr ab AB)" "$(cut -d' ' -f1 "$work/$x" | bench_median)" \
    "$(cut -d' ' -f2 "$work/$x" | bench_median)" "$(cut -d' ' -f3 "$work/$x" | bench_median)" \
    "$(awk '{print $NF}' "$work/$x" | bench_median)"
done
echo "B / A req/s: $(bench_median < "$work/ratio")"
