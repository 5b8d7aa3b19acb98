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

run() { # binary -> "rps p99_ms rss_kb cpu_per_decision_us", on a fresh log
  local dir port pid rps p99 rss rows
  dir=$(mktemp -d "$work/run.XXXXXX")
  port=$(bench_free_port)
  bench_gate_setup "$dir" "$port" 64
  "$1" serve -c "$dir/bench.ini" 2>"$dir/dealgate.log" &
  pid=$!
  bench_wait_healthz "$port"
  read -r rps p99 _ < <(wrk -t2 -c64 -d"${DUR}s" --latency -s bench/gate.lua \
    "http://127.0.0.1:$port" 2>&1 | bench_wrk_summary)
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  rows=$(sqlite3 "$dir/var/dealgate.db" 'select count(*) from decisions' 2>/dev/null || echo 0)
  echo "$rps $p99 $rss $(bench_cpu_split "$pid" "$rows")"
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
}

: > "$work/a"; : > "$work/b"; : > "$work/ratio"
for r in $(seq "$ROUNDS"); do
  ra=$(run "$A"); rb=$(run "$B")
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
