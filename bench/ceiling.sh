#!/usr/bin/env bash
# bench/ceiling.sh — what each part of the decision log costs under bench/gate.sh's load, and
# so how far the request path alone would go. Builds dealgate with -DDG_BENCH_LOG_STAGES=ON
# into build-ceiling/ (a bench-only build: the environment's DG_BENCH_LOG may switch parts of
# the log off; see gate/dlog.c) and runs, alternately, each round on a fresh log:
#   bare       the bare civetweb handler (the yardstick of gate.sh's ratio)
#   log-off    the whole request path; dlog_append returns once its input is checked
#   commit     decisions are queued, and batches committed and fdatasync'ed, writing nothing
#   row        the decision's row and its indexes only (no deal state, KPI state, counters)
#   row-event  the same, with only the event-id index (the other three are dropped)
#   full       the log as shipped
# Prints per stage the medians of req/s, ratio to bare in the same round, p99 and CPU per
# decision by thread. Not durable except in "full": never a way to run the service.
# Usage: bench/ceiling.sh [SECONDS_PER_RUN] [ROUNDS]   (defaults 10 and 3)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
DUR=${1:-10}
ROUNDS=${2:-3}
command -v wrk >/dev/null || scripts/deps.sh test
cmake -S . -B build-ceiling -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDG_WERROR=ON \
  -DDG_BENCH_LOG_STAGES=ON >/dev/null
cmake --build build-ceiling -j2 --target dealgate bare_server >/dev/null

work=$(mktemp -d /tmp/dgceil.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
BIN=build-ceiling/dealgate
P=$(bench_free_port)
./build-ceiling/bench/bare_server "$P" 64 &
bench_wait_healthz "$P"
# the bare rounds send the Authorization header the dealgate runs send (bench_gate_setup
# exports the token only in the subshells of those runs)
export DG_BENCH_TOKEN=bench-token-0123456789abcdef
STAGES="log-off commit row row-event full"

stage_run() { # stage -> bench_gate_run's line
  case $1 in
    log-off) bench_gate_run "$work" "$BIN" "$DUR" DG_BENCH_LOG=off ;;
    commit) bench_gate_run "$work" "$BIN" "$DUR" DG_BENCH_LOG=commit ;;
    row) bench_gate_run "$work" "$BIN" "$DUR" DG_BENCH_LOG=row ;;
    row-event) BENCH_PREP_SQL="DROP INDEX decisions_time; DROP INDEX decisions_opp;
        DROP INDEX decisions_owner;" bench_gate_run "$work" "$BIN" "$DUR" DG_BENCH_LOG=row ;;
    full) bench_gate_run "$work" "$BIN" "$DUR" ;;
  esac
}

for r in $(seq "$ROUNDS"); do
  read -r brps bp99 _ < <(bench_wrk "$P" "$DUR")
  echo "$brps $bp99" >> "$work/bare"
  echo "round $r: bare $brps req/s, p99 $bp99 ms"
  for s in $STAGES; do
    line=$(stage_run "$s")
    echo "$line" >> "$work/$s"
    awk -v d="${line%% *}" -v b="$brps" 'BEGIN {printf "%.3f\n", d / b}' >> "$work/$s.ratio"
    echo "round $r: $s $line"
  done
done
# every answer must have been a decision: a stage that fails requests is not measured
non2xx=$(cat $(for s in $STAGES; do echo "$work/$s"; done) | awk '{s += $5} END {print s}')
[ "$non2xx" = 0 ] || echo "WARNING: $non2xx answers were not 2xx; the rates above are not decisions"

echo "--- medians over $ROUNDS rounds of ${DUR}s, 64 connections"
printf '%-10s %9s %6s %8s  %s\n' stage req/s ratio p99_ms "CPU per decision (us)"
printf '%-10s %9s %6s %8s\n' bare "$(cut -d' ' -f1 "$work/bare" | bench_median)" 1 \
  "$(cut -d' ' -f2 "$work/bare" | bench_median)"
for s in $STAGES; do
  # the CPU split of the run with the median req/s
  split=$(sort -g "$work/$s" | awk -v n="$ROUNDS" 'NR == int((n + 1) / 2)' | cut -d' ' -f6-)
  printf '%-10s %9s %6s %8s  %s\n' "$s" "$(cut -d' ' -f1 "$work/$s" | bench_median)" \
    "$(bench_median < "$work/$s.ratio")" "$(cut -d' ' -f2 "$work/$s" | bench_median)" "$split"
done
