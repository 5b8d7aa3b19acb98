#!/usr/bin/env bash
# bench/gate.sh — POST /v1/gate/stage under wrk (64 connections) against the real service
# (file connector, durable SQLite log, bearer auth) and, in the same run, against a bare
# civetweb handler returning a fixed JSON body. Prints both request rates, their ratio, p99
# latency and dealgate's peak RSS, as medians over ROUNDS alternating rounds, then the CPU
# dealgate spent per decision in its request threads and in the log's threads, and the CPU
# budget per decision the ratio target leaves on this machine once wrk and civetweb's own
# request handling (the bare server's CPU per request, measured in the same run) are paid.
# Usage: bench/gate.sh [SECONDS_PER_ROUND] [ROUNDS]   (defaults 10 and 3)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
DUR=${1:-10}
ROUNDS=${2:-3}
CONNS=64
THREADS=64
command -v wrk >/dev/null || scripts/deps.sh test
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDG_WERROR=ON >/dev/null
cmake --build build -j2 --target dealgate bare_server >/dev/null

work=$(mktemp -d /tmp/dgbench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
P1=$(bench_free_port); P2=$(bench_free_port)
bench_gate_setup "$work" "$P1" "$THREADS"
./build/dealgate serve -c "$work/bench.ini" 2>"$work/dealgate.log" &
DG_PID=$!
./build/bench/bare_server "$P2" "$THREADS" &
BARE_PID=$!
for p in $P1 $P2; do bench_wait_healthz "$p"; done

: > "$work/dg"; : > "$work/bare"; : > "$work/ratio"
for r in $(seq "$ROUNDS"); do
  b0=$(bench_thread_cpu "$BARE_PID" .)
  read -r brps bp99 _ breq _ < <(bench_wrk "$P2" "$DUR" "$CONNS")
  b1=$(bench_thread_cpu "$BARE_PID" .)
  read -r drps dp99 dnon dreq dwrk < <(bench_wrk "$P1" "$DUR" "$CONNS")
  echo "$brps $bp99 $breq $(awk -v a="$b0" -v b="$b1" 'BEGIN {print b - a}')" >> "$work/bare"
  echo "$drps $dp99 $dnon $dreq $dwrk" >> "$work/dg"
  awk -v d="$drps" -v b="$brps" 'BEGIN {printf "%.3f\n", d/b}' >> "$work/ratio"
  printf 'round %d: bare %s req/s (p99 %s ms)  dealgate %s req/s (p99 %s ms, non-2xx %s)\n' "$r" "$brps" "$bp99" "$drps" "$dp99" "$dnon"
done
rss_kb=$(awk '/VmHWM/ {print $2}' /proc/$DG_PID/status)
rows=$(sqlite3 "$work/var/dealgate.db" 'select count(*) from decisions' 2>/dev/null || echo '?')
echo "--- medians over $ROUNDS rounds of ${DUR}s, $CONNS connections, $THREADS server threads"
echo "bare civetweb:   $(cut -d' ' -f1 "$work/bare" | bench_median) req/s, p99 $(cut -d' ' -f2 "$work/bare" | bench_median) ms"
echo "dealgate:        $(cut -d' ' -f1 "$work/dg" | bench_median) req/s, p99 $(cut -d' ' -f2 "$work/dg" | bench_median) ms"
echo "ratio:           $(bench_median < "$work/ratio")   (target >= 0.6)"
echo "dealgate peak RSS: $((rss_kb / 1024)) MB ($rss_kb kB)   (target <= 32 MB)"
echo "decisions committed to the log: $rows"
# where dealgate's CPU went, per decision: request threads and the log's writer, syncer and
# checkpointer (threads are named; see top -H)
echo "dealgate CPU per decision (us): $(bench_cpu_split "$DG_PID" "$rows")"
# The budget: at the target rate (0.6 x bare) the machine's cores give each request
# nproc / rate of CPU. wrk's share and civetweb's own share (the bare server's CPU per
# request) come off it; what is left is what dealgate's own work (parse, rules, decision,
# durable log) may cost. The log's writer is one thread: 1 / its CPU per decision bounds
# the rate on its own.
awk -v cores="$(nproc)" -v bare_rps="$(cut -d' ' -f1 "$work/bare" | bench_median)" \
  -v bare_req="$(awk '{s += $3} END {print s}' "$work/bare")" \
  -v bare_cpu="$(awk '{s += $4} END {print s}' "$work/bare")" \
  -v wrk_req="$(awk '{s += $4} END {print s}' "$work/dg")" \
  -v wrk_cpu="$(awk '{s += $5} END {print s}' "$work/dg")" \
  -v dg_cpu="$(bench_thread_cpu "$DG_PID" .)" \
  -v writer_cpu="$(bench_thread_cpu "$DG_PID" '^dg-log-writer$')" -v rows="$rows" 'BEGIN {
  if (bare_req <= 0 || wrk_req <= 0 || rows <= 0) { print "CPU budget: ?"; exit }
  rate = 0.6 * bare_rps; avail = cores * 1e6 / rate
  wrk = wrk_cpu * 1e6 / wrk_req; civet = bare_cpu * 1e6 / bare_req
  own = dg_cpu * 1e6 / rows - civet; writer = writer_cpu * 1e6 / rows
  printf "CPU budget per request at the target (%.0f req/s on %d cores): %.0f us, of which wrk %.0f us and civetweb %.0f us (the bare server), leaving %.0f us for dealgate'"'"'s own work\n", rate, cores, avail, wrk, civet, avail - wrk - civet
  printf "dealgate'"'"'s own work now: %.0f us per decision (x%.1f the budget); its log writer alone %.0f us, a single thread: at most %.0f decisions/s, ratio %.2f\n", own, own / (avail - wrk - civet), writer, 1e6 / writer, 1e6 / writer / bare_rps
}'
kill -TERM $DG_PID $BARE_PID; wait $DG_PID 2>/dev/null || true
